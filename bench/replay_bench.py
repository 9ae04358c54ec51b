"""What a decision policy does with capital on markets whose truth is known: ``brain replay``
over AR(1) markets (``signal_market``, 1% hourly volatility, 10 bps fees), many seeds each.

    .venv/bin/python bench/replay_bench.py [--markets random_walk weak_005 ...] [--workers 2]
    .venv/bin/python bench/replay_bench.py --baseline f165981   # the same replays, older code
    .venv/bin/python bench/replay_bench.py --start-bars 2000 --train-window-bars 2000 --tag w2000
    .venv/bin/python bench/replay_bench.py --report [--baseline REV] [--tag TAG]

Markets (momentum, seeds), and what the honest gate must do on each:

* ``random_walk`` (0, 10 seeds): no edge at all. In at least 9 seeds no version ever trades;
  no seed ends below -5% net.
* ``weak_005``, ``weak_010`` (0.05 and 0.1, 5 seeds each): an edge smaller than, or about, the
  costs. Never below -5% net: stand aside, or trade profitably through the band.
* ``strong`` (0.2, 5 seeds): trade in at least 24 of 26 weeks and end positive.
* ``flip`` (0.2 turning into -0.2 at step 14, 5 seeds): how many steps the stale model keeps
  trading after the flip.

Each replay runs the CLI's defaults (3,000 bars before the first step, 26 weekly steps of 168
bars, ridge and random forest, 10 bps fees, the whole history at every retrain; the issue's
replays used 2,000 bars before the first step and a 2,000-row window: ``--start-bars``,
``--train-window-bars``) with
``--policy`` (default, or seed for the platform's original rules), in its own database of a
temporary embedded PostgreSQL; ``--workers`` replays run side by side. Each run is summed up
from its timeline, the same way for every code version: the compounded return of the steps
(what the versions in charge earned net of fees, 0 standing aside), holding over the same bars,
weeks trading, versions in charge, the worst calendar year (steps by the year of their last
bar). With ``--baseline REV`` the replays run the code of ``git archive REV`` (first on the
workers' sys.path; each run records the package file it imported) on the same markets and
settings, for a before/after on identical bars.
Results go to bench/results/replay_bench[_POLICY][_REV][_TAG].json, and a PNG per market (first
seed, current code, default plan) to bench/results/replay/.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
SYMBOL = "BTC/USDT"
FLIP_STEP = 14
MARKETS: dict[str, tuple[float, int]] = {
    "random_walk": (0.0, 10),
    "weak_005": (0.05, 5),
    "weak_010": (0.1, 5),
    "strong": (0.2, 5),
    "flip": (0.2, 5),
}
LIMIT = -0.05
"""No market may end a replay, or a calendar year of one, below this net."""


def one_replay(job: tuple[str, int, str, str, int, int | None]) -> dict[str, Any]:
    market, seed, policy_name, home, start_bars, window = job
    from brain_assets.decisions.policy import DecisionPolicy
    from brain_assets.library import BrainLibrary
    from brain_assets.market_data.synthetic import signal_market
    from brain_assets.pipeline.settings import RetrainSettings
    from brain_assets.plots import replay_png
    from brain_assets.replay import ReplayPlan, replay
    from brain_assets.store.embedded import start_embedded

    plan = ReplayPlan(start_bars=start_bars, step_bars=168, steps=26)
    settings = RetrainSettings(
        model_types=("ridge", "random_forest"), fee_bps=10.0, train_window_bars=window
    )
    policy = DecisionPolicy.seed() if policy_name == "seed" else DecisionPolicy()
    momentum, _ = MARKETS[market]
    flip = plan.start_bars + (FLIP_STEP - 1) * plan.step_bars if market == "flip" else None
    bars = signal_market(plan.bars_needed(), momentum=momentum, flip_at=flip, seed=seed)
    server = start_embedded(Path(home) / f"pgdata-{os.getpid()}")
    database = f"replay_{market}_{seed}"
    started = time.perf_counter()
    try:
        with BrainLibrary(server.ensure_database(database)) as brain:
            result = replay(brain, SYMBOL, bars, plan, settings=settings, policy=policy)
        server.drop_database(database)
    finally:
        server.release()
    import brain_assets

    run: dict[str, Any] = {
        "market": market,
        "seed": seed,
        "policy": policy_name,
        "package": str(Path(brain_assets.__file__).parent),
        "seconds": round(time.perf_counter() - started, 1),
        **from_timeline(result.timeline, bars),
    }
    if market == "flip":
        run["steps_to_drop_stale_model"] = stale_model_gone(result.timeline, FLIP_STEP)
    if seed == 0 and not os.environ.get(BASELINE_ENV) and start_bars == 3000 and window is None:
        folder = RESULTS / "replay"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{market}_{policy_name}.png").write_bytes(
            replay_png(
                result.timeline,
                f"{market} (momentum {momentum:g}), {policy_name} policy, seed 0",
                flip_step=FLIP_STEP if market == "flip" else None,
                label=f"{policy_name} policy",
            )
        )
    return run


BASELINE_ENV = "REPLAY_BENCH_BASELINE"


def from_timeline(timeline: Any, bars: Any) -> dict[str, Any]:
    """A replay summed up from its timeline and the market's bars alone, so that any version of
    the code is judged the same way."""
    import numpy as np
    import pandas as pd

    versions = [None if pd.isna(v) else int(v) for v in timeline["active_version"]]
    trading = [v for v in versions[:-1] if v is not None]
    growth = 1.0 + timeline["period_return"].astype(float)
    years = growth.groupby(pd.DatetimeIndex(timeline["as_of"]).year).prod() - 1.0
    # Holding from the first step's last bar to the last step's: the bars the steps traded.
    close = pd.Series(bars["close"].to_numpy(), index=pd.DatetimeIndex(bars["timestamp"]))
    first, last = pd.Timestamp(timeline["as_of"].iloc[0]), pd.Timestamp(timeline["as_of"].iloc[-1])
    held = close[(close.index > first) & (close.index <= last + (close.index[1] - close.index[0]))]
    start = close[close.index <= first].iloc[-1]
    return {
        "steps": int(len(timeline) - 1),
        "total_return": float(np.prod(growth) - 1.0),
        "hold_total_return": float(held.iloc[-1] / start - 1.0) if len(held) else 0.0,
        "steps_trading": len(trading),
        "versions_in_charge": len(set(trading)),
        "worst_year_return": float(years.min()),
        "by_year": {str(year): float(value) for year, value in years.items()},
    }


def archive(revision: str, folder: Path) -> Path:
    data = subprocess.run(
        ["git", "archive", revision],
        cwd=Path(__file__).parent.parent,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def stale_model_gone(timeline: Any, flip_step: int) -> int | None:
    """Steps from the first step with flipped bars until the version that traded into the flip
    stops trading (0: taken out at that very step; None: never; -1: nothing traded then)."""
    import pandas as pd

    at_flip = timeline.loc[timeline["step"] == flip_step - 1, "active_version"].iloc[0]
    if pd.isna(at_flip):
        return -1
    for row in timeline[timeline["step"] >= flip_step].itertuples():
        if pd.isna(row.active_version) or int(row.active_version) != int(at_flip):
            return int(row.step) - flip_step
    return None


def verdicts(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each market's runs summed up, and whether the issue's 'done when' holds for it."""
    summary: dict[str, dict[str, Any]] = {}
    for market in MARKETS:
        group = [r for r in runs if r["market"] == market]
        if not group:
            continue
        totals = [r["total_return"] for r in group]
        worst_years = [r["worst_year_return"] for r in group]
        entry: dict[str, Any] = {
            "seeds": len(group),
            "median_total_return": statistics.median(totals),
            "min_total_return": min(totals),
            "median_hold_total_return": statistics.median(r["hold_total_return"] for r in group),
            "seeds_never_trading": sum(r["steps_trading"] == 0 for r in group),
            "steps_trading": [r["steps_trading"] for r in group],
            "versions_in_charge": [r["versions_in_charge"] for r in group],
            "worst_year_return": min(worst_years),
            "median_seconds": statistics.median(r["seconds"] for r in group),
        }
        if market == "random_walk":
            entry["done"] = (
                entry["seeds_never_trading"] >= 0.9 * len(group) and min(totals) >= LIMIT
            )
        elif market in ("weak_005", "weak_010"):
            entry["done"] = min(totals) >= LIMIT and min(worst_years) >= LIMIT
        elif market == "strong":
            entry["done"] = min(r["steps_trading"] for r in group) >= 24 and min(totals) > 0
        else:
            entry["steps_to_drop_stale_model"] = [r["steps_to_drop_stale_model"] for r in group]
        summary[market] = entry
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markets", nargs="+", default=list(MARKETS), choices=list(MARKETS))
    parser.add_argument(
        "--seeds", type=int, default=None, help="seeds per market (default: each market's)"
    )
    parser.add_argument("--policy", choices=("default", "seed"), default="default")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline", default=None, help="run the code of this git revision")
    parser.add_argument("--start-bars", type=int, default=3000, help="bars before step 0")
    parser.add_argument(
        "--train-window-bars", type=int, default=0, help="recent rows per retrain (0: all)"
    )
    parser.add_argument("--tag", default="", help="suffix of the results file")
    parser.add_argument("--report", action="store_true", help="print the saved results and exit")
    args = parser.parse_args()
    name = "replay_bench" + ("" if args.policy == "default" else f"_{args.policy}")
    out = RESULTS / (
        name
        + (f"_{args.baseline}" if args.baseline else "")
        + (f"_{args.tag}" if args.tag else "")
        + ".json"
    )
    if args.report:
        report(json.loads(out.read_text()))
        return
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as home:
        context = None
        if args.baseline:
            tree = archive(args.baseline, Path(home) / "baseline")
            # Spawned workers start a fresh interpreter with this process's sys.path (which
            # multiprocessing hands them, PYTHONPATH or not): the baseline's package first.
            sys.path.insert(0, str(tree))
            os.environ[BASELINE_ENV] = args.baseline
            context = multiprocessing.get_context("spawn")
        jobs = [
            (market, seed, args.policy, home, args.start_bars, args.train_window_bars or None)
            for market in args.markets
            for seed in range(args.seeds or MARKETS[market][1])
        ]
        with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
            runs = []
            for run in pool.map(one_replay, jobs):
                runs.append(run)
                print(
                    json.dumps(
                        {
                            k: run[k]
                            for k in (
                                "market",
                                "seed",
                                "total_return",
                                "hold_total_return",
                                "steps_trading",
                                "versions_in_charge",
                                "worst_year_return",
                                "seconds",
                            )
                        }
                    ),
                    flush=True,
                )
    document = {
        "measured": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "policy": args.policy,
        "code": args.baseline or "this checkout",
        "plan": {
            "start_bars": args.start_bars,
            "train_window_bars": args.train_window_bars or None,
            "step_bars": 168,
            "steps": 26,
            "flip_step": FLIP_STEP,
        },
        "market": {"volatility": 0.01, "fee_bps": 10.0, "models": ["ridge", "random_forest"]},
        "summary": verdicts(runs),
        "runs": runs,
    }
    out.write_text(json.dumps(document, indent=2))
    report(document)


