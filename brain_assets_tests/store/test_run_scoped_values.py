"""Asset values per run: a run reads what it wrote or what a succeeded run published, never the
values of another run still going (issue 11).

No ``from __future__ import annotations`` here: Dagster inspects the assets' annotations (config,
context) at definition time and cannot resolve them from strings.
"""

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import psycopg
import pytest

from brain_assets.defs.io_manager import BrainIOManager
from brain_assets.defs.maintenance.publish import publish_run_values
from brain_assets.defs.resources import BrainResource
from brain_assets.library import BrainLibrary
from brain_assets.store.migrations import SQL_DIR, apply_migrations
from brain_assets_tests.conftest import count_rows

SYMBOL = "BTC/USDT"
OTHER = "ETH/USDT"


def value_of(brain: BrainLibrary, run_id: str | None = None, key: str = SYMBOL) -> Any:
    return brain.get_asset_values("features", [key], run_id=run_id)[key]


def rows(dsn: str) -> list[tuple[str, str, bool]]:
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            "SELECT partition_key, run_id, published FROM asset_values ORDER BY 1, 2"
        ).fetchall()
    return [(key, run, published) for key, run, published in found]


# --- the store -----------------------------------------------------------------------------


def test_a_run_reads_its_own_value_before_the_published_one(brain: BrainLibrary) -> None:
    brain.put_asset_values("features", {SYMBOL: "published"})
    brain.put_asset_values("features", {SYMBOL: "mine"}, run_id="run-a")
    assert value_of(brain, "run-a") == "mine"
    assert value_of(brain, "run-b") == "published"
    assert value_of(brain) == "published"


def test_another_live_runs_value_is_never_read(brain: BrainLibrary) -> None:
    brain.put_asset_values("features", {SYMBOL: "a"}, run_id="run-a")
    for reader in ("run-b", None):
        with pytest.raises(LookupError, match=r"'features'.*\['BTC/USDT'\]"):
            value_of(brain, reader)
    brain.put_asset_values("features", {SYMBOL: "published"})
    assert value_of(brain, "run-b") == "published"
    # A later write of the live run changes nothing for the others either.
    brain.put_asset_values("features", {SYMBOL: "a2"}, run_id="run-a")
    assert value_of(brain, "run-b") == "published"
    assert value_of(brain, "run-a") == "a2"


def test_two_runs_write_the_same_partition_without_overwriting(brain: BrainLibrary) -> None:
    brain.put_asset_values("features", {SYMBOL: "a", OTHER: "a-eth"}, run_id="run-a")
    brain.put_asset_values("features", {SYMBOL: "b"}, run_id="run-b")
    assert value_of(brain, "run-a") == "a"
    assert value_of(brain, "run-b") == "b"
    # Per partition: run-b's own value for BTC, nothing of run-a's for ETH.
    with pytest.raises(LookupError, match=r"\['ETH/USDT'\]"):
        brain.get_asset_values("features", [SYMBOL, OTHER], run_id="run-b")


