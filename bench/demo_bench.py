"""How long `brain demo` takes a new user: the 4-symbol daily_retrain (LSTM included), each run
in a fresh BRAIN_HOME (embedded server started and migrated from scratch), install excluded; and
how many of the machine's cores were busy meanwhile (/proc/stat over the whole machine, the idle
baseline measured before each run reported beside it).

    .venv/bin/python bench/demo_bench.py --runs 3
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
import time
from datetime import UTC, datetime
from pathlib import Path

from backfill_bench import CpuSampler, idle_baseline

RESULTS = Path(__file__).parent / "results" / "demo_bench.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file")
    args = parser.parse_args()
    brain = Path(sys.executable).with_name("brain")
    walls: list[float] = []
    busy: list[float] = []
    baselines: list[float] = []
    for run in range(args.runs):
        baselines.append(idle_baseline())
        with tempfile.TemporaryDirectory(prefix="demo-bench-") as home:
            env = {**os.environ, "BRAIN_HOME": home, "BRAIN_LOG_DIR": f"{home}/logs"}
            env.pop("DATABASE_DSN", None)
            sampler = CpuSampler().start()
            started = time.perf_counter()
            done = subprocess.run(
                [str(brain), "demo"], env=env, capture_output=True, text=True, timeout=900
            )
            walls.append(time.perf_counter() - started)
            busy.append(sampler.stop()["mean_busy_cores"])
            if done.returncode != 0:
                raise SystemExit(f"run {run}: brain demo failed:\n{done.stdout}\n{done.stderr}")
            print(f"run {run}: {walls[-1]:.1f} s, {busy[-1]:.2f} busy cores", flush=True)
    document = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "runs_s": [round(w, 1) for w in walls],
        "median_s": round(statistics.median(walls), 1),
        "busy_cores": [round(b, 2) for b in busy],
        "median_busy_cores": round(statistics.median(busy), 2),
        "idle_baseline_busy_cores": [round(b, 2) for b in baselines],
    }
    args.out.write_text(json.dumps(document, indent=2))
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
