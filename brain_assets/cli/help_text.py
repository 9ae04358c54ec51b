"""What each ``brain`` subcommand's ``--help`` shows: a description and examples."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

WIDTH = 79


def described(description: str, *examples: str, notes: str = "") -> dict[str, Any]:
    """``add_parser`` keywords for a subcommand: ``description`` (wrapped by paragraph), and an
    epilog of ``notes`` (laid out already), then ``example:`` with one ``examples`` line each."""
    if not examples:
        raise ValueError("a subcommand needs at least one example")
    epilog = "example:\n" + "\n".join(f"  {line}" for line in examples)
    return {
        "description": "\n\n".join(textwrap.fill(p, WIDTH) for p in description.split("\n\n")),
        "epilog": f"{notes.rstrip()}\n\n{epilog}" if notes else epilog,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
