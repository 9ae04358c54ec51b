"""Sequence models of the Brain Library.

``StandardizedLSTM`` imports keras (and tensorflow) on first use, not here, so importing this
package stays cheap.
"""

from __future__ import annotations

from brain_assets.lstm.model import FitResult, StandardizedLSTM

__all__ = ["FitResult", "StandardizedLSTM"]
