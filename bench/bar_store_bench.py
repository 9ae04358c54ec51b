"""Throughput of the bar store: store_bars and load_bars for one symbol's hourly bars.

    .venv/bin/python bench/bar_store_bench.py [--sizes 10000 1000000] [--repeats 3]

A fresh embedded PostgreSQL in a temporary folder; for each size and repetition a fresh database
(migrated by BrainLibrary, not timed). Timed per repetition:

- ``store_new``: ``store_bars`` of N hourly bars into an empty series (every bar new): validation,
  binary COPY into a temporary table, the upsert, the batch row, commit;
- ``store_again``: the same frame once more (every bar compared and left unchanged);
- ``load``: ``load_bars`` of the whole series (N bars back as a DataFrame).

Medians over the repetitions. Results go to bench/results/bar_store_bench.json.
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
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.library import BrainLibrary
from brain_assets.store.embedded import start_embedded

RESULTS = Path(__file__).parent / "results" / "bar_store_bench.json"
SYMBOL = "BTC/USDT"


def hourly_bars(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.005, n)))
    open_ = np.concatenate([[100.0], close[:-1]])[:n]
    spread = np.abs(rng.normal(0, 0.002, n)) * close
    return pd.DataFrame(
        {
            # 1,000,000 hourly bars span 114 years: start early enough to end before today.
            "timestamp": pd.date_range("1990-01-01", periods=n, freq="1h", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(1, 1000, n),
        }
    )


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bar-store-bench-") as home:
        server = start_embedded(Path(home) / "pgdata")
        try:
            for size in args.sizes:
                frame = hourly_bars(size)
                runs: dict[str, list[float]] = {"store_new": [], "store_again": [], "load": []}
                for repeat in range(args.repeats):
                    database = f"bars_{size}_{repeat}"
                    with BrainLibrary(server.ensure_database(database)) as brain:
                        started = time.perf_counter()
                        batch = brain.store_bars("bench", SYMBOL, "1h", frame)
                        runs["store_new"].append(time.perf_counter() - started)
                        assert batch.new == size, batch
                        started = time.perf_counter()
                        again = brain.store_bars("bench", SYMBOL, "1h", frame)
                        runs["store_again"].append(time.perf_counter() - started)
                        assert again.unchanged == size, again
                        started = time.perf_counter()
                        loaded = brain.load_bars("bench", SYMBOL, "1h")
                        runs["load"].append(time.perf_counter() - started)
                        assert len(loaded) == size
                    server.drop_database(database)
                    print(
                        json.dumps(
                            {"bars": size, "repeat": repeat, **{k: v[-1] for k, v in runs.items()}}
                        ),
                        flush=True,
                    )
                entry: dict[str, Any] = {"bars": size}
                for name, seconds in runs.items():
                    median = statistics.median(seconds)
                    entry[name] = {
                        "seconds": summary(seconds),
                        "bars_per_s": round(size / median),
                        "runs_s": seconds,
                    }
                results.append(entry)
        finally:
            server.release()
    document = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} {platform.python_version()}, {os.cpu_count()} cores",
        "load_avg_1m_before_after": [load_before, os.getloadavg()[0]],
        "repeats": args.repeats,
        "timeframe": "1h",
        "results": results,
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    for entry in results:
        print(
            f"{entry['bars']:>9,} bars: store {entry['store_new']['bars_per_s']:>9,} bars/s "
            f"({entry['store_new']['seconds']['median']:.3f} s), again "
            f"{entry['store_again']['bars_per_s']:>9,} bars/s, load "
            f"{entry['load']['seconds']['median']:.3f} s ({entry['load']['bars_per_s']:,} bars/s)"
        )


if __name__ == "__main__":
    main()
