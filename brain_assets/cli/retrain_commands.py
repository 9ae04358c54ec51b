"""``brain demo`` (the daily retrain over the demo universe) and ``brain dev`` (UI + daemon)."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brain_assets.bundled import bundled_path
from brain_assets.cli.help_text import described
from brain_assets.cli.run_options import add_source_arguments, add_workers_argument, use_source
from brain_assets.environment import DEFAULT_TIMEFRAME, MARKET_ENV, worker_count
from brain_assets.forkserver import warm_workers
from brain_assets.logs import configure_logging, log_dir_from_env
from brain_assets.lstm.network import LSTM_EXTRA_INSTALL, lstm_extra_missing

if TYPE_CHECKING:
    from brain_assets.cli.progress import Bar
    from brain_assets.library import BrainLibrary
    from brain_assets.records import ModelVersion


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run daily_retrain for the demo universe (one run per symbol) and show results",
        **described(
            "Runs daily_retrain for the demo universe, one run per symbol side by side, then "
            "prints each symbol's active model or why it stands aside. Generated markets unless "
            "--source says otherwise.",
            "brain demo",
            "brain demo --source files --folder ./bars --workers 2",
        ),
    )
    demo.add_argument(
        "--symbols",
        nargs="+",
        default=None,
        help="symbols (default: the demo four; with --source files or store, every symbol there)",
    )
    add_source_arguments(demo, "this demo")
    add_workers_argument(demo)
    demo.add_argument(
        "--no-lstm",
        action="store_true",
        help="train the scikit-learn models only (no TensorFlow); without the lstm extra the "
        "LSTM is left out anyway",
    )
    demo.set_defaults(handler=run_demo)
    dev = commands.add_parser(
        "dev",
        help="start the Dagster UI and daemon on the Brain's database",
        **described(
            "Starts the Dagster UI and daemon on the Brain's database; Ctrl-C stops both. "
            "--source sets the market source of the runs it launches.",
            "brain dev",
            "brain dev --port 3001 --source store",
        ),
    )
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--host", default="127.0.0.1")
    add_source_arguments(dev, "the runs it launches")
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


def _demo_worker_start(started: float, native_log: str) -> None:
    # Each worker writes its events to the parent's JSON log (brain.log beside the native log;
    # a spawned worker configures nothing by itself), prints its own progress lines, and keeps
    # TensorFlow's chatter in the native log.
    _worker_start(native_log, ProgressPrinter(started))


def _worker_start(native_log: str, progress: logging.Handler) -> None:
    configure_logging(log_dir=Path(native_log).parent, console=False)
    logging.getLogger("brain_assets").addHandler(progress)
    sink = os.open(native_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(sink, 2)
    os.close(sink)


class ProgressSender(logging.Handler):
    """Sends the retrain's progress events to the parent's bar, over ``events``."""

    def __init__(self, events: Any) -> None:
        super().__init__(logging.INFO)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "retrain_progress":
            fields: dict[str, Any] = record.fields  # type: ignore[attr-defined]
            self.events.put(("stage", fields["symbol"], fields["stage"]))


_EVENTS: Any = None
"""In a worker started by _bar_worker_start: the queue to the parent's progress bar."""


def _bar_worker_start(native_log: str, events: Any) -> None:
    # A worker killed while its queue's feeder writes must not hold up the exit of the others.
    events.cancel_join_thread()
    global _EVENTS
    _EVENTS = events
    _worker_start(native_log, ProgressSender(events))


def _reporting(task: Callable[..., dict[str, Any]], *job: Any) -> dict[str, Any]:
    """``task(*job)`` in a worker, then its end sent to the parent's bar."""
    result = task(*job)
    if _EVENTS is not None:
        _EVENTS.put(("done", result["symbol"], result["success"]))
    return result


def _follow(events: Any, bar: Bar, stop: threading.Event) -> None:
    """The parent's side of the workers' events: the bar's note, and a unit per run done;
    once ``stop`` is set, what has arrived is still read."""
    while True:
        try:
            kind, symbol, detail = events.get(timeout=0.2)
        except queue.Empty:
            if stop.is_set():
                return
            continue
        if kind == "stage":
            bar.note(f"{symbol}: {detail}")
        else:
            bar.advance(f"{symbol} {'succeeded' if detail else 'FAILED'}")


