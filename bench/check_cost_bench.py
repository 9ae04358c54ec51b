"""Cost of one symbol's bar checks as the number of stored symbols grows.

    .venv/bin/python bench/check_cost_bench.py [--stored 1 10 100] [--repeats 15] [--bars 3000]

For each S, a fresh database on one embedded PostgreSQL gets S symbols' market_data values
(synthetic hourly bars, cleaned as the asset cleans them; storing is setup, not timed). Each
repetition then materialises the `market_data` multi-asset (bars, cleaning, ohlcv checks,
quality-log rows) for ONE new symbol in process, and then `market_data` + `features` for another
new symbol. The checks run inside the assets on the run's own symbols, so the time should not
depend on S. Each repetition's symbol is removed from asset_values afterwards, so that every
repetition at S sees exactly S stored symbols. Results go to bench/results/check_cost_bench.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg

from brain_assets.defs.io_manager import BrainIOManager
from brain_assets.defs.monitoring.resources import MonitoringResource
from brain_assets.defs.partitions import add_symbols
from brain_assets.defs.resources import (
    BrainResource,
    DecisionResource,
    MarketDataResource,
    RetrainResource,
)
from brain_assets.defs.retrain.assets import features, market_data
from brain_assets.library import BrainLibrary
from brain_assets.pipeline.bars import prepare_bars
from brain_assets.store.embedded import EmbeddedServer, start_embedded

RESULTS = Path(__file__).parent / "results" / "check_cost_bench.json"
# Same fast retrain settings as the tests' helpers; only market_data's cleaning policy and the
# features' horizon and gap limit are used by the two steps timed here.
RETRAIN = RetrainResource(min_rows=500, importance_sample=250, include_lstm=False)
# Dagster's console logger prints every event at DEBUG; the table is all this bench shows.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
TERMINAL_STEP_EVENTS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: with 7 repetitions, p90 is the slowest one (no interpolation,
    so it is always a time that was measured)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def stored_symbols(s: int) -> list[str]:
    return [f"ST{i:03d}/USDT" for i in range(s)]


def store_market_data(dsn: str, symbols: list[str], bars: int) -> None:
    """Setup: the values market_data would have stored for ``symbols`` (cleaned bars)."""
    market = MarketDataResource(source="synthetic", n_bars=bars)
    settings = RETRAIN.settings()
    with BrainLibrary(dsn) as brain:
        # Chunks keep each transaction small; the table ends up the same either way.
        for start in range(0, len(symbols), 25):
            values = {}
            for symbol in symbols[start : start + 25]:
                data = market.load(symbol)
                values[symbol] = prepare_bars(symbol, data.frame, settings).frame
            brain.put_asset_values("market_data", values)


def count(dsn: str, query: str, params: tuple[Any, ...] = ()) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Each step's wall time from its STEP_START to its STEP_SUCCESS/FAILURE event: the asset
    body plus its input load, output write and check evaluation, without run setup."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.event_type in TERMINAL_STEP_EVENTS and event.step_key in started:
            seconds[event.step_key] = entry.timestamp - started[event.step_key]
    return seconds


def one_run(
    dsn: str, stored: list[str], symbol: str, bars: int, assets: list[Any]
) -> dict[str, Any]:
    """Materialise ``assets`` for ``symbol`` alone; returns wall time, step times, log rows."""
    # A fresh ephemeral instance per repetition, holding every stored symbol as a partition
    # (as a real instance would), so that runs of earlier repetitions do not accumulate.
    instance = dg.DagsterInstance.ephemeral()
    add_symbols(instance, [*stored, symbol])
    brain = BrainResource(dsn=dsn)
    stored_before = count(dsn, "SELECT count(*) FROM asset_values WHERE asset_key = 'market_data'")
    logs_before = count(dsn, "SELECT count(*) FROM data_quality_logs")
    started = time.perf_counter()
    result = dg.materialize(
        assets,
        instance=instance,
        partition_key=symbol,
        run_config=QUIET,
        resources={
            "brain": brain,
            "brain_io_manager": BrainIOManager(brain=brain),
            "market": MarketDataResource(source="synthetic", n_bars=bars),
            "retrain": RETRAIN,
            "monitoring": MonitoringResource(),
            "decisions": DecisionResource(),
        },
    )
    wall = time.perf_counter() - started
    assert result.success
    logs_written = count(dsn, "SELECT count(*) FROM data_quality_logs") - logs_before
    logs_of_run = count(
        dsn,
        "SELECT count(*) FROM data_quality_logs WHERE details->>'run_id' = %s",
        (result.run_id,),
    )
    steps = step_seconds(instance, result.run_id)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Back to exactly S stored symbols for the next repetition (setup, not timed).
        conn.execute("DELETE FROM asset_values WHERE partition_key = %s", (symbol,))
    instance.dispose()
    return {
        "symbol": symbol,
        "wall_s": wall,
        "steps_s": steps,
        "stored_symbols_before": stored_before,
        "quality_rows_written": logs_written,
        "quality_rows_with_run_id": logs_of_run,
    }


def load_all_stored(dsn: str, stored: list[str], repeats: int = 3) -> float:
    """Control: loading every stored symbol's market_data, what each separate @asset_check paid
    for its input before the checks moved into the assets. It grows with S, which shows that
    this bench would see that design's growth. The median of a few loads."""
    times = []
    with BrainLibrary(dsn) as brain:
        for _ in range(repeats):
            started = time.perf_counter()
            values = brain.get_asset_values("market_data", stored)
            times.append(time.perf_counter() - started)
            assert len(values) == len(stored)
    return statistics.median(times)


