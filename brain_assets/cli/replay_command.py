"""``brain replay``: step a symbol through history and see what the decision policy would do."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from brain_assets.cli.output import emit, table
from brain_assets.environment import brain_home, configured_dsn

SCRATCH_DATABASE = "brain_replay"
"""The embedded server's database that holds a replay's models (emptied at each replay)."""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay the daily loop (monitor, rollback, retrain) over history for one symbol",
        description="Steps SYMBOL through history: at each step the bars up to then are "
        "published, monitoring judges the active model, the rollback acts, and the retrain "
        "registers new versions through the promotion rules. Prints a timeline, stores it in "
        "the Brain and draws it as a PNG.",
    )
    parser.add_argument("symbol")
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
    parser.add_argument("--start-bars", type=int, default=2000, help="bars before step 0")
    # None: the ReplayPlan's own default (a week of hourly bars, half a year of steps).
    parser.add_argument("--step-bars", type=int, default=None, help="new bars per step")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--fee-bps", type=float, default=5.0)
    parser.add_argument("--model-types", nargs="+", default=["ridge", "random_forest"])
    parser.add_argument(
        "--train-window-bars",
        type=int,
        default=2000,
        help="the retrain fits on this many recent rows (0: all history)",
    )
    parser.add_argument(
        "--policy",
        choices=("default", "seed"),
        default="default",
        help="default: floor, paired promotion test, significant rollback; seed: the original "
        "rules (score promotion, no floor, rollback on any 5%% drop)",
    )
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


def scratch_dsn(args: argparse.Namespace) -> str:
    """A database the replay may empty: never the Brain's own."""
    main = configured_dsn()
    if args.scratch_dsn:
        if main and args.scratch_dsn.strip() == main:
            raise ValueError(
                "--scratch-dsn must not be the Brain's DATABASE_DSN: the replay's models would "
                "mix with the real ones"
            )
        return str(args.scratch_dsn)
    if main:
        raise ValueError("DATABASE_DSN is set: give --scratch-dsn, a database the replay may empty")
    from brain_assets.store.embedded import start_embedded

    server = start_embedded(brain_home() / "pgdata")
    server.drop_database(SCRATCH_DATABASE)
    return server.ensure_database(SCRATCH_DATABASE)


def run_replay(args: argparse.Namespace) -> int:
    from brain_assets.decisions.policy import DecisionPolicy
    from brain_assets.pipeline.settings import RetrainSettings
    from brain_assets.plots import replay_png
    from brain_assets.replay import ReplayPlan, replay
    from brain_assets.store.library import BrainLibrary

    given = {"step_bars": args.step_bars, "steps": args.steps}
    plan = ReplayPlan(
        start_bars=args.start_bars, **{k: v for k, v in given.items() if v is not None}
    )
    settings = RetrainSettings(
        model_types=tuple(args.model_types),
        fee_bps=args.fee_bps,
        train_window_bars=args.train_window_bars or None,
    )
    policy = DecisionPolicy.seed() if args.policy == "seed" else DecisionPolicy()
    bars = load_bars(args, plan.bars_needed(), plan.step_bars)
    dsn = scratch_dsn(args)

    def progress(step: int, steps: int, row: dict[str, Any]) -> None:
        if args.json:
            return
        live = row["live"]
        events = ", ".join(
            f"{e['reason']} v{e['version']}"
            for e in row["events"]
            if e["action"] in ("activated", "deactivated")
        )
        print(
            f"  step {step:>3}/{steps} {row['as_of']:%Y-%m-%d %H:%M}  active "
            f"{_version(row)}  live SR {_number(live.get('sharpe_ratio'))}  "
            f"p {_number(live.get('p_value'))}  {events}  ({row['seconds']:.1f}s)",
            flush=True,
        )

    with BrainLibrary(dsn) as scratch, BrainLibrary() as brain:
        result = replay(
            scratch,
            args.symbol,
            bars,
            plan,
            settings=settings,
            policy=policy,
            record=brain,
            progress=progress,
            parameters={"source": args.source, "flip_step": args.flip_step},
        )
    out = Path(args.out or ".").resolve()
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"replay-{result.replay_id}.png"
    title = f"{args.symbol} replay {result.replay_id} ({args.policy} policy)"
    png.write_bytes(replay_png(result.timeline, title, flip_step=args.flip_step))
    csv = out / f"replay-{result.replay_id}.csv"
    result.timeline.assign(
        events=result.timeline["events"].map(str), live=result.timeline["live"].map(str)
    ).to_csv(csv, index=False)
    summary = {**result.summary, "replay_id": result.replay_id, "png": str(png), "csv": str(csv)}
    rows = [{"measure": k, "value": v} for k, v in summary.items()]
    emit(args, summary, table(rows, ["measure", "value"]))
    return 0


def _version(row: dict[str, Any]) -> str:
    if row["active_version"] is None:
        return "stand aside"
    return f"v{row['active_version']} {row['active_type']}"


def _number(value: object) -> str:
    return "-" if value is None else f"{float(value):.3g}"  # type: ignore[arg-type]
