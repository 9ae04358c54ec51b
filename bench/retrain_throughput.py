"""Issue 15's figures, each beside the baseline's measured in the same run: the code at
``--baseline`` (default f018600, the commit before the throughput work) against this working tree.

    .venv/bin/python bench/retrain_throughput.py [--parts backfill stages demo] [--baseline REV]

The baseline is ``git archive REV`` in a temporary folder, put first on PYTHONPATH so that the same
virtual environment, the same bench scripts and every subprocess (``brain dev``, its runs,
``brain demo``) run its code. Parts, baseline and current alternated:

* ``backfill``: bench/backfill_bench.py --settings demo: a 16-symbol UI backfill of the daily
  retrain at the demo's size (3,000 hourly bars, four model types, LSTM included) under
  ``brain dev``; symbols per hour from the launch to the last run's end.
* ``stages``: bench/retrain_bench.py --symbols 1 (one symbol, in process, after a warm-up):
  ``feature_importance``'s share of the symbol's retrain, of the stages' sum and of the wall time.
* ``demo``: bench/demo_bench.py (``brain demo`` from a fresh BRAIN_HOME).

Results go to bench/results/retrain_throughput.json, with each part's own JSON beside it.
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
from typing import Any

BENCH = Path(__file__).parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "retrain_throughput.json"


def run_part(
    script: str, arguments: list[str], tree: Path | None, out: Path
) -> tuple[dict[str, Any], float]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(BENCH / script), *arguments], env=env, check=True, timeout=3600
    )
    return json.loads(out.read_text()), time.perf_counter() - started


def backfill(tree: Path | None, label: str, symbols: int) -> dict[str, Any]:
    out = RESULTS.with_name(f"retrain_throughput_backfill_{label}.json")
    arguments = ["--symbols", str(symbols), "--bars", "3000", "--settings", "demo"]
    data, _ = run_part(
        "backfill_bench.py", [*arguments, "--skip-in-process", "--out", str(out)], tree, out
    )
    run = data["backfill"][0]
    return {
        "symbols": symbols,
        "runs_succeeded": run["runs_succeeded"],
        "wall_s": run["wall_s"],
        "symbols_per_hour": 3600 * run["runs_succeeded"] / run["wall_s"],
        "max_concurrent_runs": run["max_concurrent_runs"],
        "mean_busy_cores": run["cpu"]["mean_busy_cores"],
        "median_step_s": run["median_step_s"],
    }


def stages(tree: Path | None, label: str, repeats: int) -> dict[str, Any]:
    out = RESULTS.with_name(f"retrain_throughput_stages_{label}.json")
    arguments = ["--symbols", "1", "--repeats", str(repeats), "--out", str(out)]
    data, _ = run_part("retrain_bench.py", arguments, tree, out)
    row = data["results"][0]
    stage_s = row["stages_s"]
    importance = stage_s.get("feature_importance", 0.0)
    return {
        "per_symbol_wall_s": row["total_s"],
        "stages_s": stage_s,
        "importance_s": importance,
        "importance_share_of_stages": importance / sum(stage_s.values()),
        "importance_share_of_wall": importance / row["total_s"],
    }


def demo(tree: Path | None, label: str, runs: int) -> dict[str, Any]:
    out = RESULTS.with_name(f"retrain_throughput_demo_{label}.json")
    data, _ = run_part("demo_bench.py", ["--runs", str(runs), "--out", str(out)], tree, out)
    return {"runs_s": data["runs_s"], "median_s": data["median_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="f018600")
    parser.add_argument("--parts", nargs="+", default=["backfill", "stages", "demo"], choices=PARTS)
    parser.add_argument("--symbols", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="retrain_bench repeats")
    parser.add_argument("--demo-runs", type=int, default=2)
    parser.add_argument("--report", action="store_true", help="print the saved results and exit")
    args = parser.parse_args()
    if args.report:
        report(json.loads(RESULTS.read_text()))
        return
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    # Parts measured before against the same baseline are kept; the ones run now replace theirs.
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    same = previous.get("baseline") == args.baseline
    kept = {part: previous[part] for part in PARTS if same and part in previous}
    document: dict[str, Any] = {
        **kept,
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "baseline": args.baseline,
        "current": f"{commit} (working tree)",
        "arguments": vars(args),
    }
    with tempfile.TemporaryDirectory(prefix="throughput-baseline-") as folder:
        baseline = Path(folder)
        archive = subprocess.run(
            ["git", "archive", args.baseline], cwd=REPO, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
        for part in args.parts:
            measured = {}
            for label, tree in (("baseline", baseline), ("current", None)):
                print(f"== {part}: {label}", flush=True)
                if part == "backfill":
                    measured[label] = backfill(tree, label, args.symbols)
                elif part == "stages":
                    measured[label] = stages(tree, label, args.repeats)
                else:
                    measured[label] = demo(tree, label, args.demo_runs)
            # Each part carries its own date: parts kept from an earlier run keep theirs.
            document[part] = {"measured": datetime.now(UTC).date().isoformat(), **measured}
            RESULTS.write_text(json.dumps(document, indent=2))
    report(document)


PARTS = ("backfill", "stages", "demo")


def run_shares(label: str) -> tuple[list[float], list[float]]:
    """feature_importance's share of each measured run's wall time and of its stages' sum."""
    path = RESULTS.with_name(f"retrain_throughput_stages_{label}.json")
    runs = json.loads(path.read_text())["results"][0]["runs"]
    wall = [run["stages_s"]["feature_importance"] / run["total_s"] for run in runs]
    stages_sum = [
        run["stages_s"]["feature_importance"] / sum(run["stages_s"].values()) for run in runs
    ]
    return wall, stages_sum


def report(document: dict[str, Any]) -> None:
    print(f"{document['date']}, {document['machine']}: {document['baseline']} -> current")
    for part in PARTS:
        if part in document:
            print(f"  {part} measured {document[part].get('measured', 'before per-part dates')}")
    if "backfill" in document:
        old, new = document["backfill"]["baseline"], document["backfill"]["current"]
        print(
            f"backfill, {new['symbols']} symbols: {old['symbols_per_hour']:.0f} -> "
            f"{new['symbols_per_hour']:.0f} symbols/hour "
            f"({new['symbols_per_hour'] / old['symbols_per_hour']:.2f}x); busy cores "
            f"{old['mean_busy_cores']:.2f} -> {new['mean_busy_cores']:.2f}"
        )
    if "stages" in document:
        old, new = document["stages"]["baseline"], document["stages"]["current"]
        print(
            f"one symbol (the median run): feature_importance {old['importance_s']:.2f} s -> "
            f"{new['importance_s']:.2f} s; share of stages {old['importance_share_of_stages']:.1%}"
            f" -> {new['importance_share_of_stages']:.1%}, of the wall time "
            f"{old['importance_share_of_wall']:.1%} -> {new['importance_share_of_wall']:.1%}"
        )
        for label in ("baseline", "current"):
            wall, stages_sum = run_shares(label)
            print(
                f"  {label}, each run: share of the wall time "
                f"{' / '.join(f'{v:.1%}' for v in wall)} (median {statistics.median(wall):.1%}), "
                f"of the stages {' / '.join(f'{v:.1%}' for v in stages_sum)} "
                f"(median {statistics.median(stages_sum):.1%})"
            )
    if "demo" in document:
        old, new = document["demo"]["baseline"], document["demo"]["current"]
        print(f"brain demo: {old['median_s']:.0f} s -> {new['median_s']:.0f} s (median)")


if __name__ == "__main__":
    main()
