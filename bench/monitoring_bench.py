"""Monitoring by simulation: how often the cumulative test takes out a version that earns
nothing (false alarms over every look), and how soon it finds one that loses, beside the window
test it replaces as the main rule (two weeks judged alone, weekly, at p < 0.05).

    .venv/bin/python bench/monitoring_bench.py [--paths 2000] [--report]

Records are per-bar net returns of hourly bars (1% volatility), looked at once a day for a year
(8,760 bars): normal, fat-tailed (Student t with 3 degrees of freedom) and mostly flat (the band
keeps a version out of the market 90% of the bars). The cumulative test is
decisions.sequential.cumulative_loss_test's boundary with the record's own standard deviation;
the window test is a one-sided t-test of the last 336 bars' mean, once a week. Results go to
bench/results/monitoring_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from brain_assets.decisions.sequential import MIN_RECORD_BARS, mixture_boundary, tuned_rho

RESULTS = Path(__file__).parent / "results" / "monitoring_bench.json"
BARS = 8760
DAY, WEEK, WINDOW = 24, 168, 336
Draw = Callable[[np.random.Generator, int], np.ndarray]
SHAPES: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(0.0, 0.01, n),
    "fat_tailed": lambda rng, n: 0.01 * rng.standard_t(3, n) / np.sqrt(3.0),
    "mostly_flat": lambda rng, n: (
        0.01 * rng.standard_t(3, n) / np.sqrt(3.0) * (rng.random(n) < 0.1)
    ),
}


def cumulative_first_alarm(x: np.ndarray, confidence: float) -> int | None:
    alpha = 1.0 - confidence
    rho = tuned_rho(500, alpha)
    looks = np.arange(MIN_RECORD_BARS, x.size + 1, DAY)
    total, squares = np.cumsum(x)[looks - 1], np.cumsum(x * x)[looks - 1]
    std = np.sqrt(np.maximum((squares - total * total / looks) / (looks - 1), 0.0))
    bound = np.array([mixture_boundary(n, alpha, rho) for n in looks])
    hits = np.flatnonzero(total < -std * bound)
    return int(looks[hits[0]]) if hits.size else None


def window_first_alarm(x: np.ndarray) -> int | None:
    for end in range(WINDOW, x.size + 1, WEEK):
        window = x[end - WINDOW : end]
        sd = window.std(ddof=1)
        if sd > 0 and stats.t.cdf(window.mean() / (sd / np.sqrt(WINDOW)), WINDOW - 1) < 0.05:
            return end
    return None


def simulate(shape: str, drift_bps: float, paths: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    found: dict[str, list[int | None]] = {"cumulative_0.9": [], "cumulative_0.95": [], "window": []}
    for _ in range(paths):
        x = SHAPES[shape](rng, BARS) + drift_bps / 1e4
        found["cumulative_0.9"].append(cumulative_first_alarm(x, 0.9))
        found["cumulative_0.95"].append(cumulative_first_alarm(x, 0.95))
        found["window"].append(window_first_alarm(x))
    summary: dict[str, Any] = {"shape": shape, "drift_bps": drift_bps, "paths": paths}
    for rule, alarms in found.items():
        hit = [a for a in alarms if a is not None]
        summary[rule] = {
            "alarm_rate": len(hit) / paths,
            "median_bars_to_alarm": float(np.median(hit)) if hit else None,
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=2000)
    parser.add_argument("--report", action="store_true", help="print the saved results and exit")
    args = parser.parse_args()
    if args.report:
        report(json.loads(RESULTS.read_text()))
        return
    rows = [simulate(shape, 0.0, args.paths, 1) for shape in SHAPES]
    rows += [simulate("normal", drift, args.paths // 4, 2) for drift in (-2.0, -5.0, -10.0)]
    document = {
        "measured": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "bars": BARS,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(document, indent=2))
    report(document)


def report(document: dict[str, Any]) -> None:
    print(f"Measured {document['measured']} on {document['machine']}, a year of hourly bars")
    print(
        "| record | mean net return | cumulative test, 0.9: alarms (median bars) | "
        "cumulative, 0.95 | window test, weekly |"
    )
    print("| --- | --- | --- | --- | --- |")
    for row in document["rows"]:
        cells = []
        for rule in ("cumulative_0.9", "cumulative_0.95", "window"):
            entry = row[rule]
            bars = entry["median_bars_to_alarm"]
            cells.append(f"{entry['alarm_rate']:.1%}" + ("" if bars is None else f" ({bars:.0f})"))
        print(f"| {row['shape']} | {row['drift_bps']:g} bps/bar | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
