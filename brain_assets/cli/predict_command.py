"""``brain predict SYMBOL --file bars.csv``: the recommended model's prediction for the latest bar.

The file is read as the ``files`` market source reads its files (CSV or Parquet, columns
``timestamp, open, high, low, close, volume``, ISO-8601 or epoch-millisecond timestamps, rows in
file order); the prediction is :func:`~brain_assets.lifecycle.predictor.load_predictor`'s. When
the Brain does not answer, the decision it gave last comes from the predictor cache, with a
warning on stderr.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from brain_assets.cli.help_text import described
from brain_assets.cli.output import emit, table
from brain_assets.lifecycle.predictor import StandAside, load_predictor
from brain_assets.market_data.files import EXTENSIONS, _read_table, _to_ohlcv
from brain_assets.regimes.classify import REGIMES

EXIT_BAD_INPUT = 2
EXIT_STAND_ASIDE = 3

EPILOG = f"""\
exit status:
  0  the prediction is printed
  1  the Brain does not answer and no decision of the symbol is cached (or the cached files
     fail their check)
  {EXIT_BAD_INPUT}  bad input: unreadable file, bars the model cannot use (too few, unsorted or
     duplicated, missing values, another bar frequency, a recent gap), unknown symbol or regime
  {EXIT_STAND_ASIDE}  stand aside: the symbol has no version that may trade; hold no position
     (the reason is printed, or given as "reason" with --json)

When the Brain does not answer, the decision it gave last (kept in the predictor cache,
$BRAIN_PREDICTOR_CACHE, default <BRAIN_HOME>/predictor-cache) is used, and a warning line on
stderr says so and how old it is.
"""


def register(commands: Any) -> None:
    predict = commands.add_parser(
        "predict",
        help="predict the latest bar's forward return with the model the Brain recommends",
        **described(
            "Predict the forward return of the last bar in FILE with SYMBOL's active version "
            "(or the regime selector's pick), computing the features as the retrain does.",
            "brain predict BTC/USDT --file recent-bars.csv",
            "brain predict BTC/USDT --file recent-bars.parquet --regime high --json",
            notes=EPILOG,
        ),
    )
    predict.add_argument("symbol")
    predict.add_argument(
        "--file",
        required=True,
        type=Path,
        help="recent closed bars, oldest first (.csv or .parquet, the files source's columns)",
    )
    predict.add_argument(
        "--regime",
        default=None,
        choices=list(REGIMES),
        help="use the best tradable version in this volatility regime (default: the active one)",
    )
    predict.add_argument("--json", action="store_true", help="machine-readable output")
    predict.set_defaults(handler=predict_latest)


def read_bars(path: Path) -> pd.DataFrame:
    """The bars of a CSV or Parquet file, read and typed as the ``files`` source does."""
    if path.suffix not in EXTENSIONS:
        raise ValueError(f"--file {path}: expected a {' or '.join(EXTENSIONS)} file")
    where = f"file {path}"
    frame, _ = _to_ohlcv(_read_table(path, where=where), where=where)
    return frame


def warn_offline(symbol: str, decision: str, cached_at: datetime) -> None:
    """One stderr line: the Brain did not answer, so its last decision for ``symbol`` is used."""
    age = datetime.now(UTC) - cached_at
    print(
        f"brain predict: warning: the Brain is unreachable; using the decision cached for "
        f"{symbol} at {cached_at.isoformat(timespec='seconds')} "
        f"({_duration(age.total_seconds())} ago): {decision}",
        file=sys.stderr,
    )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def predict_latest(args: argparse.Namespace) -> int:
    try:
        bars = read_bars(args.file)
        predictor = load_predictor(None, args.symbol, regime=args.regime)
        if predictor.source == "cache" and predictor.cached_at is not None:
            warn_offline(
                args.symbol,
                f"{predictor.model_type} v{predictor.version} ({predictor.model_id})",
                predictor.cached_at,
            )
        prediction = predictor.predict(bars)
    except StandAside as aside:
        if aside.cached_at is not None:
            warn_offline(aside.symbol, "stand aside", aside.cached_at)
        emit(
            args,
            {
                "symbol": aside.symbol,
                "stand_aside": True,
                "reason": aside.reason,
                "source": "brain" if aside.cached_at is None else "cache",
                "cached_at": aside.cached_at,
            },
            f"{aside.symbol}: stand aside: {aside.reason}",
        )
        return EXIT_STAND_ASIDE
    except ValueError as exc:
        print(f"brain predict: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = {
        **prediction.to_dict(),
        "stand_aside": False,
        "reason": predictor.reason,
        "source": predictor.source,
        "cached_at": predictor.cached_at,
    }
    side = {1: "+1 (long)", -1: "-1 (short)", 0: "0 (flat)"}[prediction.position]
    rows: list[dict[str, Any]] = [
        {"field": "model", "value": f"{prediction.model_type} v{prediction.version}"},
        {"field": "model_id", "value": prediction.model_id},
        {"field": "bar_time", "value": prediction.bar_time},
        {"field": "horizon", "value": prediction.horizon},
        {"field": "value", "value": prediction.value},
        {"field": "position", "value": side},
    ]
    header = f"{prediction.symbol}: {predictor.reason}"
    emit(args, result, f"{header}\n{table(rows, ['field', 'value'])}")
    return 0
