"""Operator commands on a symbol's model versions: models, select, promote, export."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from brain_assets.cli.help_text import described
from brain_assets.cli.output import emit, table, to_json
from brain_assets.lifecycle.predictor_cache import (
    BUNDLE_FIELDS,
    BUNDLE_FORMAT,
    EXTENSIONS,
    write_atomically,
)
from brain_assets.records import ModelVersion

MODEL_LIST_FIELDS = (
    "version",
    "model_type",
    "horizon",
    "composite_score",
    "credible",
    "is_active",
    "created_at",
    "model_id",
)
SELECT_FIELDS = (
    "model_id",
    "version",
    "model_type",
    "regime",
    "score",
    "n_bars",
    "reason",
    "stand_aside",
)
# The registry row's metadata that travels next to an exported artifact: all that
# load_predictor_from_bundle needs to predict with it.
SIDECAR_FIELDS = BUNDLE_FIELDS


def register(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="a symbol's versions, newest first",
        **described(
            "SYMBOL's registered versions, newest first, and whether it trades or stands aside.",
            "brain models BTC/USDT",
        ),
    )
    models.add_argument("symbol")
    models.set_defaults(handler=run_models)

    select = commands.add_parser(
        "select",
        help="the model ModelSelector picks for a regime",
        **described(
            "The version ModelSelector picks for SYMBOL in a volatility regime (default: the "
            "symbol's stored current regime).",
            "brain select BTC/USDT",
            "brain select BTC/USDT --regime high",
        ),
    )
    select.add_argument("symbol")
    select.add_argument(
        "--regime",
        default=None,
        help="low, normal, high or extreme (default: the symbol's stored current regime)",
    )
    select.set_defaults(handler=run_select)

    promote = commands.add_parser(
        "promote",
        help="make a version active now (an operator's decision: skips the floor)",
        **described(
            "Makes a version active now: an operator's decision, so the activation floor is "
            "not applied. A synthetic version is refused outside a synthetic deployment.",
            "brain promote 3f2c9a1e-0d4b-4c1e-9a57-2b8e6f1d0c42 --reason 'reviewed by hand'",
        ),
    )
    promote.add_argument("model_id")
    promote.add_argument("--reason", default="manual", help="recorded with the activation")
    promote.set_defaults(handler=run_promote)

    export = commands.add_parser(
        "export",
        help="write a version's verified artifact and a PATH.json metadata sidecar, a bundle "
        "that load_predictor_from_bundle predicts with",
        **described(
            "Writes a version's verified .skops/.keras artifact and a PATH.json metadata "
            "sidecar, atomically: a bundle that load_predictor_from_bundle predicts with.",
            "brain export 3f2c9a1e-0d4b-4c1e-9a57-2b8e6f1d0c42 ./bundles/",
            "brain export 3f2c9a1e-0d4b-4c1e-9a57-2b8e6f1d0c42 ./btc.skops --force",
        ),
    )
    export.add_argument("model_id")
    export.add_argument("path", help="a .skops/.keras file, or a folder to write it into")
    export.add_argument("--force", action="store_true", help="replace existing files")
    export.set_defaults(handler=run_export)

    for parser in (models, select, promote, export):
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def run_models(args: argparse.Namespace) -> int:
    from brain_assets.library import BrainLibrary

    with BrainLibrary() as brain:
        versions = brain.list_models(args.symbol)
        status = brain.trading_status(args.symbol)
    rows = [
        {k: row[k] for k in MODEL_LIST_FIELDS}
        for row in reversed(versions.to_dict("records"))  # newest first
    ]
    state = "stand aside" if status.stand_aside else "trading"
    summary = {"stand_aside": status.stand_aside, "reason": status.reason}
    render = (
        table(rows, list(MODEL_LIST_FIELDS))
        if rows
        else f"no versions registered for {args.symbol}"
    )
    emit(
        args,
        {"symbol": args.symbol, "versions": rows, "trading_status": summary},
        f"{render}\n{args.symbol}: {state}: {status.reason}",
    )
    return 0


def run_select(args: argparse.Namespace) -> int:
    from brain_assets.library import BrainLibrary
    from brain_assets.lifecycle.selection import ModelSelector

    with BrainLibrary() as brain:
        answer = ModelSelector(brain).select_model_for_symbol(args.symbol, args.regime)
    if answer is None:
        emit(args, None, f"{args.symbol}: no model has been registered for this symbol")
        return 0
    picked = {k: answer.get(k) for k in SELECT_FIELDS}
    if answer["stand_aside"]:
        headline = f"{args.symbol}: {answer['reason']}"
    else:
        headline = (
            f"{args.symbol}: trade v{answer['version']} {answer['model_type']} "
            f"({answer['model_id']}) in the {answer['regime'] or 'unknown'} regime"
        )
    emit(
        args,
        picked,
        f"{headline}\n"
        + table([picked], [k for k in SELECT_FIELDS if k != "reason"])
        + f"\nreason: {answer['reason']}",
    )
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from brain_assets.library import BrainLibrary
    from brain_assets.lifecycle.versioning import ModelVersioning

    with BrainLibrary() as brain:
        active = ModelVersioning(brain).promote(args.model_id, reason=args.reason)
    picked = {
        k: active.to_dict()[k]
        for k in ("model_id", "symbol", "version", "model_type", "composite_score", "credible")
    }
    emit(
        args,
        picked,
        f"{active.symbol}: version {active.version} ({active.model_type}) is active "
        f"now ({args.reason}; promoted by hand, the activation floor was not applied)\n"
        + table([picked], list(picked)),
    )
    return 0


def export_target(model: ModelVersion, path: Path) -> Path:
    """The file to write ``model``'s artifact to: ``path`` itself (its suffix must match the
    artifact's format) or, for a folder, ``<BASE-QUOTE>_v<version>_<model_type>.<ext>`` in it."""
    fmt = model.artifact_format
    if fmt not in EXTENSIONS:
        raise ValueError(
            f"model {model.model_id} holds a {fmt!r} artifact; export writes "
            f"{', '.join(EXTENSIONS)} artifacts only"
        )
    extension = EXTENSIONS[fmt]
    if path.is_dir():
        name = f"{model.symbol.replace('/', '-')}_v{model.version}_{model.model_type}"
        return path / f"{name}{extension}"
    if path.suffix != extension:
        raise ValueError(
            f"{path}: a {fmt} artifact is written to a {extension} file (or give a folder)"
        )
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent} is not a folder")
    return path


