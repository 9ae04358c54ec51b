"""The ``brain`` command."""

from brain_assets.cli.main import main

__all__ = ["main"]