def report(document: dict[str, Any]) -> None:
    plan = document["plan"]
    print(
        f"Measured {document['measured']} on {document['machine']}: {document['policy']} policy, "
        f"code {document.get('code', 'this checkout')}, {plan['start_bars']} bars before step 0, "
        f"training window {plan.get('train_window_bars') or 'all history'}"
    )
    print(
        "| market | seeds | never trading | weeks trading (per seed) | versions in charge | "
        "managed, net: median (worst) | holding: median | worst calendar year | done |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for market, row in document["summary"].items():
        momentum = MARKETS[market][0]
        done = row.get("done")
        print(
            f"| {market} ({momentum:g}) | {row['seeds']} | {row['seeds_never_trading']} | "
            f"{', '.join(map(str, row['steps_trading']))} | "
            f"{', '.join(map(str, row['versions_in_charge']))} | "
            f"{row['median_total_return']:+.1%} ({row['min_total_return']:+.1%}) | "
            f"{row['median_hold_total_return']:+.1%} | {row['worst_year_return']:+.1%} | "
            + ("-" if done is None else ("yes" if done else "**no**"))
            + " |"
        )
        if "steps_to_drop_stale_model" in row:
            print(f"|  | stale model out after (steps): {row['steps_to_drop_stale_model']} |")


if __name__ == "__main__":
    main()
