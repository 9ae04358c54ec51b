"""``brain replay``: step a symbol through history and see what the decision policy would do."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from brain_assets.cli.help_text import described
from brain_assets.cli.output import emit, table
from brain_assets.defaults import BAND_MARGIN, FEE_BPS
from brain_assets.environment import brain_home, configured_dsn

if TYPE_CHECKING:
    from brain_assets.cli.progress import Bar
    from brain_assets.pipeline.settings import RetrainSettings
    from brain_assets.replay import ReplayPlan, ReplayResult

POLICIES = ("default", "seed")
SCRATCH_DATABASE = "brain_replay"
"""The embedded server's database that holds a replay's models (emptied at each replay)."""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay the daily loop (monitor, rollback, retrain) over history for one symbol",
        **described(
            "Steps SYMBOL through history: at each step the bars up to then are published, "
            "monitoring judges the active model, the rollback acts, and the retrain registers "
            "new versions through the promotion rules. Prints a timeline, stores it in the "
            "Brain and draws it as a PNG.",
            "brain replay BTC/USDT --steps 26 --flip-step 13",
            "brain replay BTC/USDT --source files --folder ./bars --compare seed --out ./replays",
        ),
    )
    parser.add_argument("symbol")
    _add_market_arguments(parser)
    _add_plan_arguments(parser)
    _add_policy_arguments(parser)
    parser.add_argument(
        "--scratch-dsn",
        default=None,
        help="database for the replay's models, without models of SYMBOL; default: the "
        f"embedded server's {SCRATCH_DATABASE!r} database, emptied first (required when "
        "DATABASE_DSN is set)",
    )
    parser.add_argument("--out", default=None, help="folder for the PNG and CSV (default: cwd)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run_replay)


def _add_market_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the replay's bars come from."""
    parser.add_argument(
        "--source",
        choices=("signal", "synthetic", "files"),
        default="signal",
        help="signal: a market of constant statistics (or one flip, --flip-step); synthetic: "
        "the demo's regime-switching bars; files: one file per symbol in --folder",
    )
    parser.add_argument("--folder", default=None, help="folder of the files source")
    parser.add_argument(
        "--flip-step",
        type=int,
        default=None,
        help="signal source: the first step whose new bars come from the flipped market",
    )
    parser.add_argument("--momentum", type=float, default=0.2, help="signal source: AR(1)")
    parser.add_argument("--seed", type=int, default=0)


def _add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """How far the replay steps, and the windows of monitoring."""
    parser.add_argument(
        "--start-bars", type=int, default=3000, help="bars before step 0 (default: 3000)"
    )
    # None: the ReplayPlan's own default (a week of hourly bars, half a year of steps).
    parser.add_argument("--step-bars", type=int, default=None, help="new bars per step")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument(
        "--live-window-bars",
        type=int,
        default=None,
        help="monitoring's window of unseen bars (default 336: two weeks of hourly bars)",
    )
    parser.add_argument(
        "--min-live-bars",
        type=int,
        default=None,
        help="fewest unseen bars monitoring judges on (default 120)",
    )
    parser.add_argument(
        "--cooldown-bars",
        type=int,
        default=None,
        help="bars after an automatic change before the window test may act (default 168); "
        "for daily bars pass daily-sized windows (e.g. 90, 30 and 7)",
    )


