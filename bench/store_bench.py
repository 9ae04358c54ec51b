"""Store benchmark: one model version's record set, and get_top_features at 10 million rows.

    .venv/bin/python bench/store_bench.py [--rows 10000000] [--repeats 300]

Runs on a fresh embedded server in a temporary folder (or on $DATABASE_DSN when --use-dsn is
given) and writes bench/results/store_bench.json. Figures are medians and percentiles of many
repetitions; run it a few times on a quiet machine before quoting it.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from brain_assets.library import BrainLibrary
from brain_assets.store.embedded import start_embedded

RESULTS = Path(__file__).parent / "results" / "store_bench.json"
FEATURES = [f"feature_{i:02d}" for i in range(40)]
METHODS = ("shap", "permutation", "correlation")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def record_set(brain: BrainLibrary, symbol: str, rng: random.Random) -> None:
    """Registry row + 30 metrics + 3 x 40 importance rows, as one transaction."""
    metrics = {f"metric_{i:02d}": rng.random() for i in range(29)}
    metrics["composite_score"] = rng.random()
    with brain.transaction():
        model_id = brain.register_model(
            symbol,
            "random_forest",
            rng.randbytes(2048),
            metrics=metrics,
            hyperparameters={"n_estimators": 100, "max_depth": 6},
            feature_names=FEATURES,
        )
        brain.store_feature_importances(
            symbol, model_id, {method: {f: rng.random() for f in FEATURES} for method in METHODS}
        )


def bench_record_set(brain: BrainLibrary, repeats: int) -> dict[str, float]:
    rng = random.Random(1)
    for i in range(20):
        record_set(brain, f"WARM{i % 4}/USDT", rng)
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        record_set(brain, f"SYM{i % 16}/USDT", rng)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": statistics.median(times),
        "p95_ms": percentile(times, 0.95),
        "repeats": repeats,
    }


def bench_raw_copy(dsn: str, repeats: int) -> dict[str, float]:
    """The same rows through bare psycopg (one INSERT, two COPYs, one commit): the floor."""
    rng = random.Random(3)
    times = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(repeats + 20):
            model_id = f"raw-{i}"
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO model_registry (model_id, symbol, version, model_type, artifact, "
                    "artifact_sha256) VALUES (%s, 'RAW/USDT', %s, 'rf', %s, %s)",
                    (model_id, i + 1, rng.randbytes(2048), "0" * 64),
                )
                with cur.copy(
                    "COPY model_metrics (model_id, symbol, metric, value) FROM STDIN"
                ) as copy:
                    for m in range(30):
                        copy.write_row((model_id, "RAW/USDT", f"metric_{m:02d}", rng.random()))
                with cur.copy(
                    "COPY feature_importance (symbol, model_id, method, feature, importance, "
                    "rank) FROM STDIN"
                ) as copy:
                    for method in METHODS:
                        for rank, feature in enumerate(FEATURES, 1):
                            copy.write_row(
                                ("RAW/USDT", model_id, method, feature, rng.random(), rank)
                            )
            if i >= 20:
                times.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": statistics.median(times),
        "p95_ms": percentile(times, 0.95),
        "repeats": repeats,
    }


def load_importance_rows(dsn: str, rows: int, symbols: int) -> float:
    """Server-side bulk load: `symbols` models, each with rows/symbols importance rows."""
    per_symbol = rows // symbols
    analyses = per_symbol // len(FEATURES)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO model_registry (model_id, symbol, version, model_type, artifact,
                   artifact_sha256)
               SELECT 'bench-' || s, 'B' || s || '/USDT', 1, 'ridge', '\\x00',
                      repeat('0', 64)
               FROM generate_series(1, %s) AS s""",
            (symbols,),
        )
        conn.execute(
            """INSERT INTO feature_importance (symbol, model_id, method, feature, importance, rank,
                   analysis_date)
               SELECT 'B' || s || '/USDT', 'bench-' || s,
                      (ARRAY['shap', 'permutation', 'correlation'])[1 + a %% 3],
                      'feature_' || lpad(f::text, 2, '0'), 1.0 / (f + 1), f + 1,
                      timestamptz '2024-01-01' + a * interval '1 hour'
               FROM generate_series(1, %s) AS s, generate_series(1, %s) AS a,
                    generate_series(0, %s) AS f""",
            (symbols, analyses, len(FEATURES) - 1),
        )
        conn.execute("VACUUM ANALYZE feature_importance")
        count = conn.execute("SELECT count(*) FROM feature_importance").fetchone()
    assert count is not None
    print(f"loaded {count[0]:,} feature_importance rows in {time.perf_counter() - started:.0f} s")
    return time.perf_counter() - started


def bench_top_features(brain: BrainLibrary, symbols: int, repeats: int) -> dict[str, object]:
    rng = random.Random(2)
    results: dict[str, object] = {}
    for label, method in (("latest_any_method", None), ("latest_shap", "shap")):
        for _ in range(50):
            brain.get_top_features(f"B{rng.randint(1, symbols)}/USDT", top_n=20, method=method)
        times = []
        for _ in range(repeats):
            symbol = f"B{rng.randint(1, symbols)}/USDT"
            started = time.perf_counter()
            top = brain.get_top_features(symbol, top_n=20, method=method)
            times.append((time.perf_counter() - started) * 1000)
            assert len(top) == 20
        results[label] = {
            "median_ms": statistics.median(times),
            "p95_ms": percentile(times, 0.95),
            "repeats": repeats,
        }
    with psycopg.connect(brain.dsn) as conn:
        plan = conn.execute(
            "EXPLAIN SELECT model_id, method, analysis_date FROM feature_importance "
            "WHERE symbol = 'B1/USDT' ORDER BY analysis_date DESC LIMIT 1"
        ).fetchall()
    results["plan_first_step"] = " | ".join(row[0].strip() for row in plan)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="brain-bench-") as folder:
        server = start_embedded(Path(folder) / "pgdata")
        with BrainLibrary(server.ensure_database("bench")) as brain:
            record = bench_record_set(brain, args.repeats)
            print(
                f"record set (1 registry row, 30 metrics, 3x40 importances): "
                f"median {record['median_ms']:.2f} ms, p95 {record['p95_ms']:.2f} ms"
            )
            raw = bench_raw_copy(brain.dsn, args.repeats)
            print(
                f"same rows through bare psycopg COPY: median {raw['median_ms']:.2f} ms, "
                f"p95 {raw['p95_ms']:.2f} ms"
            )
            load_s = load_importance_rows(brain.dsn, args.rows, args.symbols)
            top = bench_top_features(brain, args.symbols, args.repeats * 3)
            for label in ("latest_any_method", "latest_shap"):
                figures = top[label]
                assert isinstance(figures, dict)
                print(
                    f"get_top_features {label} at {args.rows:,} rows: "
                    f"median {figures['median_ms']:.2f} ms, p95 {figures['p95_ms']:.2f} ms"
                )
            print(f"plan: {top['plan_first_step']}")
        server.release()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()} {platform.python_version()}",
                "when": time.strftime("%Y-%m-%d %H:%M"),
                "record_set": record,
                "rows": args.rows,
                "load_seconds": round(load_s, 1),
                "get_top_features": top,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
