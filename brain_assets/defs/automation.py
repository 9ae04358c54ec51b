"""When the daily retrain runs: declarative automation on its assets, evaluated by the daemon.

A deployment that fetches its bars (``BRAIN_EXCHANGE`` set): a symbol's retrain starts once its
new bars have arrived, that is when the fetch materialises the symbol's ``exchange_bars``
partition; that symbol only, once per arrival, never while a retrain of it is queued or running.
A late fetch delays the retrain instead of leaving it to train on yesterday's bars, and a failed
fetch starts none (the bars' freshness check says so: defs/market/freshness.py).

A deployment without a fetch (bars from files, generated, or imported into the store): nothing
signals new bars, so the retrain keeps its daily tick, ``RETRAIN_CRON``.

Either way the trigger sits on the retrain's first asset (``market_data`` and ``data_quality``,
one op); every later asset of the retrain is requested with its upstream on the same tick, so a
symbol's whole retrain is one run, as a ``daily_retrain`` run is.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

RETRAIN_CRON = "0 1 * * *"
"""The retrain's tick (UTC) where nothing signals new bars; daily_retrain_schedule's too."""

ROOT_KEYS = frozenset({dg.AssetKey("market_data"), dg.AssetKey("data_quality")})
"""The retrain's first op: where the trigger is; the other assets follow it."""

AUTOMATION_SENSOR = "default_automation_condition_sensor"


def on_new_bars() -> dg.AutomationCondition:
    """True for a symbol once its upstream bars (``exchange_bars``) were updated since the symbol
    was last requested or retrained, and neither the fetch nor a retrain of it is in progress.

    ``any_deps_updated`` ignores an update made by a run that also ran this asset (a manual
    fetch + retrain run does not start a second retrain); ``since_last_handled`` keeps an arrival
    seen during a running retrain until that run ends, then requests one retrain for it."""
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("new_bars")


def on_retrain_tick(cron: str = RETRAIN_CRON) -> dg.AutomationCondition:
    """Every symbol once per tick of ``cron`` (UTC), not while a retrain of it is in progress.

    ``AutomationCondition.on_cron`` would also wait for every upstream asset to update after the
    tick; where this is used nothing updates ``exchange_bars``, so that part is left out."""
    tick: dg.AutomationCondition[dg.AssetKey | dg.AssetCheckKey] = (
        dg.AutomationCondition.cron_tick_passed(cron, "UTC")
    )
    return (tick.since_last_handled() & ~dg.AutomationCondition.in_progress()).with_label(
        f"retrain_tick({cron})"
    )


def with_the_retrain() -> dg.AutomationCondition:
    """Requested on the tick one of its upstream assets is: the later assets of the retrain join
    its first one in the same run (and only then; a manual run upstream starts nothing here)."""
    return dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.will_be_requested()
    ).with_label("with_the_retrain")


def automate_retrain(
    assets: Iterable[dg.AssetsDefinition], *, fetch: bool
) -> list[dg.AssetsDefinition]:
    """``assets`` (the retrain's) with their automation conditions: the trigger on the first op,
    ``on_new_bars`` where the deployment fetches (``fetch``), else ``on_retrain_tick``."""
    trigger = on_new_bars() if fetch else on_retrain_tick()
    follow = with_the_retrain()
    return [
        asset.with_attributes(
            automation_condition={
                key: trigger if key in ROOT_KEYS else follow for key in asset.keys
            }
        )
        for asset in assets
    ]


# Named as Dagster's own default so that no second (stopped) one is added; it evaluates every
# condition of the code location. Running by default: `brain dev` starts the daemon that ticks it.
# emit_backfills=False: one run per symbol, as the schedules launch them, without a backfill (and
# its daemon's delay) whenever several symbols' bars arrive on one tick.
automation_sensor = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    emit_backfills=False,
    description=(
        "Evaluates the assets' automation conditions: starts a symbol's retrain when its new "
        f"bars arrive (with an exchange) or at {RETRAIN_CRON} UTC (without one)"
    ),
)

__all__ = [
    "AUTOMATION_SENSOR",
    "RETRAIN_CRON",
    "automate_retrain",
    "automation_sensor",
    "on_new_bars",
    "on_retrain_tick",
    "with_the_retrain",
]
