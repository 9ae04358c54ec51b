"""daily_retrain of one symbol on one-minute bars at growing bar counts: time, memory and the size
of the asset values stored, to see whether anything grows faster than the bars.

    .venv/bin/python bench/minute_bars_scaling.py [--sizes 10000 100000 525600] [--repeats 1]

Each size runs in its own subprocess, so that its peak memory is its own: the retrain process's
``ru_maxrss`` (exact peak resident set), and the embedded PostgreSQL's processes sampled every
half second (their proportional set size, PSS, summed: shared buffers are counted once). Each
run materialises every daily_retrain asset for the symbol with a fresh embedded database and an
ephemeral Dagster instance, without the LSTM (``RetrainResource(include_lstm=False)``, the
scikit-learn model types only), after an untimed 3,000-bar warm-up run in the same process
(imports, first-call compilation), whose database is separate. OpenMP and BLAS run one thread
(``--threads``): the retrain's rule for every model (training.models.single_threaded), applied
here to the stages outside it too (importance), so that a shared machine's load does not turn
OpenMP barriers into most of the time.

Reported per size: total wall time and per 1,000 bars; the compute time of each stage (the
``retrain_progress`` events: the per-symbol work inside the asset, without the IO manager); each
step's wall time from Dagster's event log and the IO manager's reads and writes inside it; fit,
predict and importance time per model type; peak memory; and the bytes of each asset value
stored in ``asset_values`` (raw, and as stored after PostgreSQL's TOAST compression).
Results go to bench/results/minute_bars_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).parent / "results" / "minute_bars_scaling.json"
SYMBOL = "S00/USDT"
WARMUP_BARS = 3000
SAMPLE_EVERY_S = 0.5
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


_IO: dict[str, float] = defaultdict(float)
"""Seconds in the IO manager of the run being measured, per ``read:``/``write:`` and asset."""


class _Recorder(logging.Handler):
    """The retrain's timing events: stage compute per stage, fit/predict/importance per model."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.stages: dict[str, float] = defaultdict(float)
        self.compute: dict[str, dict[str, float]] = defaultdict(dict)

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = getattr(record, "fields", {})
        event = getattr(record, "event", None)
        if event == "retrain_progress":
            self.stages[fields["stage"]] += fields["seconds"]
        elif event == "compute_timing":
            self.compute[fields["stage"]][fields["model_type"]] = fields["seconds"]


def _io_manager_class() -> Any:
    """BrainIOManager that also times each read and write (per asset, summed)."""
    import dagster as dg

    from brain_assets.defs.io_manager import BrainIOManager

    class TimedIOManager(BrainIOManager):
        def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
            started = time.perf_counter()
            super().handle_output(context, obj)
            _IO["write:" + context.asset_key.to_user_string()] += time.perf_counter() - started

        def load_input(self, context: dg.InputContext) -> dict[str, Any]:
            started = time.perf_counter()
            value = super().load_input(context)
            _IO["read:" + context.asset_key.to_user_string()] += time.perf_counter() - started
            return value

    return TimedIOManager


def _materialize(server: Any, bars: int) -> dict[str, Any]:
    import dagster as dg

    from brain_assets.defs.monitoring.resources import MonitoringResource
    from brain_assets.defs.partitions import add_symbols
    from brain_assets.defs.resources import (
        BrainResource,
        DecisionResource,
        MarketDataResource,
        RetrainResource,
    )
    from brain_assets.defs.retrain.graph import DAILY_RETRAIN_ASSETS

    dsn = server.ensure_database(f"scaling_{uuid.uuid4().hex[:10]}")
    instance = dg.DagsterInstance.ephemeral()
    add_symbols(instance, [SYMBOL])
    brain = BrainResource(dsn=dsn)
    recorder = _Recorder()
    logger = logging.getLogger("brain_assets")
    logger.addHandler(recorder)
    logger.setLevel(logging.DEBUG)
    _IO.clear()
    started = time.perf_counter()
    with _RssSampler() as sampler:
        result = dg.materialize(
            DAILY_RETRAIN_ASSETS,
            instance=instance,
            partition_key=SYMBOL,
            resources={
                "brain": brain,
                "brain_io_manager": _io_manager_class()(brain=brain),
                "market": MarketDataResource(source="synthetic", n_bars=bars, bar="1min"),
                "retrain": RetrainResource(include_lstm=False),
                "monitoring": MonitoringResource(),
                "decisions": DecisionResource(),
            },
        )
    total = time.perf_counter() - started
    logger.removeHandler(recorder)
    if not result.success:
        raise RuntimeError(f"daily_retrain failed at {bars} bars")
    spans = _step_spans(instance, result.run_id)
    return {
        "dsn": dsn,
        "total_s": total,
        "stage_compute_s": dict(recorder.stages),
        "compute_by_model_s": {stage: dict(v) for stage, v in recorder.compute.items()},
        "step_wall_s": {step: round(end - start, 3) for step, (start, end) in spans.items()},
        "step_peak_rss_mb": {
            step: sampler.peak_mb(start, end) for step, (start, end) in spans.items()
        },
        "io_manager_s": dict(_IO),
    }


