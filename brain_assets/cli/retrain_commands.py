"""``brain demo`` (the daily retrain over the demo universe) and ``brain dev`` (UI + daemon)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from brain_assets.logs import log_dir_from_env

REPO = Path(__file__).resolve().parents[2]


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="run daily_retrain for the demo universe in one run and show the results"
    )
    demo.add_argument("--symbols", nargs="+", default=None, help="symbols (default: demo four)")
    demo.set_defaults(handler=run_demo)
    dev = commands.add_parser("dev", help="start the Dagster UI and daemon on the Brain's database")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--host", default="127.0.0.1")
    dev.set_defaults(handler=run_dev)


class ProgressPrinter(logging.Handler):
    """Prints the retrain's progress events as one line each."""

    def __init__(self, started: float) -> None:
        super().__init__(logging.INFO)
        self.started = started

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) != "retrain_progress":
            return
        f: dict[str, Any] = record.fields  # type: ignore[attr-defined]
        elapsed = time.monotonic() - self.started
        print(
            f"  [{elapsed:6.1f}s] {f['stage']:<19} {f['done']}/{f['total']} {f['symbol']:<10} "
            f"{f['seconds']:.2f}s",
            flush=True,
        )


@contextlib.contextmanager
def native_stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to ``path``: TensorFlow's C++ start-up chatter cannot be turned
    off from Python (TF_CPP_MIN_LOG_LEVEL no longer silences it) and would bury the progress."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def run_demo(args: argparse.Namespace) -> int:
    from brain_assets.cli.instance import prepare_dagster_environment

    prepare_dagster_environment()
    import dagster as dg

    from brain_assets.definitions import defs
    from brain_assets.defs.partitions import DEMO_SYMBOLS, add_symbols
    from brain_assets.store.library import BrainLibrary

    symbols = list(args.symbols or DEMO_SYMBOLS)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    progress = ProgressPrinter(started)
    logging.getLogger("brain_assets").addHandler(progress)
    logging.getLogger("brain_assets").setLevel(logging.INFO)
    with dg.DagsterInstance.get() as instance:
        add_symbols(instance, symbols)
        keys = instance.get_dynamic_partitions("symbols")
        ordered = [key for key in keys if key in symbols]
        first, last = keys.index(ordered[0]), keys.index(ordered[-1])
        # A single run covers a contiguous range of partitions; otherwise one run per symbol.
        ranges = [ordered] if keys[first : last + 1] == ordered else [[s] for s in ordered]
        print(
            f"daily_retrain for {', '.join(ordered)} in {len(ranges)} run(s); the Brain and "
            f"Dagster's runs are in PostgreSQL (BRAIN_HOME={os.environ['BRAIN_HOME']})"
        )
        job = defs.resolve_job_def("daily_retrain")
        native_log = log_dir_from_env() / "native-stderr.log"
        print(f"(TensorFlow's native messages go to {native_log})")
        with native_stderr_to(native_log):
            results = [
                job.execute_in_process(
                    instance=instance,
                    tags={
                        "dagster/asset_partition_range_start": chunk[0],
                        "dagster/asset_partition_range_end": chunk[-1],
                    },
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                    raise_on_error=False,
                )
                for chunk in ranges
            ]
    logging.getLogger("brain_assets").removeHandler(progress)
    for result in results:
        print(f"run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}")
        for event in result.all_events:
            if event.is_step_failure and event.step_key:
                error = event.event_specific_data.error  # type: ignore[union-attr]
                print(f"  {event.step_key}: {error.message.strip() if error else event.message}")
    print(f"done in {time.monotonic() - started:.1f} s\n")
    with BrainLibrary() as brain:
        quality = brain.get_data_quality_summary(started_at)
        for symbol in ordered:
            active = brain.get_active_model(symbol)
            if active is None:
                print(f"{symbol}: no active model")
            else:
                print(
                    f"{symbol}: active v{active['version']} {active['model_type']} "
                    f"composite score {active['composite_score']:.3f}"
                )
                top = brain.get_top_features(symbol, top_n=5)
                if not top.empty:
                    print(
                        f"  top 5 features ({top['method'].iloc[0]}): "
                        + ", ".join(
                            f"{f} ({v:.3g})"
                            for f, v in zip(top["feature"], top["importance"], strict=True)
                        )
                    )
            failures = quality[(quality["symbol"] == symbol) & (quality["failed"] > 0)]
            if failures.empty:
                print("  quality: every check passed")
            for row in failures.itertuples():
                print(
                    f"  quality FAILED: {row.check_name} ({row.severity}), "
                    f"{row.failure_count} failure(s)"
                )
    print("\nOpen the UI on the same data:  .venv/bin/brain dev   then http://127.0.0.1:3000")
    return 0 if all(result.success for result in results) else 1


def run_dev(args: argparse.Namespace) -> int:
    from brain_assets.cli.instance import prepare_dagster_environment

    env = prepare_dagster_environment()
    from brain_assets.logs import LOG_DIR_ENV, log_dir_from_env

    os.environ[LOG_DIR_ENV] = str(log_dir_from_env())  # the Dagster processes log there too
    dagster = Path(sys.executable).with_name("dagster")
    command = [
        str(dagster),
        "dev",
        "-w",
        str(REPO / "workspace.yaml"),
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    print(
        f"Dagster UI on http://{args.host}:{args.port} (DAGSTER_HOME={env['DAGSTER_HOME']}); "
        "Ctrl-C stops it",
        flush=True,
    )

    def restore_signals() -> None:
        # A shell started with `&` hands us SIGINT ignored, and dagster dev copies that onto
        # SIGTERM; with the defaults restored both stop it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    child = subprocess.Popen(command, cwd=REPO, preexec_fn=restore_signals)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return child.wait()
