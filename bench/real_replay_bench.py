"""The honest gate on real exchange histories: ``brain replay`` over daily bars, week after
week, judged net of fees against standing aside and holding, every calendar year.

    .venv/bin/python bench/real_replay_bench.py [--folder bench/data/real] [--workers 2]
    .venv/bin/python bench/real_replay_bench.py --symbols BTC/USD --floor-confidence 0.9
    .venv/bin/python bench/real_replay_bench.py --report [--floor-confidence 0.9]

Every file of ``--folder`` (the files layout: ``BTC-USD.csv`` holds BTC/USD) is replayed from
its first two years on (730 daily bars), one step a week (7 bars), to its last bar, with the
default policy, ridge and random forest, 10 bps fees, the whole history at every retrain. The
development set is bench/data/real (Bitstamp BTC and ETH, Poloniex LTC, 2013-2020, defects
included); point ``--folder`` at a held-out history to judge it the same way.

Daily bars need daily-sized monitoring: the live window is 90 bars (a quarter) and at least 30
are needed, and the rollback cooldown is 7 bars (a week); the cumulative test is the same.
The default cleaning limit (1% of bars dropped or repaired) refuses the Poloniex LTC file (177
inconsistent candles, all before 2017: a quarter of its first two years), so the bench allows
30%: what is judged here is the gate, not the feed. Done when every symbol and every calendar
year of its replay ends no worse than -5% net. Results go to
bench/results/real_replay_bench.json, a PNG per symbol to bench/results/replay/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from brain_assets.decisions.policy import DecisionPolicy

RESULTS = Path(__file__).parent / "results"
DEFAULT_FOLDER = Path(__file__).parent / "data" / "real"
DEFAULT_FLOOR = DecisionPolicy().floor_confidence
START_BARS = 730
STEP_BARS = 7
LIMIT = -0.05


def one_symbol(job: tuple[str, str, str, float]) -> dict[str, Any]:
    folder, symbol, home, floor_confidence = job
    from brain_assets.library import BrainLibrary
    from brain_assets.market_data.files import FileSource
    from brain_assets.pipeline.settings import RetrainSettings
    from brain_assets.plots import replay_png
    from brain_assets.quality.cleaning import CleaningPolicy
    from brain_assets.replay import ReplayPlan, replay
    from brain_assets.store.embedded import start_embedded

    bars = FileSource(folder).load(symbol).frame
    steps = (len(bars) - START_BARS) // STEP_BARS
    plan = ReplayPlan(
        start_bars=START_BARS,
        step_bars=STEP_BARS,
        steps=steps,
        min_live_bars=30,
        live_window_bars=90,
    )
    settings = RetrainSettings(
        model_types=("ridge", "random_forest"),
        cleaning=CleaningPolicy(max_affected_fraction=0.30),
    )
    policy = DecisionPolicy(cooldown_bars=7, floor_confidence=floor_confidence)
    server = start_embedded(Path(home) / f"pgdata-{os.getpid()}")
    database = "real_" + symbol.replace("/", "_").lower()
    started = time.perf_counter()
    try:
        with BrainLibrary(server.ensure_database(database)) as brain:
            result = replay(brain, symbol, bars, plan, settings=settings, policy=policy)
        server.drop_database(database)
    finally:
        server.release()
    folder_path = RESULTS / "replay"
    folder_path.mkdir(parents=True, exist_ok=True)
    name = symbol.replace("/", "-")
    (folder_path / f"real_{name}.png").write_bytes(
        replay_png(result.timeline, f"{symbol} daily, default policy", label="default policy")
    )
    return {
        "symbol": symbol,
        "bars": len(bars),
        "first": str(bars["timestamp"].iloc[0]),
        "last": str(bars["timestamp"].iloc[-1]),
        "seconds": round(time.perf_counter() - started, 1),
        **{k: v for k, v in result.summary.items() if k not in ("rollback_steps",)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--symbols", nargs="+", default=None, help="default: every file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--floor-confidence",
        type=float,
        default=DEFAULT_FLOOR,
        help=f"the activation floor's confidence (default: the policy's, {DEFAULT_FLOOR})",
    )
    parser.add_argument("--report", action="store_true", help="print the saved results and exit")
    args = parser.parse_args()
    suffix = "" if args.floor_confidence == DEFAULT_FLOOR else f"_floor{args.floor_confidence:g}"
    out = RESULTS / f"real_replay_bench{suffix}.json"
    if args.report:
        report(json.loads(out.read_text()))
        return
    symbols = args.symbols or sorted(
        path.stem.replace("-", "/", 1) for path in args.folder.glob("*.csv")
    )
    with tempfile.TemporaryDirectory(prefix="real-replay-") as home:
        jobs = [(str(args.folder), symbol, home, args.floor_confidence) for symbol in symbols]
        with ProcessPoolExecutor(args.workers) as pool:
            runs = list(pool.map(one_symbol, jobs))
    for run in runs:
        years = run["by_year"].values()
        run["done"] = run["total_return"] >= LIMIT and all(y["managed"] >= LIMIT for y in years)
    document = {
        "measured": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "folder": str(args.folder),
        "floor_confidence": args.floor_confidence,
        "plan": {"start_bars": START_BARS, "step_bars": STEP_BARS},
        "runs": runs,
    }
    out.write_text(json.dumps(document, indent=2))
    report(document)


def report(document: dict[str, Any]) -> None:
    print(
        f"Measured {document['measured']} on {document['machine']}, {document['folder']}, "
        f"floor confidence {document.get('floor_confidence', DEFAULT_FLOOR)}"
    )
    print(
        "| symbol | bars | weeks | weeks trading | versions in charge | managed, net | "
        "holding | worst year, managed | done |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in document["runs"]:
        print(
            f"| {run['symbol']} ({run['first'][:10]} .. {run['last'][:10]}) | {run['bars']} | "
            f"{run['steps']} | {run['steps_trading']} | {run['versions_in_charge']} | "
            f"{run['total_return']:+.1%} | {run['hold_total_return']:+.1%} | "
            f"{run['worst_year_return']:+.1%} | {'yes' if run['done'] else '**no**'} |"
        )
    print()
    print("| symbol | year | managed, net | holding |")
    print("| --- | --- | --- | --- |")
    for run in document["runs"]:
        for year, row in run["by_year"].items():
            print(f"| {run['symbol']} | {year} | {row['managed']:+.1%} | {row['hold']:+.1%} |")


if __name__ == "__main__":
    main()
