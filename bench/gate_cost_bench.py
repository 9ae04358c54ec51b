"""What the honest gate costs: the 3-model retrain of one symbol and ``brain demo``, this working
tree against a baseline revision, alternated in one run.

    .venv/bin/python bench/gate_cost_bench.py [--baseline f165981] [--rounds 3] [--report]

* ``retrain``: bench/retrain_bench.py --symbols 1 --no-lstm (ridge, random forest and hist
  gradient boosting on 3,000 hourly bars, in process, every stage from the bars to the feature
  importance), its median over ``--repeats`` runs; the walk-forward folds are part of it.
* ``demo``: bench/demo_bench.py --runs 1 (``brain demo`` from a fresh BRAIN_HOME, four symbols,
  LSTM included), wall time.

The baseline is ``git archive REV`` in a temporary folder, first on PYTHONPATH, so that the same
virtual environment and bench scripts run its code. Each round measures the baseline then the
current tree; the ratio of the medians is what the issue's "at most 2x" is judged on. Results go
to bench/results/gate_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

BENCH = Path(__file__).parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "gate_cost.json"


def archive(revision: str, folder: Path) -> Path:
    """``git archive revision`` unpacked into ``folder``: the baseline's code, no .git."""
    data = subprocess.run(
        ["git", "archive", revision], cwd=REPO, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def run(script: str, arguments: list[str], tree: Path | None, out: Path) -> dict[str, Any]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    subprocess.run(
        [sys.executable, str(BENCH / script), *arguments, "--out", str(out)],
        env=env,
        check=True,
        timeout=3600,
    )
    return dict(json.loads(out.read_text()))


def retrain(tree: Path | None, scratch: Path, repeats: int) -> float:
    out = scratch / "retrain.json"
    data = run(
        "retrain_bench.py", ["--symbols", "1", "--no-lstm", "--repeats", str(repeats)], tree, out
    )
    return float(data["results"][0]["total_s"])


def demo(tree: Path | None, scratch: Path) -> float:
    data = run("demo_bench.py", ["--runs", "1"], tree, scratch / "demo.json")
    return float(data["runs_s"][0] if "runs_s" in data else data["median_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="f165981", help="revision before the honest gate")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="retrain_bench repeats per round")
    parser.add_argument(
        "--parts", nargs="+", default=["retrain", "demo"], choices=["retrain", "demo"]
    )
    parser.add_argument("--report", action="store_true", help="print the saved results and exit")
    args = parser.parse_args()
    if args.report:
        report(json.loads(RESULTS.read_text()))
        return
    figures: dict[str, dict[str, list[float]]] = {
        part: {"baseline": [], "current": []} for part in args.parts
    }
    with tempfile.TemporaryDirectory(prefix="gate-cost-") as scratch:
        base = archive(args.baseline, Path(scratch) / "baseline")
        for round_number in range(args.rounds):
            for label, tree in (("baseline", base), ("current", None)):
                if "retrain" in args.parts:
                    figures["retrain"][label].append(retrain(tree, Path(scratch), args.repeats))
                if "demo" in args.parts:
                    figures["demo"][label].append(demo(tree, Path(scratch)))
                print(json.dumps({"round": round_number, "label": label, **figures}), flush=True)
    summary = {
        part: {
            **{f"{label}_s": runs for label, runs in values.items()},
            **{f"{label}_median_s": statistics.median(runs) for label, runs in values.items()},
            "ratio": statistics.median(values["current"]) / statistics.median(values["baseline"]),
        }
        for part, values in figures.items()
    }
    document = {
        "measured": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "baseline": args.baseline,
        "rounds": args.rounds,
        "summary": summary,
    }
    RESULTS.write_text(json.dumps(document, indent=2))
    report(document)


def report(document: dict[str, Any]) -> None:
    print(
        f"Measured {document['measured']} on {document['machine']}, baseline {document['baseline']}"
    )
    print("| part | baseline (median s) | with the honest gate (median s) | ratio |")
    print("| --- | --- | --- | --- |")
    names = {"retrain": "3-model retrain, 1 symbol, 3,000 hourly bars", "demo": "`brain demo`"}
    for part, row in document["summary"].items():
        print(
            f"| {names[part]} | {row['baseline_median_s']:.1f} | {row['current_median_s']:.1f} "
            f"| {row['ratio']:.2f}x |"
        )


if __name__ == "__main__":
    main()
