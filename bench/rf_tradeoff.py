"""Random forest settings: out-of-sample quality against fit time, at growing bar counts.

    .venv/bin/python bench/rf_tradeoff.py [--sizes 10000 100000 525600] [--stages rows shape]

On one-minute synthetic bars with a signal (two kinds: ``regime``, the retrain's own synthetic
source, whose AR(1) momentum changes with a volatility regime; ``signal``, ``signal_market``'s
constant AR(1) momentum), the retrain's modelling table is split as the retrain splits it
(60/20/20, embargo 1) and each forest is fitted on the training segment and scored on the test
segment with the project's evaluation (information coefficient, directional accuracy, composite
score, 10 bps fees, 525,600 bars a year). Ridge and hist gradient boosting at their defaults are
scored on the same split for reference.

Stages:

* ``rows``: rows per tree (``max_samples``, an absolute cap: min(cap, training rows)) at the
  old shape (depth 6, min_samples_leaf 5, every feature per split). Each forest is grown with
  ``warm_start`` to 25, 50 and 100 trees: the first k trees of a forest are exactly the k-tree
  forest of the same seed, so this gives both the tree-count trade-off and the exact fit time
  of each count in one fit.
* ``shape``: depth, min_samples_leaf and max_features at a few caps (``--shapes``,
  ``--shape-caps``).
* small data (``--small-symbols N``): given forests on the retrain's demo-sized data, 3,000
  hourly bars (``--small-bars``) of N symbols, averaged over the symbols.

The uncapped forest is skipped above ``--uncapped-max`` bars (it is what does not scale).
One thread (OpenMP and BLAS pinned before numpy loads) so that times compare across settings on
a shared machine. Results go to bench/results/rf_tradeoff.json (``--output``). The defaults of
training.models were chosen from these runs:

    bench/rf_tradeoff.py                                   -> rf_tradeoff.json
    bench/rf_tradeoff.py --kinds regime --sizes 100000 525600 --stages shape \
        --shape-caps 10000 20000 --shapes '[...leaves 100/200, max_features 0.5...]'
                                                           -> rf_tradeoff_shapes.json
    bench/rf_tradeoff.py --kinds --small-symbols 16 --small-settings '[old, leaves 50/100/200]'
                                                           -> rf_tradeoff_small.json
    (the same with --small-bars 500)                       -> rf_tradeoff_small_500.json

(the exact arguments of the last three are in their JSON, under ``arguments``; the first ran
with the defaults).
"""

from __future__ import annotations

import os

# Before numpy and scikit-learn load their thread pools: the retrain fits single-threaded.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402

from brain_assets.evaluation.comprehensive import evaluate_model  # noqa: E402
from brain_assets.market_data.synthetic import generate_ohlcv, signal_market  # noqa: E402
from brain_assets.pipeline.dataset import build_dataset_table, split_columns  # noqa: E402
from brain_assets.training.models import train_model  # noqa: E402
from brain_assets.training.serialization import serialize_model  # noqa: E402
from brain_assets.training.split import walk_forward_split  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "rf_tradeoff.json"
MINUTES_PER_YEAR = 525_600.0
FEE_BPS = 10.0
TREE_COUNTS = (25, 50, 100)
ROW_CAPS: tuple[int | None, ...] = (None, 50_000, 20_000, 10_000, 5_000, 2_000)
OLD_SHAPE = {"max_depth": 6, "min_samples_leaf": 5, "max_features": 1.0}
SHAPES: tuple[dict[str, Any], ...] = (
    {"max_depth": 6, "min_samples_leaf": 5, "max_features": 1.0},
    {"max_depth": 6, "min_samples_leaf": 5, "max_features": 0.33},
    {"max_depth": 6, "min_samples_leaf": 50, "max_features": 0.33},
    {"max_depth": 8, "min_samples_leaf": 20, "max_features": 0.33},
    {"max_depth": 10, "min_samples_leaf": 50, "max_features": 0.33},
    {"max_depth": 4, "min_samples_leaf": 5, "max_features": 1.0},
)
SHAPE_CAPS = (5_000, 10_000, 20_000)


def _bars(kind: str, n: int, bar: str = "1min", symbol: str = "S00/USDT") -> pd.DataFrame:
    if kind == "regime":
        return generate_ohlcv(symbol, seed=7, n_bars=n, bar=bar)[0]
    return signal_market(n, bar=bar, seed=1)


