"""``brain analyze``: the nightly feature analysis, now, for some or all symbols."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from brain_assets.cli.help_text import described
from brain_assets.cli.output import emit, to_json
from brain_assets.cli.run_options import files_folder
from brain_assets.environment import MARKET_SOURCES

if TYPE_CHECKING:
    from brain_assets.cli.progress import Bar
    from brain_assets.importance.nightly import NightlyAnalysis

TOP_SHOWN = 3


def register(commands: Any) -> None:
    analyze = commands.add_parser(
        "analyze",
        help="re-analyse each symbol's current model's feature importance on its latest bars",
        **described(
            "What the nightly_feature_analysis job does, without Dagster: for each symbol, its "
            "active model (or, for a symbol standing aside, its latest registered version) is "
            "analysed by SHAP, permutation and correlation on its most recent bars; the "
            "analysis is stored and compared with the model's previous one. Exit status 1 when "
            "any symbol failed.",
            "brain analyze",
            "brain analyze BTC/USDT ETH/USDT --source store --json",
        ),
    )
    analyze.add_argument(
        "symbols",
        nargs="*",
        metavar="SYMBOL",
        help="symbols to analyse (default: every symbol with a registered model)",
    )
    analyze.add_argument(
        "--source",
        choices=MARKET_SOURCES,
        default=None,
        help="where the bars come from (default: the deployment's, BRAIN_MARKET_SOURCE)",
    )
    analyze.add_argument("--folder", default=None, help="folder of the files source")
    analyze.add_argument("--timeframe", default=None, help="bar store timeframe")
    analyze.add_argument("--json", action="store_true", help="machine-readable output")
    analyze.set_defaults(handler=run_analyze)


def _market_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.folder is not None and args.source != "files":
        raise ValueError("--folder goes with --source files")
    if args.source == "files":
        folder = files_folder(args.folder)
        return {"source": "files", "folder": str(folder), "timeframe": args.timeframe}
    return {"source": args.source, "timeframe": args.timeframe}


def describe(result: NightlyAnalysis) -> str:
    """One line for people: what was analysed, its top features and what moved."""
    if result.status == "no_model":
        return f"{result.symbol}: no model ({result.reason}); nothing analysed"
    model = f"v{result.version} {result.model_type}" if result.model_id else "its model"
    if result.failed:
        return f"{result.symbol}: FAILED ({model}): {result.reason}"
    line = f"{result.symbol}: analysed {model}, {result.reason}, on {result.rows} rows"
    if result.trend:
        method, moves = next(iter(result.trend.items()))
        top = ", ".join(change["feature"] for change in moves["changes"][:TOP_SHOWN])
        line += f"; top ({method}): {top}"
        if moves["previous_available"]:
            entered = ", ".join(moves["entered"]) or "none"
            line += f"; entered the top {len(moves['changes'])}: {entered}"
        else:
            line += "; first analysis of this version"
    if result.method_failures:
        line += "; failed: " + ", ".join(
            f"{method} ({error})" for method, error in result.method_failures.items()
        )
    return line


def run_analyze(args: argparse.Namespace) -> int:
    from brain_assets.importance.nightly import run_nightly_feature_analysis
    from brain_assets.market_data.deployment import DeploymentMarket
    from brain_assets.pipeline.settings import RetrainSettings
    from brain_assets.store import validation

    # Every argument is checked before the database is opened or anything analysed.
    symbols = [validation.symbol(symbol, "symbol") for symbol in args.symbols]
    market = DeploymentMarket.from_environment(**_market_options(args))
    settings = RetrainSettings()
    started = time.monotonic()
    bar: Bar | None = None

    def progress(result: NightlyAnalysis, done: int, total: int) -> None:
        if bar is not None:
            bar.advance(f"{result.symbol} {result.status}")
        if not args.json:
            elapsed = time.monotonic() - started
            print(f"[{done}/{total}] [{elapsed:6.1f}s] {describe(result)}", flush=True)

    from brain_assets.cli.progress import progress_bar
    from brain_assets.library import BrainLibrary

    with BrainLibrary() as brain:
        symbols = symbols or brain.list_symbols()
        if not symbols:
            emit(args, [], "no symbol has a registered model: run `brain demo` or a retrain first")
            return 0
        if not args.json:
            print(
                f"analysing {len(symbols)} symbol(s) on {market.source} bars; each takes "
                "seconds to minutes",
                flush=True,
            )
        with progress_bar("brain analyze", len(symbols)) as bar:
            results = run_nightly_feature_analysis(
                settings, symbols, brain=brain, market=market, on_symbol=progress
            )
    failed = [result.symbol for result in results if result.failed]
    if args.json:
        print(to_json([result.to_json() for result in results]))
    else:
        counts = {
            status: sum(result.status == status for result in results)
            for status in ("analysed", "no_model", "failed")
        }
        print(
            f"done in {time.monotonic() - started:.1f} s: {counts['analysed']} analysed, "
            f"{counts['no_model']} without a model, {counts['failed']} failed"
            + (f" ({', '.join(failed)})" if failed else "")
        )
    return 1 if failed else 0