def summarise(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p90": percentile(values, 0.9),
        "min": min(values),
        "max": max(values),
    }


def bench_stored(
    server: EmbeddedServer, s: int, repeats: int, bars: int, warmups: int
) -> dict[str, Any]:
    database = f"checkcost_{s}_{uuid.uuid4().hex[:8]}"
    dsn = server.ensure_database(database)
    stored = stored_symbols(s)
    setup_started = time.perf_counter()
    store_market_data(dsn, stored, bars)
    setup_s = time.perf_counter() - setup_started
    tag = uuid.uuid4().hex[:4].upper()
    md_runs: list[dict[str, Any]] = []
    ft_runs: list[dict[str, Any]] = []
    for i in range(warmups + repeats):
        # Interleaved so that any drift in machine load hits both measurements alike.
        md = one_run(dsn, stored, f"N{tag}{i:02d}/USDT", bars, [market_data])
        ft = one_run(dsn, stored, f"F{tag}{i:02d}/USDT", bars, [market_data, features])
        if i >= warmups:
            md_runs.append(md)
            ft_runs.append(ft)
    load_all = load_all_stored(dsn, stored)
    server.drop_database(database)
    return {
        "stored_symbols": s,
        "setup_store_s": setup_s,
        "market_data_run_s": summarise([r["wall_s"] for r in md_runs]),
        "market_data_step_s": summarise([r["steps_s"]["market_data"] for r in md_runs]),
        "md_features_run_s": summarise([r["wall_s"] for r in ft_runs]),
        "features_step_s": summarise([r["steps_s"]["features"] for r in ft_runs]),
        "quality_rows_market_data": sorted({r["quality_rows_written"] for r in md_runs}),
        "quality_rows_md_features": sorted({r["quality_rows_written"] for r in ft_runs}),
        "stored_before_each_run": sorted({r["stored_symbols_before"] for r in md_runs}),
        "load_all_stored_s": load_all,
        "market_data_runs": md_runs,
        "md_features_runs": ft_runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stored", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmups", type=int, default=2, help="discarded runs per S")
    parser.add_argument("--bars", type=int, default=3000)
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    when = time.strftime("%Y-%m-%d %H:%M")
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="brain-checkcost-bench-") as folder:
        server = start_embedded(Path(folder) / "pgdata")
        try:
            # Warm-up in its own database: imports, Pandera schema building, plot backends.
            bench_stored(server, 1, 1, args.bars, 0)
            for s in args.stored:
                rows.append(bench_stored(server, s, args.repeats, args.bars, args.warmups))
                print(f"  S={s} done", flush=True)
        finally:
            server.release()
    load_after = os.getloadavg()
    base = rows[0]
    last = rows[-1]
    ratio = {
        key: last[key]["median"] / base[key]["median"]
        for key in (
            "market_data_run_s",
            "market_data_step_s",
            "md_features_run_s",
            "features_step_s",
        )
    }
    print(
        f"\ncheck cost vs stored symbols, {when}, {args.repeats} repetitions per S "
        f"(+{args.warmups} discarded), {args.bars} hourly bars, load avg "
        f"{load_before[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} cores"
    )
    header = (
        f"{'S':>4} | {'market_data run':>17} | {'market_data step':>17} | "
        f"{'md+features run':>17} | {'features step':>17} | {'log rows':>8} | "
        f"{'control':>10}"
    )
    print(header)
    print(
        f"{'':>4} | {'median / p90 (s)':>17} | {'median / p90 (s)':>17} | "
        f"{'median / p90 (s)':>17} | {'median / p90 (s)':>17} | {'md / +ft':>8} | "
        f"{'load S (s)':>10}"
    )
    print("-" * len(header))
    for row in rows:
        cells = [
            f"{row[key]['median']:7.3f} / {row[key]['p90']:6.3f}"
            for key in (
                "market_data_run_s",
                "market_data_step_s",
                "md_features_run_s",
                "features_step_s",
            )
        ]
        rows_md = ",".join(str(v) for v in row["quality_rows_market_data"])
        rows_ft = ",".join(str(v) for v in row["quality_rows_md_features"])
        print(
            f"{row['stored_symbols']:>4} | "
            + " | ".join(cells)
            + f" | {rows_md:>3} / {rows_ft:<2} | {row['load_all_stored_s']:10.3f}"
        )
    print(
        f"ratio S={last['stored_symbols']} / S={base['stored_symbols']} (medians): "
        + ", ".join(f"{key.removesuffix('_s')} {value:.2f}" for key, value in ratio.items())
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()} {platform.python_version()}, "
                f"{os.cpu_count()} cores",
                "when": when,
                "load_avg_1m_before_after": [load_before[0], load_after[0]],
                "bars": args.bars,
                "repeats": args.repeats,
                "warmups": args.warmups,
                "ratio_last_over_first": ratio,
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
