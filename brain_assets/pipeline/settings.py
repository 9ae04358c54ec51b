"""What the daily retrain does, in one place (the Dagster resource fills it in)."""

from __future__ import annotations

from dataclasses import dataclass

from brain_assets.training.models import MODEL_TYPES

IMPORTANCE_METHODS = ("shap", "permutation", "correlation")


@dataclass(frozen=True)
class RetrainSettings:
    horizon: int = 1
    """Bars ahead that the target return looks; also the embargo between split segments."""
    model_types: tuple[str, ...] = MODEL_TYPES
    train_frac: float = 0.6
    val_frac: float = 0.2
    min_rows: int = 500
    """Fewer OHLCV bars than this fail the blocking quality check (nothing trains)."""
    max_gap_bars: float = 3.0
    fee_bps: float = 10.0
    importance_methods: tuple[str, ...] = IMPORTANCE_METHODS
    importance_sample: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {self.horizon}")
        if not self.model_types:
            raise ValueError("model_types must name at least one model type")
        if self.min_rows < 1:
            raise ValueError(f"min_rows must be at least 1, got {self.min_rows}")
