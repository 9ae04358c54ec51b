"""Where the tests find the repository's files, wherever a test module sits."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "brain_assets"
TEST_DATA = REPO / "brain_assets_tests" / "data"
"""Small real exchange histories (with their defects) the tests read."""
REAL_HISTORIES = REPO / "bench" / "data" / "real"
"""The longer real daily histories of the development set."""
