"""What the engine's one call costs: ``load_predictor`` cold and warm, and ``predict``.

Ridge, random forest and histogram gradient boosting are trained on 3000 hourly bars of
``signal_market`` and registered in a temporary embedded PostgreSQL; each is promoted in turn and
measured as the active version:

* cold load: the first ``load_predictor`` in a fresh process (a subprocess per run, the Brain
  already connected; the version's stored one-row model is read, and scikit-learn is not
  imported unless the version has none), and that process's first ``predict``;
* warm load: ``load_predictor`` again in one process (registry row, artifact, sha256, skops);
* predict: ``Predictor.predict`` on the latest bar of 500 recent bars, and two of its parts:
  the features of that bar (``latest_features``, what predict computes) and the estimator's own
  scikit-learn ``predict`` on the one row (which predict skips where it has a compiled path).

Medians (and 90th percentiles) over ``--runs`` runs. Writes bench/results/predictor_bench.json;
``--report`` prints its table (markdown) without measuring.

    .venv/bin/python bench/predictor_bench.py --runs 25
    .venv/bin/python bench/predictor_bench.py --report
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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from brain_assets.calendar import periods_per_year
from brain_assets.features.latest import latest_features
from brain_assets.features.technical import compute_features
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.predictor import load_predictor
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.dataset import build_dataset_table
from brain_assets.pipeline.evaluation import evaluate_symbol
from brain_assets.pipeline.registration import register_symbol
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import train_symbol
from brain_assets.store.embedded import start_embedded
from brain_assets_tests.settings import NO_FLOOR_POLICY

RESULTS = Path(__file__).parent / "results"
SYMBOL = "BTC/USDT"
MODEL_TYPES = ("ridge", "random_forest", "hist_gradient_boosting")
MEASURED = (*MODEL_TYPES, "lstm")
"""The LSTM too (the demo's configuration): its load imports TensorFlow, its predict runs the
window through the network."""
RECENT_BARS = 500
NO_FLOOR = NO_FLOOR_POLICY

# Runs in a fresh interpreter: argv[1] the DSN, argv[2] a CSV of recent bars. Prints JSON.
COLD = """
import json, sys, time
import pandas as pd
from brain_assets.lifecycle.predictor import load_predictor
from brain_assets.library import BrainLibrary
bars = pd.read_csv(sys.argv[2], parse_dates=["timestamp"])
with BrainLibrary(sys.argv[1]) as brain:
    brain.get_active_model("BTC/USDT")  # the pool is open: the load alone is timed
    started = time.perf_counter()
    predictor = load_predictor(brain, "BTC/USDT")
    loaded = time.perf_counter()
    imported = "sklearn" in sys.modules
    predictor.predict(bars)
    predicted = time.perf_counter()
print(json.dumps({"load_s": loaded - started, "predict_s": predicted - loaded,
                  "model_type": predictor.model_type, "sklearn_imported": imported}))
"""


def timings(call: Callable[[], object], runs: int) -> list[float]:
    call()  # the first call warms caches; it is not counted
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary_ms(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1e3
    return {
        "median_ms": round(float(statistics.median(values)), 3),
        "p90_ms": round(float(np.percentile(values, 90)), 3),
        "runs": len(values),
    }


def cold_runs(dsn: str, csv: Path, runs: int) -> dict[str, Any]:
    loads, predicts, totals, sklearn = [], [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", COLD, dsn, str(csv)],
            capture_output=True,
            text=True,
            check=True,
        )
        totals.append(time.perf_counter() - started)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        loads.append(result["load_s"])
        predicts.append(result["predict_s"])
        sklearn.append(result["sklearn_imported"])
    return {
        "sklearn_imported": any(sklearn),
        "first_load": summary_ms(loads),
        "first_predict": summary_ms(predicts),
        "process_wall": summary_ms(totals),
    }


LABELS = {
    "ridge": "ridge",
    "random_forest": "random forest",
    "hist_gradient_boosting": "boosting",
    "lstm": "LSTM",
}


def report() -> None:
    """The results file as the markdown table bench/README.md shows."""
    document = json.loads((RESULTS / "predictor_bench.json").read_text())
    print(
        f"Measured {document['date']} on {document['machine']}; {document['runs']} warm runs, "
        f"{document['cold_runs']} fresh processes; load average at the end "
        f"{document['load_average_at_end']}\n"
    )
    print(
        "| model | first load in a new process | scikit-learn imported by it | first predict "
        "there | the whole new process (start, imports, load, predict, exit) | load again | "
        "`predict` (latest bar) | of which features | scikit-learn's own predict, one row |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model_type, entry in document["results"].items():
        cells = [
            entry["cold"]["first_load"]["median_ms"],
            entry["cold"]["first_predict"]["median_ms"],
            entry["cold"]["process_wall"]["median_ms"],
            entry["warm_load"]["median_ms"],
            entry["predict"]["median_ms"],
            entry["of_which_features"]["median_ms"],
            (entry["of_which_model_predict"] or {}).get("median_ms"),
        ]
        shown = ["-" if value is None else f"{value:,.2f} ms" for value in cells]
        imported = {True: "yes", False: "no"}.get(entry["cold"].get("sklearn_imported"), "?")
        shown.insert(1, imported)
        print(f"| {LABELS.get(model_type, model_type)} | {' | '.join(shown)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--cold-runs", type=int, default=20)
    parser.add_argument("--report", action="store_true", help="print the last results' table")
    args = parser.parse_args()
    if args.report:
        report()
        return
    settings = RetrainSettings(model_types=MODEL_TYPES, include_lstm=True)
    bars = signal_market(3000, momentum=0.3, seed=1)
    table = build_dataset_table(bars, settings.horizon).table
    ppy = periods_per_year(table.index)
    artifacts = train_symbol(SYMBOL, table, settings)
    evaluations = evaluate_symbol(SYMBOL, table, artifacts, settings, ppy)
    recent = bars.iloc[-RECENT_BARS:].reset_index(drop=True)
    columns = [
        recent[name].to_numpy(np.float64) for name in ("open", "high", "low", "close", "volume")
    ]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="predictor-bench-") as home:
        csv = Path(home) / "bars.csv"
        recent.to_csv(csv, index=False)
        server = start_embedded(Path(home) / "pgdata")
        try:
            dsn = server.ensure_database("predictor_bench")
            with BrainLibrary(dsn) as brain:
                ids = register_symbol(
                    brain,
                    SYMBOL,
                    artifacts,
                    {e.model_type: e.metrics for e in evaluations},
                    ppy,
                    policy=NO_FLOOR,
                ).model_ids
                for model_type in MEASURED:
                    ModelVersioning(brain, policy=NO_FLOOR).promote(ids[model_type])
                    predictor = load_predictor(brain, SYMBOL)
                    assert predictor.model_type == model_type
                    rows = compute_features(recent).iloc[-1:]
                    window = predictor.context_rows + 1
                    entry = {
                        "artifact_bytes": len(brain.load_model_artifact(ids[model_type])),
                        "cold": cold_runs(dsn, csv, args.cold_runs),
                        "warm_load": summary_ms(
                            timings(lambda: load_predictor(brain, SYMBOL), args.runs)
                        ),
                        "predict": summary_ms(
                            timings(lambda p=predictor: p.predict(recent), args.runs)
                        ),
                        "of_which_features": summary_ms(
                            timings(lambda n=window: latest_features(*columns, rows=n), args.runs)
                        ),
                        # A sequence model has no one-row predict of its own to compare.
                        "of_which_model_predict": None
                        if window > 1
                        else summary_ms(
                            timings(
                                lambda p=predictor, x=rows: p.estimator.predict(x),
                                args.runs,
                            )
                        ),
                    }
                    results[model_type] = entry
                    print(model_type, json.dumps(entry), flush=True)
        finally:
            server.release()
    document = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "bars": {"trained_on": len(bars), "recent": RECENT_BARS, "bar": "1h"},
        "runs": args.runs,
        "cold_runs": args.cold_runs,
        "goal": (
            "warm predict median <= 1 ms for the scikit-learn models and <= 5 ms for the LSTM, "
            "load_predictor <= 0.5 s without TensorFlow"
        ),
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predictor_bench.json").write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({k: v["predict"]["median_ms"] for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
