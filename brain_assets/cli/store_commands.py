"""Store-level subcommands: ``demo`` (a smoke run of the store) and ``psql``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from brain_assets.store.library import BrainLibrary


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="write sample records to the Brain and read them back")
    demo.set_defaults(handler=run_demo)
    psql = commands.add_parser("psql", help="open psql on the Brain's database")
    psql.set_defaults(handler=run_psql)


def run_demo(args: argparse.Namespace) -> int:
    with BrainLibrary() as brain:
        print(f"Brain store: {brain.target} ({brain.origin}), schema v{brain.schema_version()}")
        symbol = "BTC/USDT"
        model_id = brain.register_model(
            symbol,
            "ridge",
            b"demo artifact",
            metrics={"sharpe_ratio": 1.2, "rmse": 0.011, "composite_score": 0.31},
            hyperparameters={"alpha": 1.0},
            feature_names=["ret_1", "rsi_14", "vol_24"],
            activate=True,
        )
        print(f"registered {symbol} model {model_id}")
        brain.store_feature_importance(
            symbol, model_id, "shap", {"ret_1": 0.4, "rsi_14": 0.25, "vol_24": -0.1}
        )
        brain.log_data_quality(symbol, "ohlcv_schema", "ERROR", True)
        print("read back:")
        best = brain.get_best_model(symbol)
        assert best is not None
        print(
            f"  best model: v{best['version']} {best['model_type']}, "
            f"score {best['composite_score']}"
        )
        print(f"  metrics:    {brain.get_model_metrics(model_id, symbol)}")
        print(brain.get_top_features(symbol, top_n=5).to_string(index=False))
        print(brain.get_data_quality_summary().to_string(index=False))
    return 0


def run_psql(args: argparse.Namespace) -> int:
    from brain_assets.settings import brain_home, configured_dsn
    from brain_assets.store.embedded import start_embedded

    dsn = configured_dsn()
    if dsn is not None:
        os.execvp("psql", ["psql", dsn])
    server = start_embedded(brain_home() / "pgdata")
    dsn = server.ensure_database("brain")
    psql = str(server.bin_dir / "psql")
    os.execv(psql, [psql, dsn])
    return 0
