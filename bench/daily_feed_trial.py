"""Many days of new bars for many symbols, with a real feed's defects, through daily_retrain.

Not a timing benchmark: a trial of what a quant sees over a week of daily retrains. Each day the
feed folder gains 24 hourly bars per symbol; some symbols carry defects (bad prints, duplicated
and unsorted bars, a gap, a conflicting duplicate), one feed breaks on day 3. Every symbol runs in
its own run, as the schedule launches them. Printed per day and symbol: the run's outcome, bars
dropped, versions in the registry, the active version; written to bench/results/.

    .venv/bin/python bench/daily_feed_trial.py --days 7 --symbols 6
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from brain_assets.defs.io_manager import BrainIOManager
from brain_assets.defs.partitions import add_symbols
from brain_assets.defs.resources import (
    BrainResource,
    DecisionResource,
    MarketDataResource,
    RetrainResource,
)
from brain_assets.defs.retrain.graph import DAILY_RETRAIN_ASSETS
from brain_assets.library import BrainLibrary
from brain_assets.market_data.synthetic import generate_ohlcv
from brain_assets.store.embedded import start_embedded

RESULTS = Path(__file__).parent / "results" / "daily_feed_trial.json"
HISTORY_BARS = 2400
BROKEN_FROM_DAY = 3


def with_defects(frame: pd.DataFrame, kind: str, rng: np.random.Generator) -> pd.DataFrame:
    frame = frame.copy()
    n = len(frame)
    if kind == "bad_prints":
        rows = rng.choice(np.arange(100, n - 100), size=3, replace=False)
        frame.loc[rows, ["open", "high", "low"]] = 0.0
    elif kind == "duplicates_unsorted_gap":
        frame = pd.concat([frame, frame.iloc[[500]]]).sort_index(kind="stable")
        frame = frame.drop(index=range(800, 806))  # six missing hours
        order = np.arange(len(frame))
        order[[1000, 1001]] = order[[1001, 1000]]
        frame = frame.iloc[order]
    elif kind == "conflicting_duplicate":
        copy = frame.iloc[[700]].copy()
        copy["close"] *= 1.01
        copy["high"] = copy[["high", "close"]].max(axis=1)
        frame = pd.concat([frame, copy]).sort_index(kind="stable")
    elif kind == "broken":
        rows = np.arange(5, n, 12)  # about 8% of the bars
        frame.loc[rows, ["open", "high", "low", "close"]] = -1.0
    return frame.reset_index(drop=True)


def write_feed(folder: Path, symbol: str, frame: pd.DataFrame) -> None:
    out = frame.copy()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(folder / f"{symbol.replace('/', '-')}.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--symbols", type=int, default=6)
    args = parser.parse_args()
    kinds = ["clean", "bad_prints", "duplicates_unsorted_gap", "conflicting_duplicate", "broken"]
    symbols = [f"S{i:02d}/USDT" for i in range(args.symbols)]
    kind_of = {symbol: kinds[i % len(kinds)] for i, symbol in enumerate(symbols)}
    total_bars = HISTORY_BARS + 24 * args.days
    rng = np.random.default_rng(11)
    full = {
        s: generate_ohlcv(s, seed=3, n_bars=total_bars, bar="1h", start="2024-01-01")[0]
        for s in symbols
    }
    log: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="brain-feed-trial-") as tmp:
        folder = Path(tmp) / "feed"
        folder.mkdir()
        server = start_embedded(Path(tmp) / "pgdata")
        dsn = server.ensure_database("trial")
        BrainLibrary(dsn).close()
        brain = BrainResource(dsn=dsn)
        resources = {
            "brain": brain,
            "brain_io_manager": BrainIOManager(brain=brain),
            "market": MarketDataResource(source="files", folder=str(folder)),
            "retrain": RetrainResource(
                importance_sample=200,
                include_lstm=False,
                model_types=["ridge", "hist_gradient_boosting"],
            ),
            # The default decision policy: a symbol may stand aside on a day.
            "decisions": DecisionResource(),
        }
        instance = dg.DagsterInstance.ephemeral()
        add_symbols(instance, symbols)
        started = time.monotonic()
        for day in range(1, args.days + 1):
            bars = HISTORY_BARS + 24 * day
            for symbol in symbols:
                kind = kind_of[symbol]
                frame = full[symbol].head(bars)
                if kind != "clean" and (kind != "broken" or day >= BROKEN_FROM_DAY):
                    frame = with_defects(frame, kind, rng)
                write_feed(folder, symbol, frame)
                result = dg.materialize(
                    DAILY_RETRAIN_ASSETS,
                    instance=instance,
                    resources=resources,
                    partition_key=symbol,
                    raise_on_error=False,
                )
                with BrainLibrary(dsn) as library:
                    health = library.get_asset_values(
                        "data_quality", [symbol], run_id=result.run_id
                    )[symbol]
                    models = library.list_models(symbol)
                    active = library.get_active_model(symbol)
                entry = {
                    "day": day,
                    "symbol": symbol,
                    "feed": kind,
                    "success": result.success,
                    "raw_bars": health["raw_rows"],
                    "dropped": health["cleaning"]["dropped"],
                    "usable": health["usable"],
                    "versions": len(models),
                    "active_version": None if active is None else int(active.version),
                }
                log.append(entry)
                print(
                    f"day {day} {symbol} {kind:<24} "
                    f"{'ok     ' if result.success else 'BLOCKED'} raw {entry['raw_bars']:>5} "
                    f"dropped {entry['dropped']:>3} versions {entry['versions']:>3} "
                    f"active v{entry['active_version']}",
                    flush=True,
                )
        elapsed = time.monotonic() - started
        server.release()
    summary = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "days": args.days,
        "symbols": args.symbols,
        "runs": len(log),
        "succeeded": sum(bool(e["success"]) for e in log),
        "elapsed_s": round(elapsed, 1),
        "log": log,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=1, default=str))
    print(
        f"{summary['succeeded']}/{summary['runs']} runs succeeded in {elapsed:.0f} s -> {RESULTS}"
    )


if __name__ == "__main__":
    main()
