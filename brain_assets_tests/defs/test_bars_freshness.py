"""bars_fresh: each symbol's fetched bars judged fresh or stale, in a run and by the sensor.

No ``from __future__ import annotations``: Dagster reads the stand-in asset's context annotation.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from brain_assets.defs.market.assets import _last_bar
from brain_assets.defs.market.freshness import (
    BARS_FRESHNESS,
    BARS_MAX_AGE,
    CHECK_NAME,
    LAST_BAR_KEY,
    bars_fresh,
    bars_freshness_sensor,
    bars_max_age,
    is_fresh,
)
from brain_assets.defs.partitions import add_symbols, symbols

BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"


def fetched(instance: dg.DagsterInstance, symbol: str, newest_bar: datetime | None) -> None:
    """What a fetch of ``symbol`` records: its materialisation with the newest stored bar."""
    metadata = {} if newest_bar is None else {LAST_BAR_KEY: dg.MetadataValue.timestamp(newest_bar)}
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key="exchange_bars", partition=symbol, metadata=metadata)
    )


def test_stale_beyond_the_named_age() -> None:
    assert BARS_MAX_AGE == timedelta(hours=26)
    # A day between fetches, the bar still forming at the fetch, an hour of slack.
    assert bars_max_age("1d") == timedelta(hours=49)
    assert bars_max_age("4h") == timedelta(hours=29)
    with pytest.raises(ValueError, match="BRAIN_TIMEFRAME: unknown timeframe '7h'"):
        bars_max_age("7h")
    now = datetime(2026, 1, 2, 1, tzinfo=UTC)
    assert is_fresh(now - BARS_MAX_AGE, now)
    assert not is_fresh(now - BARS_MAX_AGE - timedelta(seconds=1), now)
    assert not is_fresh(None, now)
    # The asset-level policy (Dagster's freshness, shown in the UI) uses the same window.
    assert BARS_FRESHNESS.fail_window.to_timedelta() == BARS_MAX_AGE


def test_the_sensor_judges_every_symbol_without_a_run() -> None:
    instance = dg.DagsterInstance.ephemeral()
    add_symbols(instance, [BTC, ETH, SOL, "BNB/USDT"])
    now = datetime.now(UTC)
    fetched(instance, BTC, now - timedelta(hours=2))
    fetched(instance, ETH, now - timedelta(hours=30))
    fetched(instance, SOL, None)  # no newest bar reported: judged on the fetch's own time
    result = bars_freshness_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SensorResult)
    verdicts = {e.partition: e for e in result.asset_events}
    assert {symbol: e.passed for symbol, e in verdicts.items()} == {  # type: ignore[union-attr]
        BTC: True,
        ETH: False,
        SOL: True,
        "BNB/USDT": False,  # registered, never fetched
    }
    stale = verdicts[ETH]
    assert isinstance(stale, dg.AssetCheckEvaluation)
    assert stale.check_name == CHECK_NAME and stale.asset_key == dg.AssetKey("exchange_bars")
    assert stale.metadata["age_hours"].value >= 30  # type: ignore[operator]
    assert verdicts["BNB/USDT"].metadata["reason"].value == "never fetched"
    assert bars_freshness_sensor.default_status == dg.DefaultSensorStatus.STOPPED  # no exchange


def test_the_check_runs_after_a_fetch_of_its_symbol() -> None:
    """In a fetch's run the check judges the bars that run stored, for that symbol only."""
    newest: dict[str, datetime] = {}

    @dg.asset(name="exchange_bars", partitions_def=symbols)
    def stand_in(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=_last_bar(newest[context.partition_key]))

    instance = dg.DagsterInstance.ephemeral()
    add_symbols(instance, [BTC, ETH])
    now = datetime.now(UTC)
    newest[BTC] = now - timedelta(hours=1)
    newest[ETH] = now - timedelta(days=3)
    for symbol, fresh in ((BTC, True), (ETH, False)):
        result = dg.materialize(
            [stand_in, bars_fresh], partition_key=symbol, instance=instance, raise_on_error=False
        )
        [evaluation] = result.get_asset_check_evaluations()
        assert evaluation.passed is fresh and evaluation.partition == symbol


def test_the_fetch_reports_its_newest_bar() -> None:
    stamp = datetime(2026, 1, 1, 23, tzinfo=UTC)
    assert _last_bar(pd.Timestamp(stamp)) == {LAST_BAR_KEY: dg.MetadataValue.timestamp(stamp)}
    assert _last_bar(pd.Timestamp("2026-01-01 23:00")) == _last_bar(pd.Timestamp(stamp))
    assert _last_bar(None) == {} and _last_bar(pd.NaT) == {}


def test_a_real_fetch_is_judged_on_its_newest_stored_bar(
    brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from brain_assets.defs.io_manager import BrainIOManager
    from brain_assets.defs.market.assets import exchange_bars
    from brain_assets.defs.market.resources import ExchangeResource
    from brain_assets.defs.resources import BrainResource
    from brain_assets.market_data import exchange as exchange_module
    from brain_assets_tests.defs.test_exchange_fetch import FakeExchange

    monkeypatch.setattr(exchange_module, "make_exchange", lambda name: FakeExchange(48))
    store = BrainResource(dsn=brain_dsn)
    instance = dg.DagsterInstance.ephemeral()
    add_symbols(instance, [BTC])
    result = dg.materialize(
        [exchange_bars, bars_fresh],
        instance=instance,
        partition_key=BTC,
        resources={
            "brain": store,
            "brain_io_manager": BrainIOManager(brain=store),
            "exchange": ExchangeResource(exchange="fakex", since="2025-01-01"),
        },
    )
    [event] = result.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata  # type: ignore[union-attr]
    newest = datetime.fromtimestamp(metadata[LAST_BAR_KEY].value, UTC)  # type: ignore[arg-type]
    assert newest.year == 2025  # the fake exchange's bars start 2025-01-01: long stale now
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.partition == BTC
    assert evaluation.metadata["judged_on"].value == "newest stored bar"