def test_publishing_makes_a_runs_values_the_ones_others_read(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    brain.put_asset_values("features", {SYMBOL: "old", OTHER: "old-eth"})
    brain.put_asset_values("features", {SYMBOL: "a"}, run_id="run-a")
    assert brain.unpublished_runs("features", [SYMBOL, OTHER]) == ["run-a"]
    assert brain.publish_run("run-a") == 1
    assert value_of(brain) == "a"
    assert value_of(brain, "run-b") == "a"
    assert value_of(brain, key=OTHER) == "old-eth"  # partitions the run did not write stay
    assert brain.unpublished_runs("features", [SYMBOL]) == []
    assert brain.publish_run("run-a") == 0  # twice (sensor and a read) is harmless
    # One value per partition is kept: the superseded published value is gone.
    assert rows(brain_dsn) == [(SYMBOL, "run-a", True), (OTHER, "", True)]


def test_the_latest_written_value_wins_whatever_the_order_of_publication(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    brain.put_asset_values("features", {SYMBOL: "early"}, run_id="run-early")
    brain.put_asset_values("features", {SYMBOL: "late"}, run_id="run-late")
    brain.publish_run("run-late")
    assert value_of(brain) == "late"
    # The run that wrote earlier succeeds later: its value is superseded, not published.
    assert brain.publish_run("run-early") == 0
    assert value_of(brain) == "late"
    assert rows(brain_dsn) == [(SYMBOL, "run-late", True)]


def test_publishing_leaves_other_runs_own_values_alone(brain: BrainLibrary) -> None:
    brain.put_asset_values("features", {SYMBOL: "a"}, run_id="run-a")
    brain.put_asset_values("features", {SYMBOL: "b"}, run_id="run-b")
    brain.publish_run("run-b")
    assert value_of(brain, "run-a") == "a"  # still going: it keeps reading its own value
    assert value_of(brain, "run-c") == "b"


def test_discarding_a_failed_run_removes_only_its_unpublished_values(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    brain.put_asset_values("features", {SYMBOL: "published"})
    brain.put_asset_values("features", {SYMBOL: "a", OTHER: "a-eth"}, run_id="run-a")
    brain.put_asset_values("features", {SYMBOL: "b"}, run_id="run-b")
    assert brain.discard_run("run-a") == 2
    assert brain.discard_run("run-a") == 0
    assert value_of(brain, "run-a") == "published"
    assert value_of(brain, "run-b") == "b"
    brain.publish_run("run-b")
    assert brain.discard_run("run-b") == 0  # published values are never discarded
    assert value_of(brain) == "b"
    assert count_rows(brain_dsn, "asset_values") == 1


def test_writes_outside_a_run_are_published_at_once(brain: BrainLibrary, brain_dsn: str) -> None:
    frame = pd.DataFrame({"close": [1.0, 2.0]})
    assert brain.put_asset_values("market_data", {SYMBOL: frame}) == 1
    pd.testing.assert_frame_equal(brain.get_asset_values("market_data", [SYMBOL])[SYMBOL], frame)
    brain.put_asset_values("features", {SYMBOL: 1})
    brain.put_asset_values("features", {SYMBOL: 2})
    assert value_of(brain) == value_of(brain, "any-run") == 2
    assert brain.unpublished_runs("features", [SYMBOL]) == []
    assert count_rows(brain_dsn, "asset_values") == 2


def test_a_missing_partition_is_an_error_naming_the_asset_and_partitions(
    brain: BrainLibrary,
) -> None:
    brain.put_asset_values("features", {SYMBOL: 1})
    with pytest.raises(LookupError) as error:
        brain.get_asset_values("features", [SYMBOL, "SOL/USDT", "XRP/USDT"], run_id="run-a")
    message = str(error.value)
    assert "'features'" in message and "['SOL/USDT', 'XRP/USDT']" in message
    assert SYMBOL not in message.replace("'SOL/USDT', 'XRP/USDT'", "")


@pytest.mark.parametrize("run_id", ["", " run", "run\n"])
def test_bad_run_ids_are_refused_before_any_write(
    brain: BrainLibrary, brain_dsn: str, run_id: str
) -> None:
    with pytest.raises(ValueError, match="run_id"):
        brain.put_asset_values("features", {SYMBOL: 1}, run_id=run_id)
    with pytest.raises(ValueError, match="run_id"):
        brain.publish_run(run_id)
    assert count_rows(brain_dsn, "asset_values") == 0


def test_pruning_deletes_only_old_unpublished_values(brain: BrainLibrary, brain_dsn: str) -> None:
    brain.put_asset_values("features", {SYMBOL: "published"})
    brain.put_asset_values("features", {SYMBOL: "stale"}, run_id="run-old")
    brain.put_asset_values("features", {OTHER: "fresh"}, run_id="run-new")
    with psycopg.connect(brain_dsn) as conn:
        conn.execute(
            "UPDATE asset_values SET written_at = written_at - interval '30 days'"
            " WHERE run_id = 'run-old'"
        )
    assert brain.prune_unpublished_values(timedelta(days=7)) == 1
    assert rows(brain_dsn) == [(SYMBOL, "", True), (OTHER, "run-new", False)]
    with pytest.raises(ValueError, match="older_than"):
        brain.prune_unpublished_values(timedelta(0))


def test_stored_values_become_published_values_of_their_run(empty_dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    for path in sorted(SQL_DIR.glob("*.sql")):
        if int(path.name[:3]) < 6:
            shutil.copy(path, folder / path.name)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        apply_migrations(conn, folder)
        conn.execute(
            """INSERT INTO asset_values (asset_key, partition_key, format, value, run_id)
               VALUES ('features', 'BTC/USDT', 'json', '"from-run"', 'run-1'),
                      ('features', 'ETH/USDT', 'json', '"no-run"', NULL)"""
        )
        assert apply_migrations(conn)[0] == 6
    with BrainLibrary(empty_dsn) as brain:
        assert brain.get_asset_values("features", [SYMBOL, OTHER]) == {
            SYMBOL: "from-run",
            OTHER: "no-run",
        }
        brain.put_asset_values("features", {SYMBOL: "next"}, run_id="run-2")
        assert value_of(brain) == "from-run"
        brain.publish_run("run-2")
        assert value_of(brain) == "next"
    assert rows(empty_dsn) == [(SYMBOL, "run-2", True), (OTHER, "", True)]


# --- through Dagster -----------------------------------------------------------------------

seen: dict[str, Any] = {}


class SourceConfig(dg.Config):
    value: str = "a"


@dg.asset(name="source", io_manager_key="brain_io_manager")
def written_source(config: SourceConfig) -> dict[str, str]:
    return {"": config.value}


@dg.asset(io_manager_key="brain_io_manager")
def sink(source: dict[str, str]) -> dict[str, str]:
    return {"": source[""]}


@dg.asset(io_manager_key="brain_io_manager", deps=[written_source])
def probe(context: dg.AssetExecutionContext, source: dict[str, str]) -> dict[str, str]:
    """Runs while its own run is still going: reads the run's own value, then starts a second
    run that reads the same asset."""
    seen["own"] = source[""]
    other = dg.materialize(
        [written_source, sink],
        selection=[sink],
        instance=context.instance,
        resources=seen["resources"],
    )
    seen["other_run"] = other.output_for_node("sink")[""]
    if seen.get("fail"):
        raise RuntimeError("this run fails after writing source")
    return {"": source[""]}


def io_resources(dsn: str) -> dict[str, Any]:
    brain = BrainResource(dsn=dsn)
    return {"brain": brain, "brain_io_manager": BrainIOManager(brain=brain)}


def read_source(instance: dg.DagsterInstance, dsn: str) -> str:
    result = dg.materialize(
        [written_source, sink], selection=[sink], instance=instance, resources=io_resources(dsn)
    )
    assert result.success
    return str(result.output_for_node("sink")[""])


def run_writer(
    instance: dg.DagsterInstance, dsn: str, value: str, *, fail: bool = False
) -> dg.ExecuteInProcessResult:
    seen.clear()
    seen.update(resources=io_resources(dsn), fail=fail)
    return dg.materialize(
        [written_source, probe],
        instance=instance,
        resources=io_resources(dsn),
        run_config=dg.RunConfig(ops={"source": SourceConfig(value=value)}),
        raise_on_error=False,
    )


def test_a_run_never_reads_the_value_of_a_run_still_going(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    brain.put_asset_values("source", {"": "published"})
    instance = dg.DagsterInstance.ephemeral()
    first = run_writer(instance, brain_dsn, "from-a")
    assert first.success
    assert seen["own"] == "from-a"  # a later step of the run reads the run's own value
    assert seen["other_run"] == "published"  # a run started meanwhile does not
    # Without the daemon nothing published run A yet; the next run's read does, since Dagster
    # reports that A succeeded.
    assert brain.unpublished_runs("source", [""]) == [first.run_id]
    assert read_source(instance, brain_dsn) == "from-a"
    assert brain.get_asset_values("source", [""]) == {"": "from-a"}

    failed = run_writer(instance, brain_dsn, "from-failed", fail=True)
    assert not failed.success
    assert seen["own"] == "from-failed"
    assert read_source(instance, brain_dsn) == "from-a"  # a failed run is never published
    assert brain.get_asset_values("source", [""], run_id=failed.run_id) == {"": "from-failed"}


def test_the_io_manager_keeps_each_runs_values_apart(brain: BrainLibrary, brain_dsn: str) -> None:
    manager = BrainIOManager(brain=BrainResource(dsn=brain_dsn))
    key = dg.AssetKey("features")
    partitions = dg.StaticPartitionsDefinition([SYMBOL, OTHER])

    def write(run_id: str, value: str) -> None:
        context = dg.build_output_context(
            asset_key=key, partition_key=SYMBOL, run_id=run_id, asset_partitions_def=partitions
        )
        manager.handle_output(context, {SYMBOL: value})

    def read(run_id: str) -> str:
        upstream = dg.build_output_context(asset_key=key, run_id=run_id)
        context = dg.build_input_context(
            asset_key=key,
            partition_key=SYMBOL,
            asset_partitions_def=partitions,
            upstream_output=upstream,
        )
        return str(manager.load_input(context)[SYMBOL])

    brain.put_asset_values("features", {SYMBOL: "published"})
    try:
        write("run-a", "a")
        write("run-b", "b")
        assert read("run-a") == "a"
        assert read("run-b") == "b"
        assert read("run-c") == "published"
        brain.publish_run("run-b")
        assert read("run-a") == "a"  # a re-execution of run-a reads its parent's values
        assert read("run-c") == "b"
    finally:
        manager.brain.library.close()


def test_the_sensor_publishes_a_run_that_succeeded(brain: BrainLibrary, brain_dsn: str) -> None:
    brain.put_asset_values("features", {SYMBOL: "a"}, run_id="run-a")
    instance = dg.DagsterInstance.ephemeral()
    run = dg.DagsterRun(
        job_name="daily_retrain", run_id="run-a", status=dg.DagsterRunStatus.SUCCESS
    )
    event = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name="daily_retrain"
    )
    with dg.build_run_status_sensor_context(
        sensor_name="publish_run_values",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=event,
        resources={"brain": BrainResource(dsn=brain_dsn)},
    ) as context:
        publish_run_values(context)
    assert value_of(brain) == "a"
