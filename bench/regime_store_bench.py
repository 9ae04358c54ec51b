"""A year of minute bars, one new day at a time: what the regimes stage and the equity plot cost.

    .venv/bin/python bench/regime_store_bench.py [--bars 525600] [--days 3]

On a fresh embedded server: the first ``volatility_regime`` store of a year of one-minute bars of
one symbol, then ``--days`` daily updates (1,440 new bars each), each of which classifies the
whole history again, as the stage does, and stores it (only new and changed bars are written).
Also the evaluation's equity plot at that size: three models' equity curves over the last fifth
of the bars, shaded by regime. Medians over the days; bench/results/regime_store_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from brain_assets.library import BrainLibrary
from brain_assets.market_data.sources import make_source
from brain_assets.plots import equity_curves_png
from brain_assets.regimes.classify import classify_regimes
from brain_assets.store.embedded import start_embedded

RESULTS = Path(__file__).parent / "results" / "regime_store_bench.json"
SYMBOL = "BTC/USDT"
DAY = 1440


def timed(action: object) -> tuple[object, float]:
    started = time.perf_counter()
    value = action()  # type: ignore[operator]
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args()
    total = args.bars + args.days * DAY
    bars = make_source("synthetic", seed=7, n_bars=total, bar="1min").load(SYMBOL).frame
    days: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="regime-bench-") as folder:
        server = start_embedded(Path(folder) / "pgdata")
        with BrainLibrary(server.ensure_database("bench")) as brain:
            frame, classify_s = timed(lambda: classify_regimes(bars.iloc[: args.bars]))
            stored, store_s = timed(lambda: brain.store_regimes(SYMBOL, frame))
            first = {"classify_s": classify_s, "store_s": store_s, "bars_stored": stored}
            print(f"first store: classify {classify_s:.2f} s, store {store_s:.2f} s ({stored:,})")
            for day in range(1, args.days + 1):
                history = bars.iloc[: args.bars + day * DAY]
                frame, classify_s = timed(lambda h=history: classify_regimes(h))
                stored, store_s = timed(lambda f=frame: brain.store_regimes(SYMBOL, f))
                days.append({"classify_s": classify_s, "store_s": store_s})
                print(f"day {day}: classify {classify_s:.2f} s, store {store_s:.2f} s")
        server.release()
    test = frame.iloc[-len(frame) // 5 :]
    rng = np.random.default_rng(0)
    curves = {
        name: pd.Series(np.cumprod(1 + rng.normal(0, 1e-4, len(test))), index=test.index)
        for name in ("ridge", "random_forest", "hist_gradient_boosting")
    }
    plots = []
    for _ in range(3):
        png, seconds = timed(lambda: equity_curves_png(curves, SYMBOL, test["regime"]))
        plots.append(seconds)
    print(f"equity plot of {len(test):,} bars x 3 curves: median {statistics.median(plots):.2f} s")
    document = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "arguments": vars(args),
        "first_store": first,
        "daily": {
            "classify_s_median": statistics.median(d["classify_s"] for d in days),
            "store_s_median": statistics.median(d["store_s"] for d in days),
            "days": days,
        },
        "equity_plot": {
            "bars": len(test),
            "seconds_median": statistics.median(plots),
            "png_bytes": len(png),  # type: ignore[arg-type]
        },
    }
    RESULTS.write_text(json.dumps(document, indent=2))
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
