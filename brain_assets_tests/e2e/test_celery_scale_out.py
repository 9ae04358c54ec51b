"""Scale-out exercised: the deploy/celery layout on one machine, as an operator starts it.

A real Redis broker (Debian's ``redis-server``, no persistence), the Brain and the Dagster
instance in one PostgreSQL (the embedded server, reached through ``DATABASE_DSN`` and
``DAGSTER_PG_URL`` as a shared server would be), a gRPC code server with
``BRAIN_EXECUTOR=celery``, ``dagster-webserver`` and ``dagster-daemon`` on
deploy/celery/workspace.yaml and deploy/celery/dagster.yaml, and two
``dagster-celery worker start -y deploy/celery/worker.yaml`` workers of one process each. The
4-symbol daily retrain is launched through the GraphQL API as the UI launches it (one run per
symbol); the daemon dequeues the runs and each run worker sends its steps to the broker.

Checked: every run succeeds, both workers executed steps (Dagster's own "Executing steps ... in
celery worker" events name the worker, and each worker's log shows its tasks succeeding), every
step of every run went through a worker, and every symbol has registered versions in the Brain.
Everything started here is stopped at the end and no process is left behind.

Without ``redis-server`` or dagster-celery the test is skipped, unless ``BRAIN_REQUIRE_CELERY``
is set (CI sets it): then it fails. bench/celery_scale_out.py runs the same cluster with one and
with two workers and reports the speed-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brain_assets_tests.celery_cluster import (
    DEPLOY,
    REQUIRE_ENV,
    RETRAIN_STEPS,
    SYMBOLS,
    CeleryCluster,
    celery_unavailable,
)


def require_celery() -> None:
    reason = celery_unavailable()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV, "").strip():
        pytest.fail(f"{REQUIRE_ENV} is set but the Celery layout {reason}")
    pytest.skip(f"the Celery layout {reason}; set {REQUIRE_ENV}=1 to fail instead")


@pytest.mark.slow
def test_code_location_executor_matches_the_worker_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BRAIN_EXECUTOR=celery gives the job the celery executor with the block the workers start
    with (worker.yaml), so runs and workers meet at the same broker."""
    require_celery()
    from brain_assets.defs.executor import CELERY_CONFIG, executor_from_env

    worker = yaml.safe_load((DEPLOY / "worker.yaml").read_text(encoding="utf-8"))
    assert worker["execution"]["config"] == CELERY_CONFIG
    monkeypatch.setenv("BRAIN_EXECUTOR", "celery")
    executor = executor_from_env()
    assert executor is not None and executor.name == "celery"
    monkeypatch.delenv("BRAIN_EXECUTOR")
    default = executor_from_env()
    assert default is None or default.name != "celery"

    # The code location itself: what the code server loads with and without the variable.
    probe = (
        "from brain_assets.definitions import defs; "
        "print(defs.resolve_job_def('daily_retrain').executor_def.name)"
    )
    names = {}
    for value in ("celery", ""):
        env = {**os.environ, "BRAIN_EXECUTOR": value}
        loaded = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
        )
        assert loaded.returncode == 0, loaded.stderr
        names[value] = loaded.stdout.strip()
    # Unset, the job keeps the code location's own default (whatever it is), not Celery.
    assert names["celery"] == "celery" and names[""] != "celery", (
        f"brain_assets/definitions.py should take its executor from executor_from_env(): {names}"
    )


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_retrain_runs_on_two_celery_workers(tmp_path: Path) -> None:
    require_celery()
    from brain_assets.library import BrainLibrary

    cluster = CeleryCluster(tmp_path, workers=2)
    with cluster:
        outcome = cluster.retrain()
        with BrainLibrary(cluster.env["DATABASE_DSN"]) as brain:
            versions = {symbol: brain.list_models(symbol) for symbol in SYMBOLS}
    assert cluster.leftovers == [], f"left running: {cluster.leftovers}"

    failed = {s: r for s, r in outcome.runs.items() if r["status"] != "SUCCESS"}
    assert not failed, failed
    assert outcome.steps_by_worker, "no step went through a Celery worker"
    # Both workers executed steps, by Dagster's record and by their own logs.
    hosts = sorted(outcome.steps_by_worker)
    assert [host.split("@")[0] for host in hosts] == cluster.worker_names, hosts
    assert all(count > 0 for count in outcome.tasks_succeeded.values()), outcome.tasks_succeeded
    # Every step of every run went through a Celery worker, once.
    executed = sorted(step for steps in outcome.steps_by_worker.values() for step in steps)
    assert executed == sorted(f"{s}:{step}" for s in SYMBOLS for step in RETRAIN_STEPS)
    assert sum(outcome.tasks_succeeded.values()) == len(executed)
    # Every symbol got its versions, registered by steps that ran on the workers.
    for symbol, models in versions.items():
        assert len(models) > 0, symbol
        assert (models["symbol"] == symbol).all()
        assert sorted(models["version"]) == list(range(1, len(models) + 1)), models["version"]