def retrain_each(
    symbols: Sequence[str],
    task: Callable[..., dict[str, Any]],
    *,
    workers: int,
    plain_start: Callable[[float, str], None],
    initargs: tuple[float, str],
    command: str,
) -> list[dict[str, Any]]:
    """run_per_symbol for ``task`` (one daily_retrain run): on a terminal's stderr a progress
    bar, fed by the workers over a queue; else the workers print their progress lines
    (``plain_start(*initargs)`` starts each: started, native log)."""
    from brain_assets.cli.progress import progress_bar
    from brain_assets.cli.worker_pool import run_per_symbol
    from brain_assets.forkserver import start_forkserver

    start_forkserver(stderr_to=initargs[1])
    pool = functools.partial(run_per_symbol, symbols, workers=workers, command=command)
    with progress_bar(f"brain {command}", total=len(symbols)) as bar:
        if bar is None:
            return pool(task, initializer=plain_start, initargs=initargs)
        import multiprocessing

        events = multiprocessing.get_context("spawn").Queue()
        stop = threading.Event()
        follower = threading.Thread(target=_follow, args=(events, bar, stop), daemon=True)
        follower.start()
        try:
            results = pool(
                functools.partial(_reporting, task),
                initializer=_bar_worker_start,
                initargs=(initargs[1], events),
            )
        finally:
            stop.set()
            follower.join()
        bar.finish()
        return results


def _demo_retrain(
    symbol: str,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
    *,
    include_lstm: bool | None = None,
) -> dict[str, Any]:
    """One daily_retrain run for ``symbol`` in this worker process (picklable summary). The
    parent names the run (``run_id``) so that it can fail the run itself if this worker dies.
    ``include_lstm`` overrides the retrain resource's setting (None: the definitions' own)."""
    import dagster as dg

    from brain_assets.definitions import defs
    from brain_assets.defs.run_workers import storage_connections_held

    job = defs.resolve_job_def("daily_retrain")
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if include_lstm is not None:
        # Every field of the resource as the definitions set it, this one replaced: a field
        # missing from run config would fall back to the class default, not to the definitions.
        resource: Any = (defs.resources or {})["retrain"]
        retrain = {**resource.model_dump(), "include_lstm": include_lstm}
        run_config["resources"] = {"retrain": {"config": retrain}}
    with dg.DagsterInstance.get() as instance, storage_connections_held(instance):
        result = job.execute_in_process(
            instance=instance,
            partition_key=symbol,
            run_config=run_config,
            raise_on_error=False,
            run_id=run_id,
            tags=tags,
        )
    failures = []
    for event in result.all_events:
        if event.is_step_failure and event.step_key:
            error = event.event_specific_data.error  # type: ignore[union-attr]
            failures.append(
                f"{event.step_key}: {error.message.strip() if error else event.message}"
            )
    return {
        "symbol": symbol,
        "run_id": result.run_id,
        "success": result.success,
        "failures": failures,
    }


def tries_note(result: dict[str, Any]) -> str:
    """`` after 2 tries`` for a run tried again after its worker died, else nothing."""
    return f" after {result['tries']} tries" if result["tries"] > 1 else ""


def _source_symbols(args: argparse.Namespace) -> list[str]:
    """The symbols a files folder or the bar store holds, for a demo without --symbols."""
    if args.source == "files":
        # BTC-USDT.csv holds BTC/USDT (see market_data.files).
        return sorted(
            {
                path.stem.replace("-", "/", 1)
                for path in Path(os.environ[MARKET_ENV["folder"]]).iterdir()
                if path.suffix in (".csv", ".parquet") and "-" in path.stem
            }
        )
    if args.source == "store":
        from brain_assets.library import BrainLibrary

        timeframe = os.environ.get(MARKET_ENV["timeframe"], DEFAULT_TIMEFRAME)
        with BrainLibrary() as brain:
            inventory = brain.bar_inventory()
        return sorted(set(inventory.loc[inventory["timeframe"] == timeframe, "symbol"]))
    return []


def run_demo(args: argparse.Namespace) -> int:
    from brain_assets.cli.instance import prepare_brain_store, prepare_dagster_environment

    use_source(args)
    native_log = warm_workers()  # started already by the console script (cli.entry)
    prepare_dagster_environment()
    import dagster as dg

    from brain_assets.defs.partitions import DEMO_SYMBOLS, add_symbols
    from brain_assets.library import BrainLibrary

    symbols = list(dict.fromkeys(args.symbols or _source_symbols(args) or DEMO_SYMBOLS))
    started_at = datetime.now(UTC)
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        add_symbols(instance, symbols)
    prepare_brain_store()
    # One run per symbol, as the schedule and UI backfills launch them: a symbol whose bars
    # fail the blocking check stops only its own run. Runs go side by side on the cores.
    workers = min(len(symbols), worker_count(args.workers))
    print(
        f"daily_retrain for {', '.join(symbols)}: {len(symbols)} run(s), {workers} at a time; "
        f"the Brain and Dagster's runs are in PostgreSQL (BRAIN_HOME={os.environ['BRAIN_HOME']})"
    )
    print(f"(TensorFlow's native messages go to {native_log})")
    task = _demo_retrain
    if args.no_lstm or (missing := lstm_extra_missing()) is not None:
        if not args.no_lstm:
            print(
                f"LSTM skipped: the `lstm` extra is not installed ({missing} is missing); "
                f"{LSTM_EXTRA_INSTALL} to train it"
            )
        task = functools.partial(_demo_retrain, include_lstm=False)
    results = retrain_each(
        symbols,
        task,
        workers=workers,
        plain_start=_demo_worker_start,
        initargs=(started, str(native_log)),
        command="demo",
    )
    for result in results:
        state = "succeeded" if result["success"] else "FAILED"
        print(f"run {result['run_id'][:8]} {result['symbol']} {state}{tries_note(result)}")
        for failure in result["failures"]:
            print(f"  {failure}")
    print(f"done in {time.monotonic() - started:.1f} s\n")
    with BrainLibrary() as brain:
        quality = brain.get_data_quality_summary(started_at)
        for symbol in symbols:
            _print_symbol_outcome(brain, symbol, args.source, quality, started_at)
    print(f"\nOpen the UI on the same data:  .venv/bin/brain dev{_same_source()}")
    print("then http://127.0.0.1:3000")
    return 0 if all(result["success"] for result in results) else 1


