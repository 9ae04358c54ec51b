"""Retention: old rows move to the archive tables in one transaction; active models keep theirs."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg.rows import dict_row

from brain_assets.defs.maintenance import maintenance_job, maintenance_schedule
from brain_assets.defs.resources import BrainResource
from brain_assets.errors import BrainError
from brain_assets.library import BrainLibrary
from brain_assets.store import connection
from brain_assets.store.maintenance import (
    RETAINED_TABLES,
    ArchiveSchemaError,
    analyze,
    archive_old_rows,
    archived_counts,
    prune_alert_outbox,
)
from brain_assets_tests.conftest import count_rows

SYMBOL = "BTC/USDT"
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=10)
TABLES = [name for spec in RETAINED_TABLES for name in (spec.table, spec.archive)]


def populate(brain: BrainLibrary) -> dict[str, str]:
    """An active and a retired model, each with old and recent metrics and importance, plus
    old and recent quality logs of two symbols."""
    active = brain.register_model(SYMBOL, "ridge", b"active", metrics={"rmse": 0.1}, activate=True)
    retired = brain.register_model(SYMBOL, "lasso", b"retired", metrics={"rmse": 0.2})
    for model_id in (active, retired):
        for when in (OLD, RECENT):
            brain.store_model_metrics(model_id, SYMBOL, {"sharpe_ratio": 1.0, "rmse": 0.3}, when)
            brain.store_model_metrics(
                model_id, SYMBOL, {"sharpe_ratio": 0.5}, when, regime="high", periods_per_year=8760
            )
            brain.store_feature_importance(
                SYMBOL, model_id, "shap", {"ret_1": 0.4, "rsi_14": -0.2, "vol": 0.1}, when
            )
    for symbol in (SYMBOL, "ETH/USDT"):
        for when in (OLD, OLD - timedelta(days=30), RECENT):
            brain.log_data_quality(
                symbol, "no_gaps", "ERROR", False, 3, {"gaps": [1, 2]}, timestamp=when
            )
    for model_id in (active, retired):
        for when in (OLD, RECENT):
            brain.record_input_drift(
                SYMBOL,
                model_id,
                {"ret_1": 0.01, "vol_24": 0.4},
                window_start=when - timedelta(days=14),
                window_end=when,
                bars=336,
                threshold=0.25,
            )
    # A check is dated by the database's clock: the old ones are moved back by hand.
    with brain.transaction() as conn:
        conn.execute(
            "UPDATE input_drift SET checked_at = window_end WHERE window_end < %s", (RECENT,)
        )
    return {"active": active, "retired": retired}


def rows(dsn: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def snapshot(dsn: str) -> dict[str, list[dict[str, Any]]]:
    return {table: rows(dsn, f"SELECT * FROM {table} ORDER BY id") for table in TABLES}


def test_old_rows_move_and_nothing_is_lost(brain: BrainLibrary, brain_dsn: str) -> None:
    models = populate(brain)
    before = snapshot(brain_dsn)

    moved = archive_old_rows(brain, retention_days=365)

    # Only the retired model's old rows: 3 metric rows and 3 importance rows of one date.
    assert moved == {
        "model_metrics": 3,
        "feature_importance": 3,
        "data_quality_logs": 4,
        "input_drift": 1,
    }
    assert archived_counts(brain) == moved
    after = snapshot(brain_dsn)
    for spec in RETAINED_TABLES:
        live, archive = after[spec.table], after[spec.archive]
        assert len(live) + len(archive) == len(before[spec.table]), spec.table
        # Archived rows keep their ids and every value; the two sets split the original rows.
        originals = {row["id"]: row for row in before[spec.table]}
        for row in archive:
            archived_at = row.pop("archived_at")
            assert isinstance(archived_at, datetime)
            assert row == originals[row["id"]]
            assert row[spec.time_column] < NOW - timedelta(days=365)
        assert {row["id"] for row in live} | {row["id"] for row in archive} == set(originals)
        if not spec.per_model:
            assert all(row[spec.time_column] >= NOW - timedelta(days=365) for row in live)
    for table in ("model_metrics", "feature_importance", "input_drift"):
        assert {row["model_id"] for row in after[f"{table}_archive"]} == {models["retired"]}

    # The retired model's recent history and registration metrics stay live.
    assert brain.get_model_metrics(models["retired"], SYMBOL)["sharpe_ratio"] == 1.0
    assert archive_old_rows(brain, retention_days=365) == dict.fromkeys(moved, 0)


def test_active_model_rows_are_never_archived(brain: BrainLibrary, brain_dsn: str) -> None:
    models = populate(brain)
    total = {
        table: count_rows(brain_dsn, table) for table in ("model_metrics", "feature_importance")
    }

    # A one-day window: everything but today's rows is old, yet the active model keeps all.
    moved = archive_old_rows(brain, retention_days=1)

    for table in ("model_metrics", "feature_importance"):
        left = rows(brain_dsn, f"SELECT model_id, count(*) AS n FROM {table} GROUP BY 1")
        kept = {row["model_id"]: row["n"] for row in left}
        archived = rows(brain_dsn, f"SELECT DISTINCT model_id FROM {table}_archive")
        assert [row["model_id"] for row in archived] == [models["retired"]], table
        assert (
            kept[models["active"]] + kept.get(models["retired"], 0) + moved[table] == (total[table])
        )
    assert rows(
        brain_dsn,
        "SELECT count(*) AS n FROM model_metrics WHERE model_id = %s AND evaluation_date < %s",
        models["active"],
        OLD + timedelta(days=1),
    ) == [{"n": 3}]

    # Once it is retired, its old rows go too.
    brain.activate_model(models["retired"])
    again = archive_old_rows(brain, retention_days=365)
    assert again["model_metrics"] == 3 and again["feature_importance"] == 3


def test_error_in_the_third_move_leaves_every_table_unchanged(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    populate(brain)
    before = snapshot(brain_dsn)
    with psycopg.connect(brain_dsn, autocommit=True) as conn:
        # Fails inside PostgreSQL once metrics and importance have already been moved.
        conn.execute(
            """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'archive disk full'; END $$;
               CREATE TRIGGER refuse BEFORE INSERT ON data_quality_logs_archive
               FOR EACH ROW EXECUTE FUNCTION refuse()"""
        )
    with pytest.raises(psycopg.errors.RaiseException, match="archive disk full"):
        archive_old_rows(brain, retention_days=365)
    assert snapshot(brain_dsn) == before


def test_missing_archive_table_fails_before_committing_anything(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    populate(brain)
    with psycopg.connect(brain_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE data_quality_logs_archive")
    before = {table: count_rows(brain_dsn, table) for table in TABLES if "quality" not in table}
    with pytest.raises(ArchiveSchemaError, match="data_quality_logs_archive does not exist"):
        archive_old_rows(brain, retention_days=365)
    assert {table: count_rows(brain_dsn, table) for table in before} == before


def test_live_column_missing_from_the_archive_is_refused(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    populate(brain)
    with psycopg.connect(brain_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE feature_importance ADD COLUMN sample_size integer")
    before = snapshot(brain_dsn)
    with pytest.raises(
        ArchiveSchemaError, match="lacks columns of feature_importance: sample_size"
    ):
        archive_old_rows(brain, retention_days=365)
    assert snapshot(brain_dsn) == before


@pytest.mark.parametrize("bad", [0, -5, 1.5, "30", True, None, 10**9])
def test_bad_retention_days_is_refused_before_anything_moves(
    brain: BrainLibrary, brain_dsn: str, bad: object
) -> None:
    populate(brain)
    before = snapshot(brain_dsn)
    with pytest.raises(ValueError, match="retention_days"):
        archive_old_rows(brain, retention_days=bad)  # type: ignore[arg-type]
    assert snapshot(brain_dsn) == before


def test_now_sets_the_end_of_the_window(brain: BrainLibrary) -> None:
    populate(brain)
    # Seen from 401 days ago, nothing is a year old yet.
    earlier = archive_old_rows(brain, retention_days=365, now=NOW - timedelta(days=401))
    assert earlier == {
        "model_metrics": 0,
        "feature_importance": 0,
        "data_quality_logs": 0,
        "input_drift": 0,
    }
    with pytest.raises(ValueError, match="now"):
        archive_old_rows(brain, now="yesterday")  # type: ignore[arg-type]


def test_completion_is_logged_with_the_counts(
    brain: BrainLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    populate(brain)
    with caplog.at_level(logging.INFO, logger="brain_assets"):
        archive_old_rows(brain, retention_days=365)
    events = [r for r in caplog.records if getattr(r, "event", None) == "maintenance_completed"]
    assert len(events) == 1
    fields = events[0].fields  # type: ignore[attr-defined]
    assert fields["retention_days"] == 365
    assert fields["archived_data_quality_logs"] == 4


def test_maintenance_job_runs_in_process(brain: BrainLibrary, brain_dsn: str) -> None:
    populate(brain)
    resources = {"brain": BrainResource(dsn=brain_dsn)}
    # A value a failed run left behind a month ago, and one of a run still going.
    brain.put_asset_values("features", {"BTC/USDT": {"x": 1}}, run_id="failed-run")
    brain.put_asset_values("features", {"BTC/USDT": {"x": 2}}, run_id="live-run")
    with psycopg.connect(brain_dsn) as conn:
        conn.execute(
            "UPDATE asset_values SET written_at = written_at - interval '30 days'"
            " WHERE run_id = 'failed-run'"
        )
    # An alert delivered 600 days ago, and one pending as long.
    delivered, pending = (brain.enqueue_alert("rollback", {"n": n}) for n in (1, 2))
    brain.mark_alert_delivered(delivered)
    age_alerts(brain_dsn, [delivered, pending], days=600)

    result = maintenance_job.execute_in_process(
        resources=resources,
        run_config={"ops": {"archive_old_rows": {"config": {"retention_days": 500}}}},
    )
    assert result.success
    assert result.output_for_node("archive_old_rows") == {
        "model_metrics": 0,
        "feature_importance": 0,
        "data_quality_logs": 0,
        "input_drift": 0,
        "asset_values_pruned": 1,
        "alert_outbox_pruned": 1,
    }
    assert alert_ids(brain_dsn) == [pending]
    assert brain.get_asset_values("features", ["BTC/USDT"], run_id="live-run") == {
        "BTC/USDT": {"x": 2}
    }

    # The default window is a year.
    result = maintenance_job.execute_in_process(resources=resources)
    assert result.success
    assert result.output_for_node("archive_old_rows")["data_quality_logs"] == 4
    assert archived_counts(brain)["model_metrics"] == 3

    failed = maintenance_job.execute_in_process(
        resources=resources,
        run_config={"ops": {"archive_old_rows": {"config": {"retention_days": 0}}}},
        raise_on_error=False,
    )
    assert not failed.success


def age_alerts(dsn: str, ids: list[int], *, days: int) -> None:
    """Move the alerts' every timestamp ``days`` into the past."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """UPDATE alert_outbox
               SET created_at = created_at - make_interval(days => %(days)s),
                   next_attempt_at = next_attempt_at - make_interval(days => %(days)s),
                   delivered_at = delivered_at - make_interval(days => %(days)s),
                   gave_up_at = gave_up_at - make_interval(days => %(days)s)
               WHERE id = ANY(%(ids)s)""",
            {"days": days, "ids": ids},
        )


def alert_ids(dsn: str) -> list[int]:
    return [row["id"] for row in rows(dsn, "SELECT id FROM alert_outbox ORDER BY id")]


def test_settled_alerts_past_the_window_are_pruned_and_pending_ones_never(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    names = (
        "old_delivered",
        "old_given_up",
        "old_pending",
        "recent_delivered",
        "recent_given_up",
        "old_given_up_recently",
    )
    alert = {name: brain.enqueue_alert("rollback", {"name": name}, symbol=SYMBOL) for name in names}
    for name in ("old_delivered", "recent_delivered"):
        brain.mark_alert_delivered(alert[name])
    for name in ("old_given_up", "recent_given_up"):
        brain.mark_alert_failed(alert[name], "HTTP 410 Gone", retry_in_s=None)
    age_alerts(brain_dsn, [alert[n] for n in names if n.startswith("old")], days=400)
    # Created 400 days ago, retried until 10 days ago: its age counts from the giving up.
    brain.mark_alert_failed(alert["old_given_up_recently"], "timeout", retry_in_s=None)
    with psycopg.connect(brain_dsn) as conn:
        conn.execute(
            "UPDATE alert_outbox SET gave_up_at = gave_up_at - interval '10 days' WHERE id = %s",
            (alert["old_given_up_recently"],),
        )
    before = {row["id"]: row for row in rows(brain_dsn, "SELECT * FROM alert_outbox")}

    assert prune_alert_outbox(brain, retention_days=365) == 2

    kept = ("old_pending", "recent_delivered", "recent_given_up", "old_given_up_recently")
    assert alert_ids(brain_dsn) == sorted(alert[name] for name in kept)
    # What stays is untouched, the pending alert still due for delivery.
    after = {row["id"]: row for row in rows(brain_dsn, "SELECT * FROM alert_outbox")}
    assert after == {alert[n]: before[alert[n]] for n in kept}
    assert brain.get_alerts(pending_only=True)[0]["id"] == alert["old_pending"]
    assert prune_alert_outbox(brain, retention_days=365) == 0
    # A shorter window (seen from 20 days ahead) takes the recent settled ones too.
    later = NOW + timedelta(days=20)
    assert prune_alert_outbox(brain, retention_days=5, now=later) == 3
    assert alert_ids(brain_dsn) == [alert["old_pending"]]
    with pytest.raises(ValueError, match="retention_days"):
        prune_alert_outbox(brain, retention_days=0)


def set_timeouts(monkeypatch: pytest.MonkeyPatch, *, statement: str, lock: str) -> None:
    monkeypatch.setenv(connection.STATEMENT_TIMEOUT_ENV, statement)
    monkeypatch.setenv(connection.LOCK_TIMEOUT_ENV, lock)


def test_analyze_waits_under_the_lock_limit_and_without_the_statement_limit(
    brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another session holds a lock that ANALYZE waits for, as a VACUUM or a migration would.
    holder = psycopg.connect(brain_dsn)
    try:
        holder.execute("LOCK TABLE data_quality_logs IN SHARE MODE")
        set_timeouts(monkeypatch, statement="", lock="0.5")
        started = time.monotonic()
        with pytest.raises(BrainError, match=r"ANALYZE failed.*lock timeout"):
            analyze(brain_dsn, ["data_quality_logs"])
        assert time.monotonic() - started < 5.0

        # A statement limit shorter than the wait does not cancel it: ANALYZE completes once
        # the lock is free.
        set_timeouts(monkeypatch, statement="0.5", lock="0")
        release = threading.Timer(1.5, holder.rollback)
        release.start()
        started = time.monotonic()
        analyze(brain_dsn, ["data_quality_logs"])
        assert time.monotonic() - started >= 1.4
        release.join()
    finally:
        holder.close()


def test_a_move_longer_than_the_statement_limit_completes(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(brain)
    with psycopg.connect(brain_dsn, autocommit=True) as conn:
        # The last move of the transaction takes 2 s, as a big backlog would.
        conn.execute(
            """CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
               CREATE TRIGGER slow AFTER INSERT ON data_quality_logs_archive
               FOR EACH STATEMENT EXECUTE FUNCTION slow()"""
        )
    set_timeouts(monkeypatch, statement="1", lock="")
    with BrainLibrary(brain_dsn) as limited:
        moved = archive_old_rows(limited, retention_days=365)
        assert moved == {
            "model_metrics": 3,
            "feature_importance": 3,
            "data_quality_logs": 4,
            "input_drift": 1,
        }
        # Lifted for the move's transaction only: the pooled session keeps its limit.
        with limited.transaction() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone() == ("1s",)
    assert archived_counts(brain) == moved


def test_schedule_runs_monthly_once_per_month(brain_dsn: str) -> None:
    assert maintenance_schedule.cron_schedule == "0 4 1 * *"
    assert maintenance_schedule.execution_timezone == "UTC"
    assert maintenance_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert maintenance_schedule.job_name == "maintenance"
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 3, 1, 4, tzinfo=UTC)
    )
    request = maintenance_schedule.evaluate_tick(context).run_requests
    assert request is not None and [r.run_key for r in request] == ["maintenance:2025-03"]
    defs = dg.Definitions(
        jobs=[maintenance_job],
        schedules=[maintenance_schedule],
        resources={"brain": BrainResource(dsn=brain_dsn)},
    )
    dg.Definitions.validate_loadable(defs)
