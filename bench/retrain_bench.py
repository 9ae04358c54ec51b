"""daily_retrain for N synthetic symbols in one run: per-stage wall time, total, and the
orchestration-plus-persistence overhead (total minus time inside fit, predict and importance).

    .venv/bin/python bench/retrain_bench.py [--symbols 1 4 16] [--repeats 3] [--bars 3000]

Each repetition uses a fresh embedded PostgreSQL database and an ephemeral Dagster instance.
Results go to bench/results/retrain_bench.json; quote the medians.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import dagster as dg

from brain_assets.defs.partitions import add_symbols
from brain_assets.defs.resources import MarketDataResource, RetrainResource
from brain_assets.defs.retrain.graph import DAILY_RETRAIN_ASSETS
from brain_assets.store.embedded import start_embedded

RESULTS = Path(__file__).parent / "results" / "retrain_bench.json"
COMPUTE = ("fit", "predict", "importance")


class Recorder(logging.Handler):
    """Collects the retrain's timing events (stage wall times and compute inside them)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.stages: dict[str, float] = defaultdict(float)
        self.compute: dict[str, float] = defaultdict(float)

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = getattr(record, "fields", {})
        event = getattr(record, "event", None)
        if event == "retrain_progress":
            self.stages[fields["stage"]] += fields["seconds"]
        elif event == "compute_timing":
            self.compute[fields["stage"]] += fields["seconds"]


def one_run(server: Any, n_symbols: int, bars: int, retrain: RetrainResource) -> dict[str, Any]:
    from brain_assets.defs.io_manager import BrainIOManager
    from brain_assets.defs.monitoring.resources import MonitoringResource
    from brain_assets.defs.resources import BrainResource, DecisionResource

    dsn = server.ensure_database(f"bench_{uuid.uuid4().hex[:10]}")
    symbols = [f"S{i:02d}/USDT" for i in range(n_symbols)]
    instance = dg.DagsterInstance.ephemeral()
    add_symbols(instance, symbols)
    brain = BrainResource(dsn=dsn)
    recorder = Recorder()
    logger = logging.getLogger("brain_assets")
    logger.addHandler(recorder)
    logger.setLevel(logging.DEBUG)
    started = time.perf_counter()
    result = dg.materialize(
        DAILY_RETRAIN_ASSETS,
        instance=instance,
        resources={
            "brain": brain,
            "brain_io_manager": BrainIOManager(brain=brain),
            "market": MarketDataResource(source="synthetic", n_bars=bars),
            "retrain": retrain,
            "monitoring": MonitoringResource(),
            "decisions": DecisionResource(),
        },
        tags={
            "dagster/asset_partition_range_start": symbols[0],
            "dagster/asset_partition_range_end": symbols[-1],
        },
    )
    total = time.perf_counter() - started
    logger.removeHandler(recorder)
    assert result.success
    compute = sum(recorder.compute.get(kind, 0.0) for kind in COMPUTE)
    return {
        "symbols": n_symbols,
        "total_s": total,
        "compute_s": compute,
        "overhead_s": total - compute,
        "overhead_share": (total - compute) / total,
        "stages_s": dict(recorder.stages),
        "compute_by_kind_s": dict(recorder.compute),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bars", type=int, default=3000)
    parser.add_argument("--lstm", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file")
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    retrain = RetrainResource(include_lstm=args.lstm)
    summary = []
    with tempfile.TemporaryDirectory(prefix="brain-retrain-bench-") as folder:
        server = start_embedded(Path(folder) / "pgdata")
        one_run(server, 1, args.bars, retrain)  # warm-up: imports, numba and shap compile
        for n in args.symbols:
            runs = [one_run(server, n, args.bars, retrain) for _ in range(args.repeats)]
            median = {
                key: statistics.median(r[key] for r in runs)
                for key in ("total_s", "compute_s", "overhead_s", "overhead_share")
            }
            stages = {
                stage: statistics.median(r["stages_s"].get(stage, 0.0) for r in runs)
                for stage in runs[0]["stages_s"]
            }
            row = {
                "symbols": n,
                **median,
                "per_symbol_s": median["total_s"] / n,
                "stages_s": stages,
                "runs": runs,
            }
            summary.append(row)
            print(
                f"N={n:>2}: total {median['total_s']:6.1f} s ({median['total_s'] / n:4.1f} s/"
                f"symbol), compute {median['compute_s']:6.1f} s, overhead "
                f"{median['overhead_s']:5.1f} s = {100 * median['overhead_share']:4.1f}%  | "
                + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
            )
        server.release()
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"bars": args.bars, "repeats": args.repeats, "lstm": args.lstm, "results": summary},
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
