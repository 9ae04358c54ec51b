"""`brain retrain` of N synthetic symbols, as a user runs it: wall time, symbols per hour, busy
cores and the whole machine's memory.

    .venv/bin/python bench/retrain_cli_bench.py [--symbols 100] [--workers N]
    .venv/bin/python bench/retrain_cli_bench.py --report

The command runs in a subprocess with a fresh BRAIN_HOME (its own embedded PostgreSQL) and
``--source synthetic`` (3,000 hourly bars per symbol, the code location's models: ridge, random
forest, boosting and the LSTM, with the walk-forward folds). Busy cores come from /proc/stat
every second over the whole machine (the idle baseline measured just before is reported beside
it); memory is the machine's used memory (MemTotal - MemAvailable) at its peak, and above the
baseline. Results go to bench/results/retrain_cli_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backfill_bench import CpuSampler, idle_baseline

RESULTS = Path(__file__).parent / "results" / "retrain_cli_bench.json"
REPO = Path(__file__).resolve().parents[1]


def used_memory_bytes() -> int:
    """MemTotal - MemAvailable: what the whole machine holds."""
    values: dict[str, int] = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            name, _, rest = line.partition(":")
            values[name] = int(rest.split()[0]) * 1024
    return values["MemTotal"] - values["MemAvailable"]


class MemoryPeak:
    """The peak of used_memory_bytes, sampled every half second in a background thread."""

    def __init__(self) -> None:
        self.peak = used_memory_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, used_memory_bytes())

    def __enter__(self) -> MemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def measure(symbols: int, workers: int | None) -> dict[str, Any]:
    names = [f"R{i:03d}/USDT" for i in range(symbols)]
    command = [sys.executable, "-m", "brain_assets.cli", "retrain", "--source", "synthetic"]
    command += ["--json", *(["--workers", str(workers)] if workers else []), *names]
    baseline_cores = idle_baseline()
    baseline_memory = used_memory_bytes()
    with tempfile.TemporaryDirectory(prefix="brain-retrain-cli-bench-") as home:
        env = {**os.environ, "BRAIN_HOME": home}
        env.pop("DAGSTER_HOME", None)
        sampler = CpuSampler().start()
        started = time.perf_counter()
        with MemoryPeak() as memory:
            done = subprocess.run(
                command, env=env, cwd=REPO, capture_output=True, text=True, timeout=7200
            )
        wall = time.perf_counter() - started
        cpu = sampler.stop()
    if done.returncode not in (0, 1):
        raise RuntimeError(f"brain retrain failed ({done.returncode}):\n{done.stderr[-3000:]}")
    try:
        results = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(
            f"brain retrain ({done.returncode}) printed no JSON:\n{done.stderr[-3000:]}"
        ) from None
    succeeded = sum(1 for row in results if row.get("success"))
    return {
        "symbols": symbols,
        "workers": workers,
        "succeeded": succeeded,
        "wall_s": round(wall, 1),
        "symbols_per_hour": round(symbols / wall * 3600),
        "mean_busy_cores": round(cpu["mean_busy_cores"], 2),
        "idle_baseline_busy_cores": round(baseline_cores, 2),
        "peak_used_memory_gb": round(memory.peak / 1e9, 2),
        "peak_above_baseline_gb": round((memory.peak - baseline_memory) / 1e9, 2),
    }


def report(document: dict[str, Any]) -> None:
    print(
        f"Measured {document['date']} on {document['machine']}; 3,000 hourly bars a symbol, "
        "the code location's models with the walk-forward folds\n"
    )
    print(
        "| symbols | workers | succeeded | wall | symbols/hour | busy cores (idle baseline) "
        "| peak memory, whole machine (above baseline) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in document["runs"]:
        print(
            f"| {row['symbols']} | {row['workers'] or 'default'} | {row['succeeded']} | "
            f"{row['wall_s']:.0f} s | {row['symbols_per_hour']} | {row['mean_busy_cores']:.2f} "
            f"({row['idle_baseline_busy_cores']:.2f}) | {row['peak_used_memory_gb']:.1f} GB "
            f"({row['peak_above_baseline_gb']:.1f} GB) |"
        )
    if len(document["runs"]) > 1:
        middle = {
            key: statistics.median(row[key] for row in document["runs"])
            for key in ("wall_s", "symbols_per_hour", "mean_busy_cores", "peak_used_memory_gb")
        }
        print(
            f"| median of {len(document['runs'])} | | | {middle['wall_s']:.0f} s | "
            f"{middle['symbols_per_hour']:.0f} | {middle['mean_busy_cores']:.2f} | "
            f"{middle['peak_used_memory_gb']:.1f} GB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="print the saved results' table")
    parser.add_argument(
        "--append", action="store_true", help="add the runs to the saved ones (the same day's)"
    )
    args = parser.parse_args()
    if args.report:
        report(json.loads(RESULTS.read_text()))
        return
    runs = [measure(args.symbols, args.workers) for _ in range(args.repeats)]
    today = datetime.now(UTC).date().isoformat()
    if args.append and RESULTS.exists():
        saved = json.loads(RESULTS.read_text())
        if saved["date"] == today:
            runs = saved["runs"] + runs
    document = {
        "date": today,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "runs": runs,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    report(document)


if __name__ == "__main__":
    main()