def _add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The costs, the retrain and the decision policy replayed."""
    parser.add_argument(
        "--fee-bps", type=float, default=FEE_BPS, help=f"cost per unit traded (default {FEE_BPS})"
    )
    parser.add_argument(
        "--band-margin",
        type=float,
        default=BAND_MARGIN,
        help="the no-trade band: how far above the round-trip cost a forecast must be to trade, "
        f"as a fraction of it (default {BAND_MARGIN})",
    )
    parser.add_argument("--model-types", nargs="+", default=["ridge", "random_forest"])
    parser.add_argument(
        "--train-window-bars",
        type=int,
        default=0,
        help="the retrain fits on this many recent rows (default 0: all history, as the "
        "daily retrain does)",
    )
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="default",
        help="default: the honest gate (walk-forward floor counting every try, paired "
        "promotion test, cumulative and window monitoring); seed: the original rules (score "
        "promotion, no floor, rollback on any 5%% drop)",
    )
    parser.add_argument(
        "--compare",
        choices=POLICIES,
        default=None,
        help="also replay this policy on the same bars and show both side by side",
    )


def load_bars(args: argparse.Namespace, bars_needed: int, step_bars: int) -> pd.DataFrame:
    if args.source == "files":
        from brain_assets.market_data.files import FileSource

        if not args.folder:
            raise ValueError("--source files needs --folder")
        return FileSource(args.folder).load(args.symbol).frame
    if args.source == "synthetic":
        from brain_assets.market_data.synthetic import generate_ohlcv

        return generate_ohlcv(args.symbol, seed=args.seed or 7, n_bars=bars_needed)[0]
    from brain_assets.market_data.synthetic import signal_market

    flip = None if args.flip_step is None else args.start_bars + (args.flip_step - 1) * step_bars
    return signal_market(bars_needed, momentum=args.momentum, flip_at=flip, seed=args.seed)


def scratch_dsn(args: argparse.Namespace, database: str = SCRATCH_DATABASE) -> str:
    """A database the replay may empty: never the Brain's own."""
    main = configured_dsn()
    if args.scratch_dsn:
        if main and args.scratch_dsn.strip() == main:
            raise ValueError(
                "--scratch-dsn must not be the Brain's DATABASE_DSN: the replay's models would "
                "mix with the real ones"
            )
        if args.compare:
            raise ValueError(
                "--compare needs a scratch database per policy: leave out --scratch-dsn to use "
                "the embedded server's"
            )
        return str(args.scratch_dsn)
    if main:
        raise ValueError("DATABASE_DSN is set: give --scratch-dsn, a database the replay may empty")
    from brain_assets.store.embedded import start_embedded

    server = start_embedded(brain_home() / "pgdata")
    server.drop_database(database)
    return server.ensure_database(database)


SUMMARY_SHOWN = (
    "total_return",
    "hold_total_return",
    "stand_aside_total_return",
    "worst_year_return",
    "steps_trading",
    "versions_in_charge",
    "promotions",
    "rollbacks",
    "steps_standing_aside",
    "fees_paid",
)


def _plan_and_settings(args: argparse.Namespace) -> tuple[ReplayPlan, RetrainSettings]:
    from brain_assets.pipeline.settings import RetrainSettings
    from brain_assets.replay import ReplayPlan

    given = {
        "step_bars": args.step_bars,
        "steps": args.steps,
        "live_window_bars": args.live_window_bars,
        "min_live_bars": args.min_live_bars,
    }
    plan = ReplayPlan(
        start_bars=args.start_bars, **{k: v for k, v in given.items() if v is not None}
    )
    settings = RetrainSettings(
        model_types=tuple(args.model_types),
        fee_bps=args.fee_bps,
        band_margin=args.band_margin,
        train_window_bars=args.train_window_bars or None,
    )
    return plan, settings


def _progress_for(args: argparse.Namespace, name: str, bar: Bar | None, policies: int) -> Any:
    """The replay's progress callback for policy ``name``: a line a step (none with --json),
    and a step of ``bar`` (one of ``policies`` replays) on a terminal."""

    def progress(step: int, steps: int, row: dict[str, Any]) -> None:
        if bar is not None:
            bar.advance(f"{name} step {step}/{steps}", total=(steps + 1) * policies)
        if args.json:
            return
        live = row["live"]
        events = ", ".join(
            f"{e['reason']} v{e['version']}"
            for e in row["events"]
            if e["action"] in ("activated", "deactivated")
        )
        print(
            f"  {name:<7} step {step:>3}/{steps} {row['as_of']:%Y-%m-%d %H:%M}  active "
            f"{_version(row)}  {row['period_return']:+.2%} (hold {row['hold_return']:+.2%})"
            f"  live SR {_number(live.get('sharpe_ratio'))}  {events}  "
            f"({row['seconds']:.1f}s)",
            flush=True,
        )

    return progress


