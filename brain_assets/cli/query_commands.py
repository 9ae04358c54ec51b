"""Read-only questions to the Brain: top-features, best-model, metrics, history, quality."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from brain_assets.cli.help_text import described
from brain_assets.cli.output import emit, emit_rows, table
from brain_assets.library import BrainLibrary
from brain_assets.provenance import bars_label
from brain_assets.regimes.classify import REGIMES
from brain_assets.store.quality import SUMMARY_COLUMNS


def register(commands: Any) -> None:
    top = commands.add_parser(
        "top-features",
        help="top features of a symbol's latest analysis",
        **described(
            "The top features of SYMBOL's latest feature-importance analysis, by one method.",
            "brain top-features BTC/USDT",
            "brain top-features BTC/USDT -n 5 --method permutation",
        ),
    )
    top.add_argument("symbol")
    top.add_argument("-n", "--top-n", type=int, default=20)
    top.add_argument("--method", default=None, help="shap, permutation or correlation")
    top.set_defaults(handler=top_features)
    best = commands.add_parser(
        "best-model",
        help="a symbol's best and active model",
        **described(
            "SYMBOL's best and active version, with where its bars came from, or why the "
            "symbol stands aside.",
            "brain best-model BTC/USDT",
        ),
    )
    best.add_argument("symbol")
    best.set_defaults(handler=best_model)
    metrics = commands.add_parser(
        "metrics",
        help="latest metrics of a model (overall and by regime)",
        **described(
            "A version's latest metrics: overall, per walk-forward fold and per regime, and "
            "its latest live check.",
            "brain metrics 3f2c9a1e-0d4b-4c1e-9a57-2b8e6f1d0c42",
        ),
    )
    metrics.add_argument("model_id")
    metrics.set_defaults(handler=model_metrics)
    history = commands.add_parser(
        "history",
        help="a symbol's activation history",
        **described(
            "Every activation decision of SYMBOL, oldest first, with the numbers it was made on.",
            "brain history BTC/USDT",
        ),
    )
    history.add_argument("symbol")
    history.set_defaults(handler=activation_history)
    quality = commands.add_parser(
        "quality-summary",
        help="data-quality passes and failures",
        **described(
            "Data-quality passes and failures per check and symbol since a time.",
            "brain quality-summary",
            "brain quality-summary --since 24h --symbol BTC/USDT",
        ),
    )
    quality.add_argument(
        "--since", default=None, help="ISO time or a duration such as 24h or 7d (default 7d)"
    )
    quality.add_argument("--symbol", default=None)
    quality.set_defaults(handler=quality_summary)
    for parser in (top, best, metrics, history, quality):
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def since_time(text: str | None) -> datetime:
    """``24h``, ``7d``, ``30m`` or an ISO timestamp (naive = UTC)."""
    if text is None:
        return datetime.now(UTC) - timedelta(days=7)
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        try:
            return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
        except OverflowError:
            raise ValueError(f"--since {text!r}: reaches before year 1") from None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give an ISO time or a duration like 24h or 7d"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def top_features(args: argparse.Namespace) -> int:
    with BrainLibrary() as brain:
        top = brain.get_top_features(args.symbol, top_n=args.top_n, method=args.method)
    if top.empty:
        emit(args, [], f"no feature importance stored for {args.symbol}")
        return 0
    header = f"{args.symbol}: {top['method'].iloc[0]} importance of model {top['model_id'].iloc[0]}"
    emit(args, top, f"{header}\n{table(top, ['rank', 'feature', 'importance'])}")
    return 0


MODEL_FIELDS = (
    "model_id",
    "version",
    "model_type",
    "composite_score",
    "is_active",
    "created_at",
    "training_start",
    "training_end",
    "artifact_sha256",
    "bar_source",
    "bar_timeframe",
    "synthetic_bars",
)


def best_model(args: argparse.Namespace) -> int:
    with BrainLibrary() as brain:
        best = brain.get_best_model(args.symbol)
        active = brain.get_active_model(args.symbol)
        status = brain.trading_status(args.symbol)
    if best is None:
        # No tradable version: say why, so that the engine's operator knows to stand aside.
        emit(
            args,
            {"best": None, "active": None, "stand_aside": True, "reason": status.reason},
            f"{args.symbol}: stand aside: {status.reason}",
        )
        return 0
    picked = {
        "best": {k: best.to_dict()[k] for k in MODEL_FIELDS},
        "active": None if active is None else {k: active.to_dict()[k] for k in MODEL_FIELDS},
    }
    rows = [
        {"role": role, **(model or {}), "bars": bars_label(model or {})}
        for role, model in picked.items()
    ]
    columns = ["role", "version", "model_type", "composite_score", "is_active", "bars", "model_id"]
    emit(args, picked, table(rows, columns))
    return 0


def model_metrics(args: argparse.Namespace) -> int:
    with BrainLibrary() as brain:
        model = brain.get_model(args.model_id)
        if model is None:
            raise ValueError(f"unknown model_id {args.model_id!r}")
        overall = brain.get_model_metrics(args.model_id, model.symbol)
        by_regime = brain.get_regime_metrics(args.model_id, model.symbol)
        folds = brain.get_fold_metrics(args.model_id, model.symbol)
        live = brain.get_live_metrics(args.model_id, model.symbol)
    result = {
        "model_id": args.model_id,
        "symbol": model.symbol,
        "version": model.version,
        "model_type": model.model_type,
        "metrics": overall,
        "by_regime": by_regime,
        "folds": folds.to_dict("records"),
        "live": live,
    }
    regimes = [r for r in REGIMES if r in by_regime]
    rows = [
        {"metric": m, "overall": v, **{r: by_regime[r].get(m) for r in regimes}}
        for m, v in sorted(overall.items())
    ]
    header = f"{model.symbol} v{model.version} {model.model_type} ({args.model_id})"
    text = f"{header}\n{table(rows, ['metric', 'overall', *regimes])}"
    if not folds.empty:
        shown = [c for c in FOLD_COLUMNS if c in folds.columns]
        text += f"\n\nwalk-forward folds (out of sample)\n{table(folds, shown)}"
    if live:
        live_rows = [{"metric": m, "live": v} for m, v in sorted(live.items())]
        text += f"\n\nlatest live check (bars it never saw)\n{table(live_rows, ['metric', 'live'])}"
    emit(args, result, text)
    return 0


FOLD_COLUMNS = (
    "fold",
    "window_start",
    "window_end",
    "n_observations",
    "sharpe_ratio",
    "total_return",
    "hold_total_return",
    "annual_cost",
)


def activation_history(args: argparse.Namespace) -> int:
    with BrainLibrary() as brain:
        history = brain.get_activation_history(args.symbol)
    columns = ["created_at", "version", "action", "reason", "model_id"]
    emit_rows(args, history, columns, f"no activation history for {args.symbol}")
    return 0


def quality_summary(args: argparse.Namespace) -> int:
    start = since_time(args.since)
    with BrainLibrary() as brain:
        summary = brain.get_data_quality_summary(start, symbol=args.symbol)
    emit(
        args,
        summary,
        f"data quality since {start:%Y-%m-%d %H:%M} UTC\n"
        + table(summary, [c for c in SUMMARY_COLUMNS if c != "last_run"]),
    )
    return 0
