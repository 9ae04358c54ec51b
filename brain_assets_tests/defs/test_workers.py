"""How many symbols run side by side: a setting that defaults to the cores available."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from brain_assets.cli.instance import prepare_dagster_environment
from brain_assets.environment import WORKERS_ENV, available_cores, worker_count


def test_the_default_is_every_core_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert worker_count() == available_cores() == len(os.sched_getaffinity(0))


def test_the_environment_and_an_explicit_count_override_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert worker_count() == 3
    assert worker_count(5) == 5


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_a_bad_environment_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv(WORKERS_ENV, raw)
    with pytest.raises(ValueError, match=WORKERS_ENV):
        worker_count()


def test_brain_dev_sizes_the_run_queue_from_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_DSN", raising=False)
    monkeypatch.setenv("BRAIN_HOME", str(tmp_path))
    # Set here so that the test undoes what the call writes into the environment.
    for name in ("DAGSTER_HOME", "DAGSTER_PG_URL", "BRAIN_MAX_CONCURRENT_RUNS"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv(WORKERS_ENV, "3")
    env = prepare_dagster_environment()
    assert env["BRAIN_MAX_CONCURRENT_RUNS"] == os.environ["BRAIN_MAX_CONCURRENT_RUNS"] == "3"