def _step_spans(instance: Any, run_id: str) -> dict[str, tuple[float, float]]:
    """(STEP_START, STEP_SUCCESS) wall-clock times of each step (IO manager included)."""
    starts: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[entry.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS" and entry.step_key in starts:
            spans[entry.step_key] = (starts[entry.step_key], entry.timestamp)
    return spans


class _RssSampler:
    """This process's resident set every ``SAMPLE_EVERY_S / 10`` s, to tell which step peaks."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(SAMPLE_EVERY_S / 10):
            self.samples.append((time.time(), process.memory_info().rss))

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self, start: float, end: float) -> float | None:
        inside = [rss for when, rss in self.samples if start <= when <= end]
        return round(max(inside) / 2**20, 1) if inside else None


def _asset_value_sizes(dsn: str) -> dict[str, dict[str, Any]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """SELECT asset_key, format, count(*), sum(octet_length(value)),
                      sum(pg_column_size(value))
               FROM asset_values GROUP BY asset_key, format ORDER BY asset_key"""
        ).fetchall()
    return {
        key: {"format": fmt, "values": int(n), "bytes": int(raw), "stored_bytes": int(stored)}
        for key, fmt, n, raw, stored in rows
    }


def child(bars: int, pgdata: Path, out: Path) -> None:
    """One size, in this process: warm-up, the measured run, then its figures to ``out``."""
    from brain_assets.store.embedded import start_embedded

    logging.getLogger("dagster").setLevel(logging.WARNING)
    server = start_embedded(pgdata)
    try:
        _materialize(server, WARMUP_BARS)
        rss_before = psutil.Process().memory_info().rss
        run = _materialize(server, bars)
        sizes = _asset_value_sizes(run.pop("dsn"))
    finally:
        server.release()
    # Linux reports ru_maxrss in KiB.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out.write_text(
        json.dumps(
            {
                **run,
                "rss_after_warmup_mb": rss_before / 2**20,
                "peak_rss_mb": peak / 2**20,
                "asset_values": sizes,
            }
        )
    )


def _postgres_pss(pgdata: Path) -> int:
    """Summed PSS of the postmaster serving ``pgdata`` and of its backends (0 if not found)."""
    total = 0
    folder = str(pgdata)
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            # The retrain process has the folder on its command line too: only the postmaster.
            if process.info["name"] != "postgres":
                continue
            if folder not in " ".join(process.info["cmdline"] or []):
                continue
            for member in (process, *process.children(recursive=True)):
                total += member.memory_full_info().pss
        except psutil.Error:
            continue
    return total


def run_size(bars: int, threads: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="brain-minute-bars-") as folder:
        pgdata = Path(folder) / "pgdata"
        out = Path(folder) / "result.json"
        log = Path(folder) / "run.log"
        command = [sys.executable, __file__, "--child", str(bars), str(pgdata), str(out)]
        env = dict(os.environ)
        if threads is not None:
            env.update({name: str(threads) for name in THREAD_VARIABLES})
        with log.open("w") as sink:
            process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
            peak_postgres = 0
            stop = threading.Event()

            def sample() -> None:
                nonlocal peak_postgres
                while not stop.wait(SAMPLE_EVERY_S):
                    peak_postgres = max(peak_postgres, _postgres_pss(pgdata))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            code = process.wait()
            stop.set()
            sampler.join()
        if code != 0:
            tail = log.read_text()[-4000:]
            raise RuntimeError(f"the {bars}-bar run exited with {code}; its log ends:\n{tail}")
        result: dict[str, Any] = json.loads(out.read_text())
    result["bars"] = bars
    result["s_per_1k_bars"] = result["total_s"] / bars * 1000
    result["postgres_peak_pss_mb"] = peak_postgres / 2**20
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose total is the median (the middle one; the faster of the two middles)."""
    ordered = sorted(runs, key=lambda r: r["total_s"])
    return {**ordered[(len(ordered) - 1) // 2], "totals_s": [r["total_s"] for r in runs]}


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 525_600])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP/BLAS threads of each run (0: the libraries' default, every core)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=3, metavar=("BARS", "PGDATA", "OUT"))
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), Path(args.child[1]), Path(args.child[2]))
        return
    machine = _machine()
    summary = []
    for bars in args.sizes:
        threads = args.threads or None
        row = _median_run([run_size(bars, threads) for _ in range(args.repeats)])
        summary.append(row)
        stages = ", ".join(f"{k} {v:.1f}" for k, v in row["stage_compute_s"].items())
        stored = sum(v["bytes"] for v in row["asset_values"].values())
        print(
            f"{bars:>7} bars: total {row['total_s']:7.1f} s ({row['s_per_1k_bars']:.3f} s/1k bars)"
            f", peak RSS {row['peak_rss_mb']:6.0f} MB (postgres {row['postgres_peak_pss_mb']:.0f}"
            f" MB), asset values {stored / 2**20:.1f} MB | {stages}",
            flush=True,
        )
    if len(summary) > 1:
        first, last = summary[0], summary[-1]
        print(
            f"time per bar, largest over smallest: "
            f"{last['s_per_1k_bars'] / first['s_per_1k_bars']:.2f}; median s/1k bars "
            f"{statistics.median(r['s_per_1k_bars'] for r in summary):.3f}"
        )
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine,
                "symbol": SYMBOL,
                "bar": "1min",
                "model_types": "ridge, random_forest, hist_gradient_boosting (no lstm)",
                "repeats": args.repeats,
                "threads": args.threads or "library default",
                "results": summary,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
