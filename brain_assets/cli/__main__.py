"""``python -m brain_assets.cli`` is the ``brain`` command."""

from brain_assets.cli.entry import entry

entry()