def _replay_policies(
    args: argparse.Namespace,
    names: list[str],
    bars: pd.DataFrame,
    plan: ReplayPlan,
    settings: RetrainSettings,
) -> dict[str, ReplayResult]:
    """Replay each policy of ``names`` on the same bars, each in its own scratch database, the
    timelines recorded in the Brain."""
    from brain_assets.cli.progress import progress_bar
    from brain_assets.decisions.policy import DecisionPolicy
    from brain_assets.library import BrainLibrary
    from brain_assets.replay import replay

    results: dict[str, ReplayResult] = {}
    total = (plan.steps + 1) * len(names)  # steps 0 to plan.steps
    with BrainLibrary() as home_brain, progress_bar(f"replay {args.symbol}", total) as bar:
        for name in names:
            policy = DecisionPolicy.seed() if name == "seed" else DecisionPolicy()
            if args.cooldown_bars is not None:
                policy = dataclasses.replace(policy, cooldown_bars=args.cooldown_bars)
            dsn = scratch_dsn(
                args, f"{SCRATCH_DATABASE}_{name}" if args.compare else SCRATCH_DATABASE
            )
            with BrainLibrary(dsn) as scratch:
                results[name] = replay(
                    scratch,
                    args.symbol,
                    bars,
                    plan,
                    settings=settings,
                    policy=policy,
                    record=home_brain,
                    progress=_progress_for(args, name, bar, len(names)),
                    parameters={
                        "source": args.source,
                        "flip_step": args.flip_step,
                        "policy_name": name,
                    },
                )
    return results


def _write_files(args: argparse.Namespace, results: dict[str, ReplayResult]) -> tuple[Path, Path]:
    """The main policy's timeline as a PNG (with the compared one, if any) and a CSV."""
    from brain_assets.plots import replay_png

    out = Path(args.out or ".").resolve()
    out.mkdir(parents=True, exist_ok=True)
    main = results[args.policy]
    png = out / f"replay-{main.replay_id}.png"
    other = [(f"{n} policy", r.timeline) for n, r in results.items() if n != args.policy]
    title = (
        f"{args.symbol} replay {main.replay_id} ({args.policy} policy, fees {args.fee_bps:g} bps)"
    )
    png.write_bytes(
        replay_png(
            main.timeline,
            title,
            flip_step=args.flip_step,
            label=f"{args.policy} policy",
            compare=other[0] if other else None,
        )
    )
    csv = out / f"replay-{main.replay_id}.csv"
    main.timeline.assign(
        events=main.timeline["events"].map(str), live=main.timeline["live"].map(str)
    ).to_csv(csv, index=False)
    return png, csv


def _summary_rows(results: dict[str, ReplayResult]) -> list[dict[str, Any]]:
    """The table's rows: a measure a row, a policy a column, then each year's returns."""
    rows = [
        {"measure": key, **{name: _shown(results[name].summary.get(key)) for name in results}}
        for key in SUMMARY_SHOWN
    ]
    years = sorted({y for r in results.values() for y in r.summary.get("by_year", {})})
    for year in years:
        entry = {name: results[name].summary["by_year"].get(year, {}) for name in results}
        rows.append(
            {"measure": f"{year} return", **{n: _shown(e.get("managed")) for n, e in entry.items()}}
        )
        first = next(iter(entry.values()))
        rows.append({"measure": f"{year} holding", **{n: _shown(first.get("hold")) for n in entry}})
    return rows


def run_replay(args: argparse.Namespace) -> int:
    plan, settings = _plan_and_settings(args)
    bars = load_bars(args, plan.bars_needed(), plan.step_bars)
    names = [args.policy] + ([args.compare] if args.compare and args.compare != args.policy else [])
    results = _replay_policies(args, names, bars, plan, settings)
    png, csv = _write_files(args, results)
    document: dict[str, Any] = {
        name: {**r.summary, "replay_id": r.replay_id} for name, r in results.items()
    }
    document["png"], document["csv"] = str(png), str(csv)
    text = table(_summary_rows(results), ["measure", *results])
    emit(args, document, f"{text}\nPNG: {png}\nCSV: {csv}")
    return 0


def _shown(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.2%}" if abs(value) < 1e3 else f"{value:.3g}"
    return str(value)


def _version(row: dict[str, Any]) -> str:
    if row["active_version"] is None:
        return "stand aside"
    return f"v{row['active_version']} {row['active_type']}"


def _number(value: object) -> str:
    return "-" if value is None else f"{float(value):.3g}"  # type: ignore[arg-type]
