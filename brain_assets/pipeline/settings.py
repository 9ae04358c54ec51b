"""What the daily retrain does, in one place (the Dagster resource fills it in)."""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field, fields

from brain_assets.defaults import BAND_MARGIN, FEE_BPS
from brain_assets.evaluation.positions import PositionRule
from brain_assets.events import log_event
from brain_assets.importance.analyzer import IMPORTANCE_METHODS
from brain_assets.lstm.network import LSTM_EXTRA_INSTALL, lstm_extra_missing
from brain_assets.quality.cleaning import CleaningPolicy
from brain_assets.training.models import MODEL_TYPES
from brain_assets.training.walk_forward import WINDOWS

LSTM_MODEL_TYPE = "lstm"
"""The model type under which the retrain registers its ``StandardizedLSTM``."""

KNOWN_MODEL_TYPES: tuple[str, ...] = (*MODEL_TYPES, LSTM_MODEL_TYPE)
LSTM_SKIPPED = "lstm_skipped"
"""The one warning of a process asked to train the ``lstm`` without the ``lstm`` extra."""


@dataclass(frozen=True)
class LSTMSettings:
    """How the retrain builds, trains and explains its ``StandardizedLSTM``.

    The defaults are sized for the demo (4 symbols x 3000 hourly bars on 2 CPU cores): one
    unidirectional layer of 32 units over a day of hourly bars trains in a few seconds per symbol,
    and early stopping on the validation segment usually ends it well before ``epochs``.
    Unidirectional on purpose: each hidden state then summarises only the rows up to its own lag,
    so the attention weight of a lag says something about that lag.
    """

    units: int = 32
    layers: int = 1
    sequence_length: int = 24
    """Rows per window; the first ``sequence_length - 1`` rows before a segment are its context."""
    epochs: int = 20
    batch_size: int = 64
    patience: int = 5
    """Epochs without a lower validation loss before training stops (best weights are kept)."""
    learning_rate: float = 1e-3
    dropout: float = 0.1
    bidirectional: bool = False
    shap_rows: int = 100
    """Test windows explained by expected gradients (SHAP), evenly spaced; 0 skips SHAP for lstm.
    Measured (bench/importance_tradeoff.py): 100 windows with 10 draws each rank the top 20 at a
    Spearman correlation of 0.98 with every window at 100 draws, at half the cost of 100 x 100."""
    shap_samples: int = 10
    """Background draws per explained window (expected gradients); cost grows linearly."""

    def __post_init__(self) -> None:
        minimums = {
            "units": 1,
            "layers": 1,
            "sequence_length": 2,
            "epochs": 1,
            "batch_size": 1,
            "patience": 0,
            "shap_rows": 0,
            "shap_samples": 1,
        }
        for name, minimum in minimums.items():
            value = getattr(self, name)
            # bool is an int subclass: units=True is a caller's bug, not 1.
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"lstm_config.{name} must be an integer >= {minimum}, got {value!r}"
                )
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(
                f"lstm_config.learning_rate must be a positive number, got {self.learning_rate!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lstm_config.dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(
                f"lstm_config.bidirectional must be a bool, got {self.bidirectional!r}"
            )

    @property
    def context_rows(self) -> int:
        """Rows of history a window needs before the first row it predicts."""
        return self.sequence_length - 1

    def fit_settings(self) -> dict[str, int]:
        """The arguments of ``StandardizedLSTM.fit`` that these settings fix."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "patience": self.patience}

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class RetrainSettings:
    horizon: int = 1
    """Bars ahead that the target return looks; also the embargo between split segments."""
    model_types: tuple[str, ...] = MODEL_TYPES
    train_frac: float = 0.6
    val_frac: float = 0.2
    min_rows: int = 500
    """Fewer OHLCV bars than this fail the blocking quality check (nothing trains)."""
    train_window_bars: int | None = None
    """The retrain fits and evaluates on the most recent this many modelling rows; None: all of
    the history. A bounded window lets the models follow a market whose behaviour changed."""
    max_gap_bars: float = 3.0
    """Bar spacings up to this many bars are continuous; a longer one is a gap: it draws the
    ohlcv_gaps warning, and modelling rows whose look-back or target spans it are excluded."""
    cleaning: CleaningPolicy = field(default_factory=CleaningPolicy)
    """What happens to bad prints, inconsistent candles and duplicated bars before the checks."""
    fee_bps: float = FEE_BPS
    band_margin: float = BAND_MARGIN
    """The no-trade band: a forecast must clear the round-trip cost by this fraction of it to
    open or reverse a position (see evaluation.positions)."""
    walk_forward_folds: int = 3
    """Folds of the walk-forward evaluation of the scikit-learn models: each refits on the rows
    before its test block. The ``lstm`` is judged on its one test segment instead (see
    pipeline.folds). Three, not four: the out-of-sample rows are the same, and a hist gradient
    boosting fit costs about the same on 700 rows as on 3,000 (150 rounds at a fixed cost each),
    so every fold is a full fit's cost; four kept the 3-model retrain just over twice its cost
    before the folds (bench/gate_cost_bench.py)."""
    walk_forward_test_frac: float = 0.75
    """Share of the modelling rows, the most recent, that the folds test out of sample. Three
    quarters: more evidence per retrain (2,200 bars of 3,000), and the early folds, fitted on
    less history, judge the procedure pessimistically rather than optimistically."""
    walk_forward_window: str = "expanding"
    """``expanding``: each fold trains on every earlier row; ``rolling``: on as many recent rows
    as the first fold."""
    importance_methods: tuple[str, ...] = IMPORTANCE_METHODS
    importance_sample: int = 1000
    seed: int = 0
    include_lstm: bool = False
    """Also train the ``lstm`` model type. Off by default: it loads TensorFlow (a few seconds and
    a few hundred MB per process) for every run, see docs/models.md, "The LSTM"."""
    lstm_config: LSTMSettings = field(default_factory=LSTMSettings)

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {self.horizon}")
        if not self.model_types:
            raise ValueError("model_types must name at least one model type")
        unknown = [name for name in self.model_types if name not in KNOWN_MODEL_TYPES]
        if unknown:
            raise ValueError(
                f"unknown model type(s) {', '.join(map(repr, unknown))}; "
                f"valid model types: {', '.join(KNOWN_MODEL_TYPES)}"
            )
        if self.min_rows < 1:
            raise ValueError(f"min_rows must be at least 1, got {self.min_rows}")
        folds = self.walk_forward_folds
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
            raise ValueError(f"walk_forward_folds must be an integer >= 1, got {folds!r}")
        if not 0.0 < self.walk_forward_test_frac < 1.0:
            raise ValueError(
                f"walk_forward_test_frac must be in (0, 1), got {self.walk_forward_test_frac!r}"
            )
        if self.walk_forward_window not in WINDOWS:
            raise ValueError(
                f"walk_forward_window must be one of {', '.join(WINDOWS)}, "
                f"got {self.walk_forward_window!r}"
            )
        for name in ("fee_bps", "band_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        window = self.train_window_bars
        # 250 rows leave a test segment of 50, just above the 48 bars a promotion compares on.
        if window is not None and (
            isinstance(window, bool) or not isinstance(window, int) or window < 250
        ):
            raise ValueError(f"train_window_bars must be an integer >= 250 or None, got {window!r}")

    @property
    def position_rule(self) -> PositionRule:
        """How this deployment turns forecasts into positions (fee and no-trade band)."""
        return PositionRule(fee_bps=self.fee_bps, margin=self.band_margin)

    @property
    def trained_model_types(self) -> tuple[str, ...]:
        """``model_types``, plus ``lstm`` when ``include_lstm`` is set and the ``lstm`` extra is
        installed, each once.

        ``include_lstm`` on an install without TensorFlow (the core install) leaves the ``lstm``
        out, with one ``lstm_skipped`` warning per process saying how to install the extra: a
        choice of the deployment, not a fault, so no run fails and no alert is sent for it. An
        ``lstm`` named in ``model_types`` stays: asked for by name, it is skipped and alerted
        like any type this machine cannot train (pipeline.training)."""
        extra = (LSTM_MODEL_TYPE,) if self.include_lstm and lstm_extra_installed() else ()
        return tuple(dict.fromkeys((*self.model_types, *extra)))


def lstm_extra_installed() -> bool:
    """Whether TensorFlow and Keras are installed (a look-up, nothing imported); the first
    ``False`` of a process logs the one ``lstm_skipped`` line."""
    missing = lstm_extra_missing()
    if missing is not None:
        _say_lstm_skipped(missing)
    return missing is None


@functools.cache
def _say_lstm_skipped(missing: str) -> None:
    log_event(
        LSTM_SKIPPED,
        logging.WARNING,
        reason=f"the `lstm` extra is not installed ({missing} is missing)",
        install=LSTM_EXTRA_INSTALL,
    )
