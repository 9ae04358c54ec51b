"""Operator commands: verify, symbols, rollback."""

from __future__ import annotations

import argparse
import importlib
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from brain_assets.cli.help_text import described
from brain_assets.cli.output import emit, table
from brain_assets.lstm.network import LSTMExtraMissingError, lstm_extra_missing

if TYPE_CHECKING:
    from brain_assets.library import BrainLibrary


def register(commands: Any) -> None:
    verify = commands.add_parser(
        "verify",
        help="check imports, database, schema and services",
        **described(
            "One line per check (imports, database, schema, services); exit status 0 only "
            "when every check passes.",
            "brain verify",
            "brain verify --json",
        ),
    )
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=run_verify)

    _register_symbols(commands)

    rollback = commands.add_parser(
        "rollback",
        help="reactivate a symbol's previous version",
        **described(
            "Reactivates SYMBOL's previous version, or VERSION with --to.",
            "brain rollback BTC/USDT",
            "brain rollback BTC/USDT --to 3",
        ),
    )
    rollback.add_argument("symbol")
    rollback.add_argument("--to", type=int, default=None, dest="to_version", metavar="VERSION")
    rollback.add_argument("--json", action="store_true")
    rollback.set_defaults(handler=run_rollback)

    maintenance = commands.add_parser(
        "maintenance",
        help="archive metrics, importance and quality logs past the retention",
        **described(
            "Archives metrics, feature importance and quality logs older than the retention, "
            "and deletes stale run values and old alerts.",
            "brain maintenance",
            "brain maintenance --retention-days 180",
        ),
    )
    maintenance.add_argument("--retention-days", type=int, default=365)
    maintenance.add_argument("--json", action="store_true")
    maintenance.set_defaults(handler=run_maintenance)

    _file_command(
        commands,
        "backup",
        "archive the Brain's and the Dagster instance's databases to PATH, then verify it",
        described(
            "Archives the Brain's and the Dagster instance's databases to PATH, then verifies "
            "the archive; --verify only checks an existing one.",
            "brain backup ~/brain-backups/2026-12-07.tar",
            "brain backup ~/brain-backups/2026-12-07.tar --verify",
        ),
        run_backup,
        {
            "--verify": "only check the existing backup at PATH (sha256s, pg_restore --list, "
            "versions)"
        },
    )
    _file_command(
        commands,
        "restore",
        "restore a backup made by `brain backup` into the Brain (and Dagster)",
        described(
            "Verifies, then restores a backup made by brain backup into the Brain and the "
            "Dagster instance; --force replaces databases that hold data.",
            "brain restore ~/brain-backups/2026-12-07.tar",
            "brain restore ~/brain-backups/2026-12-07.tar --force --no-dagster",
        ),
        run_restore,
        {
            "--force": "replace the tables of databases that already hold data",
            "--no-dagster": "restore the Brain's database only and leave the Dagster instance's "
            "as it is",
        },
    )


def _register_symbols(commands: Any) -> None:
    """``brain symbols add|list|remove``."""
    symbols = commands.add_parser(
        "symbols",
        help="the symbols (partitions) the platform trains",
        **described(
            "Adds, lists or removes the symbols (Dagster partitions) the platform trains.",
            "brain symbols add BTC/USDT ETH/USDT",
            "brain symbols list",
        ),
    )
    actions = symbols.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="add symbols, e.g. BTC/USDT ETH/USDT",
        **described("Adds symbols to train; those present stay.", "brain symbols add SOL/USDT"),
    )
    add.add_argument("names", nargs="+")
    listing = actions.add_parser(
        "list",
        help="list the symbols",
        **described("Lists the symbols the platform trains.", "brain symbols list --json"),
    )
    remove = actions.add_parser(
        "remove",
        help="remove symbols (their stored models stay)",
        **described(
            "Removes symbols from training; their stored models stay in the Brain.",
            "brain symbols remove SOL/USDT",
        ),
    )
    remove.add_argument("names", nargs="+")
    for parser in (add, listing, remove):
        parser.add_argument("--json", action="store_true")
    symbols.set_defaults(handler=run_symbols)


