"""``brain retrain`` and ``brain monitor``: the platform's jobs for chosen symbols, from a shell.

``retrain`` launches one daily_retrain run per symbol exactly as ``brain demo`` does (spawned
workers, progress lines). ``monitor`` runs monitoring_job for each symbol in this process and
reports the live verdict; with ``--act`` it also runs rollback_job where the verdict regressed,
instead of leaving that to rollback_sensor under the daemon.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from brain_assets.cli.help_text import described
from brain_assets.cli.output import emit, table
from brain_assets.cli.retrain_commands import (
    ProgressPrinter,
    _demo_retrain,
    _demo_worker_start,
    retrain_each,
    tries_note,
)
from brain_assets.cli.run_options import add_source_arguments, add_workers_argument, use_source
from brain_assets.environment import worker_count
from brain_assets.forkserver import warm_workers

if TYPE_CHECKING:
    from brain_assets.library import BrainLibrary

# What live_model_metrics raises when the active model has not met enough unseen bars yet
# (pipeline.monitoring.evaluate_active_model): no verdict, not a failure.
TOO_FEW_BARS = "bars after the active model's data window"
# Dagster's console logger stays quiet: a failed step is reported in one line per symbol below,
# not as Dagster's ERROR event with its stack trace.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

__all__ = ["ProgressPrinter", "register"]


def register(commands: Any) -> None:
    retrain = commands.add_parser(
        "retrain",
        help="run daily_retrain for the given symbols (one run per symbol)",
        **described(
            "Launches one daily_retrain run per symbol in spawned workers, as brain demo does, "
            "then prints each run's outcome and the symbol's active model. A run whose worker "
            "dies is tried again in a fresh worker.",
            "brain retrain BTC/USDT ETH/USDT",
            "brain retrain BTC/USDT --source store --timeframe 1h --json",
        ),
    )
    retrain.add_argument("symbols", nargs="+", metavar="SYMBOL")
    add_source_arguments(retrain, "these runs")
    retrain.add_argument("--json", action="store_true", help="machine-readable output")
    add_workers_argument(retrain)
    retrain.set_defaults(handler=run_retrain)

    monitor = commands.add_parser(
        "monitor",
        help="run monitoring_job for the given symbols and show the live verdicts",
        **described(
            "Runs monitoring_job for each symbol in this process and prints the live verdict "
            "of its active model; with --act, runs rollback_job at once where it regressed.",
            "brain monitor BTC/USDT ETH/USDT",
            "brain monitor BTC/USDT --act",
        ),
    )
    monitor.add_argument("symbols", nargs="+", metavar="SYMBOL")
    monitor.add_argument(
        "--act",
        action="store_true",
        help="run rollback_job now for a symbol whose live metrics regressed",
    )
    monitor.add_argument("--json", action="store_true", help="machine-readable output")
    monitor.set_defaults(handler=run_monitor)


def _say(args: argparse.Namespace, text: str) -> None:
    """Progress for people: stdout, or stderr when stdout carries --json."""
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def _prepare(symbols: list[str]) -> list[str]:
    from brain_assets.cli.instance import prepare_dagster_environment

    prepare_dagster_environment()
    import dagster as dg

    from brain_assets.defs.partitions import add_symbols, validate_symbol

    names = list(dict.fromkeys(validate_symbol(name) for name in symbols))
    with dg.DagsterInstance.get() as instance:
        add_symbols(instance, names)
    return names


def _json_worker_start(started: float, native_log: str) -> None:
    # As brain demo's workers, but the progress lines go to the terminal's stderr, so that
    # stdout carries only the JSON document.
    terminal_stderr = os.dup(2)
    _demo_worker_start(started, native_log)
    sys.stdout = os.fdopen(terminal_stderr, "w", buffering=1)


def _active_summary(brain: BrainLibrary, symbol: str) -> dict[str, Any]:
    status = brain.trading_status(symbol)
    active = status.active
    return {
        "active_version": None if active is None else active.version,
        "active_model_type": None if active is None else active.model_type,
        "active_model_id": None if active is None else active.model_id,
        "stand_aside": status.stand_aside,
        "reason": status.reason,
    }


def _active_line(row: dict[str, Any]) -> str:
    if row["stand_aside"]:
        return f"stand aside: {row['reason']}"
    return f"active v{row['active_version']} {row['active_model_type']}"


def run_retrain(args: argparse.Namespace) -> int:
    from brain_assets.cli.instance import prepare_brain_store
    from brain_assets.library import BrainLibrary

    use_source(args)
    native_log = warm_workers()
    symbols = _prepare(args.symbols)
    prepare_brain_store()
    started = time.monotonic()
    workers = min(len(symbols), worker_count(args.workers))
    _say(
        args,
        f"daily_retrain for {', '.join(symbols)}: {len(symbols)} run(s), {workers} at a time "
        f"(TensorFlow's native messages go to {native_log})",
    )
    results = retrain_each(
        symbols,
        _demo_retrain,
        workers=workers,
        plain_start=_json_worker_start if args.json else _demo_worker_start,
        initargs=(started, str(native_log)),
        command="retrain",
    )
    with BrainLibrary() as brain:
        rows = [{**result, **_active_summary(brain, result["symbol"])} for result in results]
    lines = []
    for row in rows:
        state = "succeeded" if row["success"] else "FAILED"
        lines.append(
            f"{row['symbol']}: run {row['run_id']} {state}{tries_note(row)}; {_active_line(row)}"
        )
        lines += [f"  {failure}" for failure in row["failures"]]
    lines.append(f"done in {time.monotonic() - started:.1f} s")
    emit(args, rows, "\n".join(lines))
    return 0 if all(row["success"] for row in rows) else 1


def _failures(result: Any) -> list[str]:
    """The innermost error message of each failed step of an in-process run."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            messages.append(error.message.strip() if error is not None else event.message)
    return messages