def _split_table(kind: str, n: int, bar: str = "1min", symbol: str = "S00/USDT") -> dict[str, Any]:
    table = build_dataset_table(_bars(kind, n, bar, symbol), 1).table
    split = walk_forward_split(table.index, train_frac=0.6, val_frac=0.2, embargo=1)
    X, y, next_return = split_columns(table)
    # float32 once, as the forest would convert it on every fit: the timed fits then measure
    # tree building, not the copy.
    return {
        "X_train": X.iloc[split.train].to_numpy(np.float32),
        "y_train": y.iloc[split.train].to_numpy(),
        "X_test": X.iloc[split.test].to_numpy(np.float32),
        "y_test": y.iloc[split.test].to_numpy(),
        "r_test": next_return.iloc[split.test].to_numpy(),
        "sizes": split.sizes(),
    }


def _quality(
    predictions: np.ndarray, data: dict[str, Any], periods_per_year: float = MINUTES_PER_YEAR
) -> dict[str, float | None]:
    metrics = evaluate_model(
        predictions,
        data["y_test"],
        data["r_test"],
        periods_per_year=periods_per_year,
        fee_bps=FEE_BPS,
    )
    keys = ("information_coefficient", "directional_accuracy", "composite_score", "sharpe_ratio")
    return {key: metrics[key] for key in keys}


def _forest_rows(data: dict[str, Any], cap: int | None, shape: dict[str, Any]) -> list[dict]:
    """One forest grown to each of TREE_COUNTS; a row per count with its cumulative fit time."""
    n_train = len(data["y_train"])
    rows_per_tree = n_train if cap is None else min(cap, n_train)
    forest = RandomForestRegressor(
        n_estimators=TREE_COUNTS[0],
        max_samples=None if cap is None or cap >= n_train else cap,
        warm_start=True,
        n_jobs=1,
        random_state=0,
        **shape,
    )
    fitted = 0.0
    rows = []
    for trees in TREE_COUNTS:
        forest.set_params(n_estimators=trees)
        started = time.perf_counter()
        forest.fit(data["X_train"], data["y_train"])
        fitted += time.perf_counter() - started
        started = time.perf_counter()
        predictions = forest.predict(data["X_test"])
        predict_s = time.perf_counter() - started
        rows.append(
            {
                "cap": cap,
                "rows_per_tree": rows_per_tree,
                **shape,
                "n_estimators": trees,
                "fit_s": round(fitted, 3),
                "predict_s": round(predict_s, 3),
                "leaves_mean": float(np.mean([t.get_n_leaves() for t in forest.estimators_])),
                **_quality(predictions, data),
            }
        )
    rows[-1]["artifact_kb"] = round(len(serialize_model(forest)[0]) / 1024, 1)
    return rows