def _file_command(
    commands: Any,
    name: str,
    about: str,
    text: dict[str, Any],
    handler: Callable[[argparse.Namespace], int],
    flags: dict[str, str],
) -> None:
    """A command on the backup file PATH, with its on/off ``flags`` (name: help) and --json;
    ``text``: its description and examples (help_text.described)."""
    parser = commands.add_parser(name, help=about, **text)
    parser.add_argument("path")
    for flag, flag_help in flags.items():
        parser.add_argument(flag, action="store_true", help=flag_help)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=handler)


def _check(name: str, required: bool, probe: Callable[[], str]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail, ok = probe(), True
    except Exception as exc:  # every failure becomes a ❌ line; verify must report, not crash
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return {
        "check": name,
        "ok": ok,
        "required": required,
        "detail": detail,
        "seconds": round(time.monotonic() - started, 3),
    }


def run_verify(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    results.append(_check("imports", True, lambda: _imports()))
    brain_holder: dict[str, Any] = {}
    results.append(_check("database connection", True, lambda: _open_brain(brain_holder)))
    brain = brain_holder.get("brain")
    results += [
        _check("schema version", True, lambda: _verify_schema(brain)),
        _check("feature importance service", True, lambda: _verify_importance(brain)),
        _check("model versioning service", True, lambda: _verify_versioning(brain)),
        _check("model selector service", True, lambda: _verify_selector(brain)),
        _check("evaluation service", True, _verify_evaluation),
        # Required only where the lstm extra is installed: a core install reports it, and passes.
        _check("LSTM availability", lstm_extra_missing() is None, _verify_lstm),
    ]
    if brain is not None:
        brain.close()
    ok = all(r["ok"] for r in results if r["required"])
    lines = [f"{'✅' if r['ok'] else '❌'} {r['check']}: {r['detail']}" for r in results]
    lines.append("all required checks passed" if ok else "some required checks FAILED")
    emit(args, {"ok": ok, "checks": results}, "\n".join(lines))
    return 0 if ok else 1


def _open_brain(holder: dict[str, Any]) -> str:
    """Open the Brain into ``holder`` (kept there for the checks after this one)."""
    from brain_assets.library import BrainLibrary

    holder["brain"] = BrainLibrary()
    brain = holder["brain"]
    return f"{brain.masked_dsn} ({brain.origin})"


def _needs_brain(brain: BrainLibrary | None) -> BrainLibrary:
    if brain is None:
        raise RuntimeError("skipped: no database connection")
    return brain


def _verify_schema(brain: BrainLibrary | None) -> str:
    from brain_assets.store.migrations import latest_version

    current, latest = _needs_brain(brain).schema_version(), latest_version()
    if current != latest:
        raise RuntimeError(f"schema version {current}, expected {latest}")
    return f"version {current}"


def _verify_importance(brain: BrainLibrary | None) -> str:
    import numpy as np

    from brain_assets.importance.analyzer import FeatureImportanceAnalyzer

    _needs_brain(brain)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = 2 * X[:, 0] + rng.normal(scale=0.1, size=200)
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(X, y)
    tables = FeatureImportanceAnalyzer().analyze_feature_importance(
        "VERIFY/USDT", model, X, y, ["a", "b", "c"], methods=("correlation",)
    )
    top = tables["correlation"]["feature"].iloc[0]
    if top != "a":
        raise RuntimeError(f"expected feature a on top, got {top}")
    return "correlation analysis ranks the signal first"


def _verify_versioning(brain: BrainLibrary | None) -> str:
    from brain_assets.lifecycle.versioning import ModelVersioning, assess_regression

    ModelVersioning(_needs_brain(brain))
    verdict = assess_regression({"sharpe_ratio": 2.0}, {"sharpe_ratio": 1.0})
    if not verdict.regressed:
        raise RuntimeError("a halved Sharpe ratio was not flagged")
    return "rollback rule flags a regression"


def _verify_selector(brain: BrainLibrary | None) -> str:
    from brain_assets.lifecycle.selection import ModelSelector

    answer = ModelSelector(_needs_brain(brain)).select_model_for_symbol("VERIFY/NONE", "high")
    if answer is not None:
        raise RuntimeError("an unknown symbol should have no model")
    return "ModelSelector answers"


def _verify_evaluation() -> str:
    import numpy as np

    from brain_assets.evaluation.comprehensive import ComprehensiveEvaluation

    rng = np.random.default_rng(1)
    r = rng.normal(0, 0.01, 500)
    metrics = ComprehensiveEvaluation().evaluate_model(r, r, r, periods_per_year=8760)
    if metrics["directional_accuracy"] != 1.0 or (metrics["composite_score"] or 0) < 0.5:
        raise RuntimeError(f"perfect foresight evaluated as {metrics}")
    return f"perfect foresight scores {metrics['composite_score']:.2f}"


def _verify_lstm() -> str:
    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's banner quiet
    if (missing := lstm_extra_missing()) is not None:
        raise LSTMExtraMissingError(missing)
    keras = importlib.import_module("keras")
    from brain_assets.lstm import StandardizedLSTM

    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(48, 2)), rng.normal(size=48)
    model = StandardizedLSTM(2, lstm_units=4, num_layers=1, sequence_length=4, seed=1)
    model.fit(X[:32], y[:32], X[32:], y[32:], epochs=1, batch_size=16)
    attention = model.get_attention_weights(X[32:])
    if not np.allclose(attention.sum(axis=1), 1.0):
        raise RuntimeError("attention rows do not sum to 1")
    return f"keras {keras.__version__} on {keras.backend.backend()}: a tiny LSTM trains"


def _imports() -> str:
    started = time.monotonic()
    importlib.import_module("brain_assets")
    importlib.import_module("brain_assets.definitions")
    return f"brain_assets and its Dagster definitions in {time.monotonic() - started:.1f} s"


def _instance() -> Any:
    from brain_assets.cli.instance import prepare_dagster_environment

    prepare_dagster_environment()
    import dagster as dg

    return dg.DagsterInstance.get()


def run_symbols(args: argparse.Namespace) -> int:
    from brain_assets.defs.partitions import add_symbols, symbols, validate_symbol

    with _instance() as instance:
        if args.action == "add":
            added = add_symbols(instance, args.names)
            emit(args, {"added": added}, f"added: {', '.join(added) or 'none (all present)'}")
        elif args.action == "remove":
            names = [validate_symbol(name) for name in args.names]
            present = set(instance.get_dynamic_partitions(symbols.name))
            missing = [n for n in names if n not in present]
            if missing:
                raise ValueError(f"not a symbol: {', '.join(missing)}")
            for name in names:
                instance.delete_dynamic_partition(symbols.name, name)
            emit(
                args,
                {"removed": names},
                f"removed: {', '.join(names)} (their models and metrics stay in the Brain)",
            )
        else:
            keys = list(instance.get_dynamic_partitions(symbols.name))
            emit(args, keys, "\n".join(keys) or "no symbols yet: brain symbols add BTC/USDT")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from brain_assets.library import BrainLibrary
    from brain_assets.lifecycle.versioning import ModelVersioning

    with BrainLibrary() as brain:
        active = ModelVersioning(brain).rollback(args.symbol, args.to_version)
    picked = {
        k: active.to_dict()[k]
        for k in ("model_id", "symbol", "version", "model_type", "composite_score")
    }
    emit(
        args,
        picked,
        f"{args.symbol}: version {active.version} ({active.model_type}) "
        "is active now\n" + table([picked], list(picked)),
    )
    return 0


def run_maintenance(args: argparse.Namespace) -> int:
    from brain_assets.library import BrainLibrary
    from brain_assets.plots import DEFAULT_CHART_RETENTION_DAYS, prune_charts
    from brain_assets.store.maintenance import archived_counts, run_retention

    with BrainLibrary() as brain:
        moved = run_retention(brain, retention_days=args.retention_days)
        archived = archived_counts(brain)
    # By age only: the symbols' partitions live in the Dagster instance, which the maintenance
    # job reads to remove the charts of symbols no longer there.
    charts = prune_charts(retention_days=DEFAULT_CHART_RETENTION_DAYS)
    rows = [
        {"table": t, "archived_now": n, "in_archive": archived.get(t)} for t, n in moved.items()
    ]
    emit(
        args,
        {"archived_now": moved, "in_archive": archived, "charts": charts},
        f"archived rows older than {args.retention_days} days (active models' rows stay); "
        "deleted unpublished values older than a week and settled alerts past the window; "
        f"deleted {charts['chart_files_deleted']} chart file(s) not drawn for "
        f"{DEFAULT_CHART_RETENTION_DAYS} days\n"
        + table(rows, ["table", "archived_now", "in_archive"]),
    )
    return 0


def _backup_target() -> tuple[str, str | None]:
    """The Brain's DSN and the Dagster instance's own database beside it (None: the instance
    keeps its tables in the Brain's database, as it does with DATABASE_DSN)."""
    from brain_assets.cli.instance import dagster_database_for
    from brain_assets.store.target import resolve

    target = resolve(None)
    return target.dsn, dagster_database_for(target.origin)


def _row_table(counts: dict[str, int]) -> str:
    return table([{"table": t, "rows": n} for t, n in counts.items()], ["table", "rows"])


def run_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from brain_assets.store.backup import backup, verify_backup

    if args.verify:
        try:
            report = verify_backup(Path(args.path))
        except FileNotFoundError as exc:  # one clear line, as for every other bad argument
            raise ValueError(str(exc)) from exc
        emit(args, report.as_dict(), "\n".join([*report.lines(), f"verified {report.path}"]))
        return 0
    dsn, dagster_database = _backup_target()
    info = backup(dsn, Path(args.path), dagster_database=dagster_database)
    dagster = info.dagster
    schema = (
        f"schema v{info.schema_version}" if info.schema_version is not None else "no schema yet"
    )
    if dagster["status"] == "included":
        dagster_line = (
            f"dagster: database {dagster['database']!r} (alembic revision "
            f"{dagster['alembic_revision']}) is in the archive"
        )
    else:
        dagster_line = f"dagster: NOT in the archive ({dagster['status']}): {dagster['detail']}"
    emit(
        args,
        {
            "path": str(info.path),
            "bytes": info.bytes,
            "seconds": info.seconds,
            "schema_version": info.schema_version,
            "row_counts": info.row_counts,
            "dagster": dagster,
            "verified": info.verified.as_dict(),
        },
        f"backed up {info.database} ({schema}) to {info.path}: "
        f"{info.bytes:,} bytes in {info.seconds:.1f} s\n{dagster_line}\nverified:\n"
        + "\n".join(f"  {line}" for line in info.verified.lines())
        + "\n"
        + _row_table(info.row_counts),
    )
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from brain_assets.store.backup import restore

    dsn, dagster_database = _backup_target()
    try:
        info = restore(
            dsn,
            Path(args.path),
            force=args.force,
            dagster_database=dagster_database,
            skip_dagster=args.no_dagster,
        )
    except FileNotFoundError as exc:  # one clear line, as for every other bad argument
        raise ValueError(str(exc)) from exc
    dagster = dict(info.dagster)
    if dagster.get("needs_upgrade"):
        # The backup's Dagster storage predates the installed Dagster: migrate it forward, as
        # `dagster instance migrate` would, through the instance that `brain dev` uses.
        upgrade_log: list[str] = []
        with _instance() as instance:
            instance.upgrade(print_fn=lambda message: upgrade_log.append(str(message)))
        dagster["upgraded_to"] = dagster["dagster_head"]
        dagster["needs_upgrade"] = False
        dagster["upgrade_log"] = upgrade_log
    lines = [
        f"restored {info.path} into {info.database} in {info.seconds:.1f} s "
        f"(verified first: {len(info.verified.dumps)} dump(s), sha256 and pg_restore --list)"
    ]
    if info.migrated:
        lines.append(
            f"the backup was at schema v{info.backup_schema_version}: migrated forward to "
            f"v{info.schema_version} (applied {', '.join(str(v) for v in info.migrated)})"
        )
    if info.dropped:
        lines.append(f"dropped tables the backup predates: {', '.join(info.dropped)}")
    if dagster["status"] == "restored":
        upgraded = (
            f", storage migrated from {dagster['alembic_revision']} to {dagster['upgraded_to']}"
            if "upgraded_to" in dagster
            else ""
        )
        lines.append(f"dagster: database {dagster['database']!r} restored{upgraded}")
    else:
        lines.append(f"dagster: {dagster['status']}: {dagster['detail']}")
    emit(
        args,
        {
            "path": str(info.path),
            "replaced": info.replaced,
            "seconds": info.seconds,
            "schema_version": info.schema_version,
            "backup_schema_version": info.backup_schema_version,
            "migrated": list(info.migrated),
            "dropped": list(info.dropped),
            "row_counts": info.row_counts,
            "dagster": dagster,
        },
        "\n".join(lines) + "\n" + _row_table(info.row_counts),
    )
    return 0