def _materialization(result: Any, node: str, symbol: str) -> dict[str, Any]:
    """The plain metadata values of ``node``'s materialisation of ``symbol`` in ``result``."""
    for materialization in result.asset_materializations_for_node(node):
        if materialization.partition == symbol:
            return {
                key: value.value
                for key, value in materialization.metadata.items()
                if isinstance(value.value, str | int | float | bool) or value.value is None
            }
    return {}


def _monitor_one(
    instance: Any, defs: Any, brain: BrainLibrary, symbol: str, act: bool
) -> dict[str, Any]:
    job = defs.resolve_job_def("monitoring_job")
    result = job.execute_in_process(
        instance=instance,
        partition_key=symbol,
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )
    row: dict[str, Any] = {
        "symbol": symbol,
        "run_id": result.run_id,
        "success": result.success,
        "verdict": None,
        "version": None,
        "bars": None,
        "sharpe_ratio": None,
        "p_value": None,
        "regressed": None,
        "rule": None,
        "relative_degradation": None,
        "rollback_pending": False,
        "rollback": None,
        "error": None,
    }
    if not result.success:
        failures = _failures(result)
        message = "; ".join(failures) or "the run failed"
        if any(TOO_FEW_BARS in failure for failure in failures):
            row.update(verdict="too_few_bars", error=message)
        else:
            row.update(verdict="failed", error=message)
        return {**row, **_active_summary(brain, symbol)}
    metadata = _materialization(result, "live_model_metrics", symbol)
    if "blocked" in metadata:
        row.update(verdict="blocked", error=str(metadata["blocked"]))
        return {**row, **_active_summary(brain, symbol)}
    if metadata.get("model_id") in (None, "none"):
        row.update(verdict="no_active_model")
        return {**row, **_active_summary(brain, symbol)}
    live = (result.output_for_node("live_model_metrics") or {}).get(symbol) or {}
    regressed = bool(metadata.get("regressed"))
    row.update(
        verdict="regressed" if regressed else "held",
        version=metadata.get("version"),
        bars=metadata.get("bars"),
        sharpe_ratio=(live.get("metrics") or {}).get("sharpe_ratio"),
        p_value=metadata.get("p_value"),
        regressed=regressed,
        rule=metadata.get("rule"),
        relative_degradation=metadata.get("relative_degradation"),
        rollback_pending=regressed,
    )
    if regressed and act:
        rollback = defs.resolve_job_def("rollback_job").execute_in_process(
            instance=instance,
            partition_key=symbol,
            run_config=QUIET_RUN_CONFIG,
            raise_on_error=False,
        )
        state = _materialization(rollback, "model_registry_state", symbol)
        row.update(
            rollback_pending=not rollback.success,
            rollback={
                "run_id": rollback.run_id,
                "success": rollback.success,
                "rolled_back": state.get("rolled_back"),
                "failures": _failures(rollback),
            },
        )
    return {**row, **_active_summary(brain, symbol)}


def _monitor_lines(row: dict[str, Any]) -> list[str]:
    head = f"{row['symbol']}: "
    verdict = row["verdict"]
    if verdict == "too_few_bars":
        return [head + f"no verdict yet: {row['error']}", "  " + _active_line(row)]
    if verdict == "no_active_model":
        return [head + f"nothing to monitor: {_active_line(row)}"]
    if verdict in ("blocked", "failed"):
        what = "bars failed ohlcv_valid" if verdict == "blocked" else "monitoring FAILED"
        return [head + f"{what}: {row['error']}", "  " + _active_line(row)]
    lines = [
        head
        + f"v{row['version']} over {row['bars']} live bars: "
        + ("REGRESSED" if row["regressed"] else "holds")
        + f" ({row['rule']})",
        table(
            [row],
            ["version", "bars", "sharpe_ratio", "p_value", "relative_degradation", "regressed"],
        ),
    ]
    rollback = row["rollback"]
    if rollback is not None:
        outcome = (
            f"rolled back; now {_active_line(row)}"
            if rollback["rolled_back"]
            else f"no rollback was made; {_active_line(row)}"
        )
        if not rollback["success"]:
            outcome = "rollback_job FAILED: " + "; ".join(rollback["failures"])
        lines.append(f"  rollback_job run {rollback['run_id']}: {outcome}")
    elif row["rollback_pending"]:
        lines.append(
            "  rollback pending: rollback_sensor requests rollback_job under the daemon "
            "(brain dev); `brain monitor --act` runs it now"
        )
    return lines


def run_monitor(args: argparse.Namespace) -> int:
    symbols = _prepare(args.symbols)
    import dagster as dg

    from brain_assets.definitions import defs
    from brain_assets.library import BrainLibrary
    from brain_assets.logs import configure_logging

    # Importing the definitions with BRAIN_LOG_DIR set reconfigures logging at INFO (for the
    # daemon's processes); keep main()'s console level for this command.
    configure_logging(console_level=logging.DEBUG if args.verbose else logging.WARNING)
    rows = []
    with dg.DagsterInstance.get() as instance, BrainLibrary() as brain:
        for symbol in symbols:
            _say(args, f"monitoring_job for {symbol} ...")
            rows.append(_monitor_one(instance, defs, brain, symbol, args.act))
    emit(args, rows, "\n".join(line for row in rows for line in _monitor_lines(row)))
    # Too few unseen bars is "no verdict yet", not a failure; a run that failed otherwise
    # (or a rollback_job that did) is.
    failed = [
        row
        for row in rows
        if row["verdict"] == "failed" or (row["rollback"] and not row["rollback"]["success"])
    ]
    return 1 if failed else 0
