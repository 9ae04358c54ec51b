"""How the decision policy behaves over time: ``brain replay`` on markets whose truth is known.

Two markets from ``signal_market`` (AR(1) momentum 0.2, 1% hourly volatility, 5 bps fees):
* stable: the statistics never change, so every rollback is a false alarm and every change of
  the active model not backed by evidence is churn;
* flip: the AR coefficient changes sign at a known step, so the model that learnt the old sign
  loses from then on, and the policy should take it out (rollback, stand aside or a promotion
  away from it) within two steps.

Each market is replayed with the seed's rules (score promotion, no floor, rollback on a bare 5%
drop, 720-bar live window), with the default policy, and with the default policy on the old
720-bar window, over several seeds; medians are reported. Every replay runs
in its own database of a temporary embedded PostgreSQL. Writes bench/results/replay_bench.json
and one PNG per market and policy (first seed) under bench/results/replay/.

    .venv/bin/python bench/replay_bench.py --seeds 5 --steps 26
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.monitoring import DEFAULT_LIVE_WINDOW_BARS
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.plots import replay_png
from brain_assets.replay import ReplayPlan, replay
from brain_assets.store.embedded import start_embedded
from brain_assets.store.library import BrainLibrary

RESULTS = Path(__file__).parent / "results"
SYMBOL = "BTC/USDT"
POLICIES = {
    # Before this change: the seed's rules and its 720-bar live window.
    "seed": (DecisionPolicy.seed(), 720),
    # The default policy and live window.
    "default": (DecisionPolicy(), DEFAULT_LIVE_WINDOW_BARS),
    # The default policy with the old window: what the shorter window buys.
    "default_720": (DecisionPolicy(), 720),
}


def stale_model_gone(timeline: pd.DataFrame, flip_step: int) -> int | None:
    """Steps from the first step with flipped bars until the version that traded into the flip
    stops trading (0: taken out at that very step; None: never)."""
    at_flip = timeline.loc[timeline["step"] == flip_step - 1, "active_version"].iloc[0]
    if pd.isna(at_flip):
        return 0
    for row in timeline[timeline["step"] >= flip_step].itertuples():
        if pd.isna(row.active_version) or int(row.active_version) != int(at_flip):
            return int(row.step) - flip_step
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=26)
    parser.add_argument("--flip-step", type=int, default=14, help="first step of flipped bars")
    args = parser.parse_args()
    plan = ReplayPlan(start_bars=2000, step_bars=168, steps=args.steps)
    settings = RetrainSettings(
        model_types=("ridge", "random_forest"), fee_bps=5.0, train_window_bars=2000
    )
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as home:
        server = start_embedded(Path(home) / "pgdata")
        try:
            for seed in range(args.seeds):
                for market in ("stable", "flip"):
                    flip = market == "flip"
                    bars = signal_market(
                        plan.bars_needed(),
                        momentum=0.2,
                        # Step flip_step is the first to publish bars of the flipped market.
                        flip_at=plan.start_bars + (args.flip_step - 1) * plan.step_bars
                        if flip
                        else None,
                        seed=seed,
                    )
                    for name, (policy, window) in POLICIES.items():
                        variant = dataclasses.replace(plan, live_window_bars=window)
                        database = f"replay_{market}_{name}_{seed}"
                        started = time.perf_counter()
                        with BrainLibrary(server.ensure_database(database)) as brain:
                            result = replay(
                                brain, SYMBOL, bars, variant, settings=settings, policy=policy
                            )
                        seconds = time.perf_counter() - started
                        run = {
                            "seed": seed,
                            "market": market,
                            "policy": name,
                            "seconds": round(seconds, 1),
                            **result.summary,
                        }
                        if flip:
                            run["steps_to_drop_stale_model"] = stale_model_gone(
                                result.timeline, args.flip_step
                            )
                        runs.append(run)
                        print(json.dumps(run), flush=True)
                        if seed == 0:
                            png = RESULTS / "replay" / f"{market}_{name}.png"
                            png.write_bytes(
                                replay_png(
                                    result.timeline,
                                    f"{market} market, {name} policy (seed 0)",
                                    flip_step=args.flip_step if flip else None,
                                )
                            )
                        server.drop_database(database)
        finally:
            server.release()
    summary: dict[str, Any] = {}
    for market in ("stable", "flip"):
        for name in POLICIES:
            group = [r for r in runs if r["market"] == market and r["policy"] == name]
            entry = {
                key: statistics.median(r[key] for r in group)
                for key in (
                    "rollbacks",
                    "promotions",
                    "active_changes",
                    "steps_standing_aside",
                    "total_return",
                    "seconds",
                )
            }
            entry["max_rollbacks"] = max(r["rollbacks"] for r in group)
            if market == "flip":
                delays = [r["steps_to_drop_stale_model"] for r in group]
                entry["steps_to_drop_stale_model"] = delays
                entry["within_2_steps"] = sum(d is not None and d <= 2 for d in delays)
            summary[f"{market}/{name}"] = entry
    document = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "plan": {
            "start_bars": plan.start_bars,
            "step_bars": plan.step_bars,
            "steps": plan.steps,
            "flip_step": args.flip_step,
            "seeds": args.seeds,
        },
        "market": {"momentum": 0.2, "volatility": 0.01, "fee_bps": 5.0},
        "models": list(settings.model_types),
        "summary": summary,
        "runs": runs,
    }
    (RESULTS / "replay_bench.json").write_text(json.dumps(document, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
