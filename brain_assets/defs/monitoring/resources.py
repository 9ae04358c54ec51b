"""What the live monitoring judges and when it rolls back."""

import dagster as dg
from pydantic import Field

from brain_assets.lifecycle.versioning import DEFAULT_MONITORED
from brain_assets.pipeline.monitoring import DEFAULT_LIVE_WINDOW_BARS, DEFAULT_MIN_LIVE_BARS


class MonitoringResource(dg.ConfigurableResource):
    """What the live monitoring judges: ``monitored_metrics``, on the most recent
    ``window_bars`` bars the model never saw (at least ``min_bars``). When a change is a rollback
    is a decision setting (resource ``decisions``: ``rollback_threshold`` and the policy)."""

    monitored_metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_MONITORED))
    min_bars: int = DEFAULT_MIN_LIVE_BARS
    window_bars: int = DEFAULT_LIVE_WINDOW_BARS
