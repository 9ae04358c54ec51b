"""The no-trade band's margin against the sign rule: net Sharpe ratio, turnover and yearly cost.

    .venv/bin/python bench/band_bench.py [--seeds 4] [--report]

On AR(1) markets (``signal_market``, 1% hourly volatility, 10 bps fees) of momentum 0, 0.05, 0.1
and 0.2, the positions of (a) the true forecast ``momentum * last return`` and (b) the
out-of-sample forecasts of the retrain's ridge and random forest (walk-forward folds over 3,000
bars) are scored with the sign rule and with the band at several margins. Reported: the median
over seeds of the annualised net Sharpe ratio (0 for a strategy that never trades), the yearly
turnover and the yearly cost. Results go to bench/results/band_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from brain_assets.calendar import periods_per_year
from brain_assets.evaluation.comprehensive import evaluate_model
from brain_assets.evaluation.positions import PositionRule
from brain_assets.market_data.synthetic import signal_market
from brain_assets.pipeline.dataset import make_dataset
from brain_assets.pipeline.folds import out_of_sample
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.pipeline.training import train_symbol

RESULTS = Path(__file__).parent / "results" / "band_bench.json"
MOMENTA = (0.0, 0.05, 0.1, 0.2)
MARGINS = (0.0, 0.1, 0.25, 0.5, 1.0)
FEE_BPS = 10.0


def score(
    forecasts: np.ndarray, returns: np.ndarray, rule: PositionRule | None, ppy: float
) -> dict[str, float]:
    positions = None if rule is None else rule.positions(forecasts)
    metrics = evaluate_model(
        forecasts, returns, returns, positions, periods_per_year=ppy, fee_bps=FEE_BPS
    )
    return {
        "sharpe_ratio": metrics["sharpe_ratio"] or 0.0,
        "annual_turnover": float(metrics["annual_turnover"] or 0.0),
        "annual_cost": float(metrics["annual_cost"] or 0.0),
    }


def one_market(momentum: float, seed: int) -> list[dict[str, Any]]:
    bars = signal_market(3000, momentum=momentum, seed=100 + seed)
    settings = RetrainSettings(model_types=("ridge", "random_forest"), fee_bps=FEE_BPS)
    table = make_dataset(bars, 1)
    ppy = periods_per_year(table.index)
    forecasts: dict[str, Any] = {}
    for artifact in train_symbol("BENCH/USDT", table, settings):
        oos = out_of_sample(artifact, table, settings)
        forecasts[artifact.model_type] = oos.predictions
    rows = next(iter(forecasts.values())).index
    forecasts["true forecast"] = momentum * table.loc[rows, "ret_1"]
    returns = table.loc[rows, "next_return"].to_numpy()
    out = []
    for source, values in forecasts.items():
        rules: dict[str, PositionRule | None] = {"sign": None}
        rules.update({f"band {m:g}": PositionRule(fee_bps=FEE_BPS, margin=m) for m in MARGINS})
        for name, rule in rules.items():
            out.append(
                {
                    "momentum": momentum,
                    "seed": seed,
                    "forecast": source,
                    "rule": name,
                    **score(np.asarray(values, dtype=np.float64), returns, rule, ppy),
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--report", action="store_true", help="print the saved results and exit")
    args = parser.parse_args()
    if args.report:
        report(json.loads(RESULTS.read_text()))
        return
    rows = [
        row
        for momentum in MOMENTA
        for seed in range(args.seeds)
        for row in one_market(momentum, seed)
    ]
    groups: dict[tuple[float, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["momentum"], row["forecast"], row["rule"]), []).append(row)
    summary = [
        {
            "momentum": momentum,
            "forecast": forecast,
            "rule": rule,
            **{
                key: statistics.median(r[key] for r in group)
                for key in ("sharpe_ratio", "annual_turnover", "annual_cost")
            },
        }
        for (momentum, forecast, rule), group in groups.items()
    ]
    document = {
        "measured": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "seeds": args.seeds,
        "fee_bps": FEE_BPS,
        "summary": summary,
        "runs": rows,
    }
    RESULTS.write_text(json.dumps(document, indent=2))
    report(document)


def report(document: dict[str, Any]) -> None:
    print(f"Measured {document['measured']} on {document['machine']}, {document['seeds']} seeds")
    rules = list(dict.fromkeys(r["rule"] for r in document["summary"]))
    print("| momentum | forecast | " + " | ".join(rules) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in rules) + " |")
    keys = dict.fromkeys((r["momentum"], r["forecast"]) for r in document["summary"])
    for momentum, forecast in keys:
        cells = {
            r["rule"]: f"{r['sharpe_ratio']:.2f} ({r['annual_cost']:.0%}/yr)"
            for r in document["summary"]
            if r["momentum"] == momentum and r["forecast"] == forecast
        }
        print(f"| {momentum:g} | {forecast} | " + " | ".join(cells[rule] for rule in rules) + " |")


if __name__ == "__main__":
    main()