def _print_symbol_outcome(
    brain: BrainLibrary, symbol: str, source: str | None, quality: Any, started_at: datetime
) -> None:
    """What the demo's run left for ``symbol``: its active version (or why it stands aside),
    the bars cleaning left out, and the quality checks that failed."""
    from brain_assets.market_data.synthetic import EDGE_MARKETS
    from brain_assets.store.quality import CLEANING_CHECK

    active = brain.get_active_model(symbol)
    if symbol in EDGE_MARKETS and source in (None, "auto", "synthetic"):
        print(
            f"{symbol}: its synthetic market carries a real edge (AR(1) momentum "
            f"{EDGE_MARKETS[symbol]:g}); the others' have none net of fees"
        )
    if active is None:
        print(f"{symbol}: stand aside: {brain.trading_status(symbol).reason}")
    else:
        _print_active(brain, symbol, active)
    cleaning = brain.get_data_quality_logs(symbol, since=started_at)
    for details in cleaning.loc[cleaning["check_name"] == CLEANING_CHECK, "details"]:
        if (details or {}).get("left_out"):
            print(f"  bars: {details['left_out']['reason']}")
            break
    failures = quality[(quality["symbol"] == symbol) & (quality["failed"] > 0)]
    if failures.empty:
        print("  quality: every check passed")
    for row in failures.itertuples():
        print(
            f"  quality FAILED: {row.check_name} ({row.severity}), {row.failure_count} failure(s)"
        )


def _print_active(brain: BrainLibrary, symbol: str, active: ModelVersion) -> None:
    metrics = active.metrics or {}
    print(
        f"{symbol}: active v{active.version} {active.model_type}: "
        f"out of sample over {metrics.get('n_observations', 0):.0f} bars, net of "
        f"fees, Sharpe {metrics.get('sharpe_ratio', float('nan')):.2f}, return "
        f"{metrics.get('total_return', float('nan')):+.1%} (holding "
        f"{metrics.get('hold_total_return', float('nan')):+.1%}, standing aside 0%)"
    )
    top = brain.get_top_features(symbol, top_n=5)
    if not top.empty:
        print(
            f"  top 5 features ({top['method'].iloc[0]}): "
            + ", ".join(
                f"{f} ({v:.3g})" for f, v in zip(top["feature"], top["importance"], strict=True)
            )
        )


def _same_source() -> str:
    """The ``brain dev`` options that make the UI's runs read the bars this command read."""
    source = os.environ.get(MARKET_ENV["source"], "").strip()
    if not source:
        return ""
    folder = os.environ.get(MARKET_ENV["folder"], "").strip()
    return f" --source {source}" + (f" --folder {folder}" if source == "files" and folder else "")


def run_dev(args: argparse.Namespace) -> int:
    from brain_assets.cli.instance import prepare_dagster_environment

    use_source(args)  # the daemon's and the UI's runs read it (defs.resources.market_resource)
    env = prepare_dagster_environment()
    from brain_assets.logs import LOG_DIR_ENV

    os.environ[LOG_DIR_ENV] = str(log_dir_from_env())  # the Dagster processes log there too
    # `python -m dagster`: the console script may not sit next to this interpreter (a wheel
    # installed into an environment whose dependencies live elsewhere).
    command = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(bundled_path("workspace.yaml")),
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

    # Its own process group, so that whatever dagster dev leaves behind when it exits (a code
    # server still shutting down, holding the output pipe) can be stopped with it.
    # Run from BRAIN_HOME: an installed package has no checkout to run from.
    child = subprocess.Popen(
        command, cwd=env["BRAIN_HOME"], preexec_fn=restore_signals, start_new_session=True
    )

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code = child.wait()
    _stop_group(child.pid)
    return code


def _stop_group(pgid: int, grace_s: float = 10.0) -> None:
    """SIGTERM what is left of the process group, then SIGKILL it after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
