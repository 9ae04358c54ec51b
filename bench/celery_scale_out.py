"""The 4-symbol daily_retrain through the deploy/celery layout with one and with two Celery
workers (one process each): wall time from the first launch to the last run's end, and the
speed-up of two workers over one.

    .venv/bin/python bench/celery_scale_out.py [--repeats 3] [--workers 1 2]

Each measurement starts a fresh cluster (Redis, embedded PostgreSQL, code server, webserver,
daemon, workers: brain_assets_tests/celery_cluster.py) in a temporary
folder; its start-up is not timed. Worker counts alternate (1, 2, 1, 2, ...) so that a change in
the machine's load spreads over both. The load average before and after each measurement is
recorded: on a shared machine it says how much else was running. Needs redis-server and
dagster-celery, and BRAIN_EXECUTOR support in brain_assets/definitions.py.

Results: bench/results/celery_scale_out.json (every measurement and the medians) and
bench/results/celery_scale_out.csv (one row per measurement).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from brain_assets_tests.celery_cluster import SYMBOLS, CeleryCluster, celery_unavailable

RESULTS = Path(__file__).parent / "results"
CSV_COLUMNS = (
    "repeat",
    "workers",
    "wall_s",
    "runs_s",
    "all_succeeded",
    "tasks_by_worker",
    "worker_cpu_s",
    "machine_busy_s",
    "load_before",
    "load_after",
)


def measure(workers: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="celery-bench-") as folder:
        with CeleryCluster(Path(folder), workers=workers) as cluster:
            load_before = os.getloadavg()[0]
            outcome = cluster.retrain(SYMBOLS)
            load_after = os.getloadavg()[0]
        if cluster.leftovers:
            raise SystemExit(f"processes left running: {cluster.leftovers}")
    row = {
        "repeat": repeat,
        "workers": workers,
        "wall_s": round(outcome.wall_s, 1),
        "runs_s": round(outcome.runs_s, 1),
        "all_succeeded": all(run["status"] == "SUCCESS" for run in outcome.runs.values()),
        "tasks_by_worker": outcome.tasks_succeeded,
        "steps_by_worker": {host: len(steps) for host, steps in outcome.steps_by_worker.items()},
        "worker_cpu_s": {name: round(t, 1) for name, t in outcome.worker_cpu_s.items()},
        "machine_busy_s": round(outcome.machine_busy_s, 1),
        "load_before": round(load_before, 2),
        "load_after": round(load_after, 2),
        "outcome": dataclasses.asdict(outcome),
    }
    print(
        f"repeat {repeat} workers {workers}: wall {row['wall_s']} s, runs {row['runs_s']} s, "
        f"tasks {row['tasks_by_worker']}, worker CPU {row['worker_cpu_s']} s, machine busy "
        f"{row['machine_busy_s']} s, load {row['load_before']} -> {row['load_after']}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    reason = celery_unavailable()
    if reason is not None:
        raise SystemExit(f"the Celery layout {reason}")
    started = datetime.now(UTC)
    rows = [measure(n, repeat) for repeat in range(args.repeats) for n in args.workers]
    failed = [row for row in rows if not row["all_succeeded"]]
    if failed:
        raise SystemExit(f"runs failed: {[(r['repeat'], r['workers']) for r in failed]}")
    medians = {
        str(n): statistics.median(row["wall_s"] for row in rows if row["workers"] == n)
        for n in args.workers
    }
    result: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d"),
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "symbols": list(SYMBOLS),
        "what": "4-symbol daily_retrain (demo size, LSTM included) launched through the "
        "webserver's GraphQL API, steps on Celery workers of one process each; wall_s from the "
        "first launch until the last run was seen finished (1 s polling), cluster start-up "
        "excluded",
        "median_wall_s": medians,
        "measurements": rows,
    }
    result["symbols_per_hour"] = {
        workers: round(len(SYMBOLS) * 3600 / wall, 1) for workers, wall in medians.items()
    }
    print(f"symbols/hour by workers: {result['symbols_per_hour']}")
    if "1" in medians and "2" in medians:
        result["speedup_2_over_1"] = round(medians["1"] / medians["2"], 2)
        print(f"median wall: {medians}; speed-up of 2 workers over 1: {result['speedup_2_over_1']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "celery_scale_out.json").write_text(json.dumps(result, indent=2) + "\n")
    with (RESULTS / "celery_scale_out.csv").open("w", newline="") as sink:
        writer = csv.DictWriter(sink, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    **row,
                    "tasks_by_worker": json.dumps(row["tasks_by_worker"]),
                    "worker_cpu_s": json.dumps(row["worker_cpu_s"]),
                }
            )


if __name__ == "__main__":
    main()
