"""Where the steps of a run execute, chosen by the deployment with ``BRAIN_EXECUTOR``.

Unset (or ``in_process``): every step in the run worker's own process. A run here is one
symbol's retrain, whose steps take seconds each; a process per step would re-import the code
location (about 5 s) eight times per run, which measured 2.7 times slower for a 16-symbol
backfill. ``multiprocess``: Dagster's default, every step in a process beside the run worker
(isolation per step, at that cost). ``celery``: dagster-celery's
``celery_executor``, each step sent to a broker and executed by whichever Celery worker takes it
(deploy/celery/). The broker and result backend come from ``DAGSTER_CELERY_BROKER_URL`` and
``DAGSTER_CELERY_BACKEND_URL``, read when a run starts, so no URL or password is in the code
location; the block is the one in deploy/celery/worker.yaml, which the workers start with.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

EXECUTOR_ENV = "BRAIN_EXECUTOR"
DEFAULT_EXECUTOR = "in_process"

CELERY_CONFIG: dict[str, Any] = {
    "broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
    "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"},
    "include": ["brain_assets.definitions"],
    "config_source": {
        # One task at a time per worker process, acknowledged when done: a long training step
        # neither hoards queued tasks nor is lost if its worker dies.
        "worker_prefetch_multiplier": 1,
        "task_acks_late": True,
    },
}
"""The ``celery_executor`` config, the same block as ``execution: config:`` of worker.yaml."""


def executor_from_env() -> dg.ExecutorDefinition:
    """The executor ``BRAIN_EXECUTOR`` names (``in_process`` when unset)."""
    choice = os.environ.get(EXECUTOR_ENV, "").strip().lower() or DEFAULT_EXECUTOR
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "multiprocess":
        return dg.multiprocess_executor
    if choice == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError as exc:
            raise ImportError(
                f"{EXECUTOR_ENV}=celery needs dagster-celery, at the release that matches "
                'Dagster 1.13: pip install "dagster-celery[redis]==0.29.*"'
            ) from exc
        return celery_executor.configured(CELERY_CONFIG, name="celery")
    raise ValueError(f"{EXECUTOR_ENV}={choice!r}: expected in_process, multiprocess or celery")
