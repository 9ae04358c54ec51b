"""`brain dev` as a user runs it: the UI server and daemon on the Brain's PostgreSQL, one symbol
partition materialised through the GraphQL API exactly as the UI launches it, then SIGTERM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from brain_assets.defs.run_launcher import FORKED
from brain_assets.library import BrainLibrary
from brain_assets_tests.dev_server import graphql, running_brain_dev, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SYMBOL = "BTC/USDT"
ASSETS = [
    "market_data",
    "volatility_regime",
    "features",
    "trained_models",
    "model_evaluation",
    "registry_entries",
    "feature_importance",
]
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN_STATUS = """query Status($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"""
RUN_LOGS = """query Logs($id: ID!) { logsForRun(runId: $id) {
  ... on EventConnection { events { ... on MessageEvent { message } } } } }"""


def test_brain_dev_materialises_one_partition_from_the_api(tmp_path: Path) -> None:
    with running_brain_dev(tmp_path, [SYMBOL]) as port:
        entries = wait_for(
            lambda: graphql(port, LOCATIONS)["workspaceOrError"].get("locationEntries"),
            60,
            "the code location",
        )
        params = {
            "selector": {
                "repositoryLocationName": entries[0]["name"],
                "repositoryName": "__repository__",
                "pipelineName": "__ASSET_JOB",
                "assetSelection": [{"path": [name]} for name in ASSETS],
            },
            "mode": "default",
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": SYMBOL}]},
        }
        launched = graphql(port, LAUNCH, {"params": params})["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        def finished() -> str | None:
            status = graphql(port, RUN_STATUS, {"id": run_id})["runOrError"]["status"]
            return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

        assert wait_for(finished, 300, "the run") == "SUCCESS"
        # The worker was forked from the warm forkserver, not spawned by the code server.
        events = graphql(port, RUN_LOGS, {"id": run_id})["logsForRun"]["events"]
        assert any(FORKED in (event.get("message") or "") for event in events), events

    env_home = tmp_path / "home"
    os.environ["BRAIN_HOME"], saved = str(env_home), os.environ.get("BRAIN_HOME")
    try:
        with BrainLibrary() as store:
            versions = store.list_models(SYMBOL)
            status = store.trading_status(SYMBOL)
            top = store.get_top_features(SYMBOL, top_n=3)
            quality = store.get_data_quality_summary(symbol=SYMBOL)
    finally:
        if saved is not None:
            os.environ["BRAIN_HOME"] = saved
    # The run registered every model type; whether one trades is the activation floor's call
    # on these synthetic bars, and either answer must be stated.
    assert len(versions) >= 3
    assert status.reason
    if status.active is not None:
        assert status.active.model_id in set(versions["model_id"])
    assert len(top) == 3
    assert {"ohlcv_valid", "features_valid"} <= set(quality["check_name"])
