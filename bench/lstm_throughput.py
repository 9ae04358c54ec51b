"""Training throughput of ``StandardizedLSTM`` in its default configuration, on the CPU.

Fits a fresh default model (2 bidirectional LSTM layers of 128 units, windows of 24 rows,
batch 64) several times on synthetic data and reports training windows per second as measured by
``FitResult.samples_per_second``: wall-clock time of Keras' ``fit``, graph tracing and the
validation pass included, which is what a caller of ``fit`` actually waits for. The median over
runs is the headline number; a warm-up fit first absorbs one-off costs (imports, oneDNN kernel
selection) that would otherwise land on run 1.

Usage::

    python bench/lstm_throughput.py [--runs 5] [--rows 4096] [--epochs 2] [--input-dim 32]

Writes ``bench/results/lstm_throughput.json`` next to this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# The bench is about the CPU path: hide any accelerator before tensorflow loads.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from brain_assets.lstm import StandardizedLSTM

RESULTS = Path(__file__).resolve().parent / "results" / "lstm_throughput.json"


def _synthetic(rows: int, input_dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """White-noise features and a target that depends on two lags, so training is not trivial."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, input_dim))
    y = np.zeros(rows)
    y[3:] = X[:-3, 0] - 0.5 * X[:-3, 1]
    y += 0.1 * rng.normal(size=rows)
    return X, y


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured fits (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured fits before the runs")
    parser.add_argument("--rows", type=int, default=4096, help="training rows")
    parser.add_argument("--val-rows", type=int, default=512, help="validation rows")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per fit (no early stop)")
    parser.add_argument("--input-dim", type=int, default=32, help="features per row")
    parser.add_argument("--batch-size", type=int, default=64, help="fit() batch size (default 64)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON result file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table, write the JSON file; returns the exit status."""
    args = _parse(argv)
    import keras
    import tensorflow as tf

    X, y = _synthetic(args.rows + args.val_rows, args.input_dim, seed=0)
    X_train, y_train = X[: args.rows], y[: args.rows]
    X_val, y_val = X[args.rows :], y[args.rows :]
    model = StandardizedLSTM(input_dim=args.input_dim)

    def one_fit() -> dict[str, Any]:
        # patience >= epochs: every run does the same amount of work.
        result = model.fit(
            X_train,
            y_train,
            X_val,
            y_val,
            epochs=args.epochs,
            batch_size=args.batch_size,
            patience=args.epochs,
        )
        return {
            "epochs_run": result.epochs_run,
            "train_windows": result.n_train_windows,
            "train_seconds": round(result.train_seconds, 4),
            "samples_per_second": round(result.samples_per_second, 2),
            "final_loss": result.history["loss"][-1],
        }

    for _ in range(args.warmup):
        one_fit()
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for _ in range(args.runs):
        runs.append(one_fit())
    total = time.perf_counter() - started

    throughput = [run["samples_per_second"] for run in runs]
    summary = {
        "benchmark": "StandardizedLSTM training throughput (default configuration, CPU)",
        "metric": "training windows per second of fit() wall time, validation included",
        "median_samples_per_second": round(statistics.median(throughput), 2),
        "min_samples_per_second": min(throughput),
        "max_samples_per_second": max(throughput),
        "runs": runs,
        "n_runs": args.runs,
        "warmup_runs": args.warmup,
        "total_seconds": round(total, 2),
        "model_config": model.get_config(),
        "fit": {
            "train_rows": args.rows,
            "val_rows": args.val_rows,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
        },
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "keras_backend": keras.backend.backend(),
            "gpus_visible": len(tf.config.list_physical_devices("GPU")),
        },
    }

    print(f"StandardizedLSTM default config, input_dim={args.input_dim}, batch={args.batch_size}")
    print(f"{'run':>4} {'epochs':>6} {'windows':>8} {'seconds':>9} {'samples/s':>10}")
    for index, run in enumerate(runs, start=1):
        print(
            f"{index:>4} {run['epochs_run']:>6} {run['train_windows']:>8} "
            f"{run['train_seconds']:>9.2f} {run['samples_per_second']:>10.1f}"
        )
    print(f"median {summary['median_samples_per_second']:.1f} samples/s over {args.runs} runs")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