def _references(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for model_type in ("ridge", "hist_gradient_boosting"):
        trained = train_model(model_type, data["X_train"], data["y_train"])
        predictions = trained.estimator.predict(data["X_test"])
        out[model_type] = {"fit_s": round(trained.fit_seconds, 3), **_quality(predictions, data)}
    return out


def _small_data(symbols: int, bars: int, settings: list[dict[str, Any]]) -> dict[str, Any]:
    """Each forest setting on the retrain's demo-sized data: ``bars`` hourly bars of ``symbols``
    regime-synthetic symbols, whose test segments are too short for one symbol to tell settings
    apart; the mean over symbols (and its standard error) can."""
    per_setting: list[dict[str, list[float]]] = [
        {"ic": [], "hit": [], "composite": [], "fit_s": []} for _ in settings
    ]
    for number in range(symbols):
        data = _split_table("regime", bars, "1h", f"S{number:02d}/USDT")
        for params, scores in zip(settings, per_setting, strict=True):
            trained = train_model(
                "random_forest", data["X_train"], data["y_train"], hyperparameters=params
            )
            quality = _quality(trained.estimator.predict(data["X_test"]), data, 8760.0)
            scores["ic"].append(quality["information_coefficient"] or 0.0)
            scores["hit"].append(quality["directional_accuracy"] or 0.5)
            scores["composite"].append(quality["composite_score"] or 0.0)
            scores["fit_s"].append(trained.fit_seconds)
    rows = []
    for params, scores in zip(settings, per_setting, strict=True):
        row: dict[str, Any] = {"hyperparameters": params}
        for key, values in scores.items():
            row[f"{key}_mean"] = float(np.mean(values))
            row[f"{key}_se"] = float(np.std(values, ddof=1) / math.sqrt(len(values)))
        rows.append(row)
        print(
            f"small {bars} x {symbols}: {params} IC {row['ic_mean']:+.4f} +/- {row['ic_se']:.4f}"
            f"  hit {row['hit_mean']:.4f} +/- {row['hit_se']:.4f}  fit {row['fit_s_mean']:.2f} s",
            flush=True,
        )
    return {"symbols": symbols, "bars": bars, "bar": "1h", "settings": rows}


def _print(kind: str, bars: int, row: dict[str, Any]) -> None:
    ic = row["information_coefficient"]
    hit = row["directional_accuracy"]
    print(
        f"{kind:>6} {bars:>7} cap {row.get('cap')!s:>6} d{row.get('max_depth')} "
        f"leaf{row.get('min_samples_leaf')} mf{row.get('max_features')} "
        f"T{row.get('n_estimators')}: fit {row['fit_s']:7.2f} s  IC "
        f"{(ic if ic is not None else math.nan):+.4f}  hit {(hit or math.nan):.4f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 525_600])
    parser.add_argument("--kinds", nargs="*", default=["regime", "signal"])
    parser.add_argument("--stages", nargs="+", default=["rows", "shape"])
    parser.add_argument("--uncapped-max", type=int, default=100_000)
    parser.add_argument("--shape-caps", type=int, nargs="+", default=list(SHAPE_CAPS))
    parser.add_argument(
        "--shapes",
        type=json.loads,
        default=list(SHAPES),
        help='JSON list of {"max_depth", "min_samples_leaf", "max_features"} for the shape stage',
    )
    parser.add_argument("--small-symbols", type=int, default=0, help="0: no small-data stage")
    parser.add_argument("--small-bars", type=int, default=3000)
    parser.add_argument(
        "--small-settings",
        type=json.loads,
        default=[{**OLD_SHAPE, "max_samples": None}, {}],
        help="JSON list of random_forest hyperparameter overrides ({}: the current defaults)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    document: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_at_start": os.getloadavg(),
            "threads": 1,
        },
        "fee_bps": FEE_BPS,
        "arguments": {key: value for key, value in vars(args).items() if key != "output"},
        "datasets": [],
    }
    if args.small_symbols:
        document["small"] = _small_data(args.small_symbols, args.small_bars, args.small_settings)
        args.output.parent.mkdir(exist_ok=True)
        args.output.write_text(json.dumps(document, indent=2))
    for kind in args.kinds:
        for bars in args.sizes:
            data = _split_table(kind, bars)
            entry: dict[str, Any] = {
                "kind": kind,
                "bars": bars,
                "segments": data["sizes"],
                # Standard error of a rank correlation near 0 over the test bars: differences
                # between settings below about twice this are noise.
                "ic_standard_error": 1.0 / math.sqrt(data["sizes"]["test"]),
                "references": _references(data),
                "rows": [],
                "shape": [],
            }
            for name, ref in entry["references"].items():
                _print(kind, bars, {**ref, "cap": name})
            if "rows" in args.stages:
                for cap in ROW_CAPS:
                    if cap is None and bars > args.uncapped_max:
                        continue
                    if cap is not None and cap >= data["sizes"]["train"]:
                        continue  # the same forest as uncapped
                    for row in _forest_rows(data, cap, OLD_SHAPE):
                        entry["rows"].append(row)
                        _print(kind, bars, row)
            if "shape" in args.stages:
                # A cap at or above the training rows is the uncapped forest: once is enough.
                caps = sorted({min(cap, data["sizes"]["train"]) for cap in args.shape_caps})
                for cap in caps:
                    for shape in args.shapes:
                        measured = cap in ROW_CAPS or cap == data["sizes"]["train"]
                        if shape == OLD_SHAPE and "rows" in args.stages and measured:
                            continue  # measured in the rows stage
                        for row in _forest_rows(data, cap, shape):
                            entry["shape"].append(row)
                            _print(kind, bars, row)
            document["datasets"].append(entry)
            args.output.parent.mkdir(exist_ok=True)
            args.output.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
