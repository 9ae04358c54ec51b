"""``python -m brain_assets.cli`` is the ``brain`` command."""

import sys

from brain_assets.cli.main import main

sys.exit(main())