def run_export(args: argparse.Namespace) -> int:
    from brain_assets.errors import UnknownModelError
    from brain_assets.library import BrainLibrary

    with BrainLibrary() as brain:
        model = brain.get_model(args.model_id)
        if model is None:
            raise UnknownModelError(
                f"unknown model_id {args.model_id!r}: no such model in the registry"
            )
        target = export_target(model, Path(args.path).expanduser())
        sidecar = target.with_name(target.name + ".json")
        existing = [str(p) for p in (target, sidecar) if p.exists()]
        if existing and not args.force:
            raise ValueError(f"refusing to overwrite {', '.join(existing)} (use --force)")
        data = brain.load_model_artifact(args.model_id)  # checked against its sha256
    metadata = {
        "bundle_format": BUNDLE_FORMAT,
        **{k: model.to_dict()[k] for k in SIDECAR_FIELDS},
        "exported_at": datetime.now(UTC),
    }
    write_atomically(target, data)
    write_atomically(sidecar, (to_json(metadata) + "\n").encode())
    result = {
        "model_id": args.model_id,
        "path": str(target),
        "sidecar": str(sidecar),
        "bytes": len(data),
        "artifact_sha256": model.artifact_sha256,
    }
    emit(
        args,
        result,
        f"wrote {model.symbol} v{model.version} {model.model_type} to {target} "
        f"({len(data):,} bytes, sha256 {str(model.artifact_sha256)[:12]}…) "
        f"and its metadata to {sidecar}",
    )
    return 0
