"""What the live monitoring judges and when it rolls back."""

import dagster as dg
from pydantic import Field

from brain_assets.defaults import ROLLBACK_THRESHOLD
from brain_assets.pipeline.monitoring import DEFAULT_LIVE_WINDOW_BARS, DEFAULT_MIN_LIVE_BARS
from brain_assets.versioning import DEFAULT_MONITORED


class MonitoringResource(dg.ConfigurableResource):
    """``rollback_threshold``: the smallest relative degradation that matters, in (0, 1]. With
    the default decision policy a rollback also needs the live Sharpe ratio to be significantly
    below the version's deflated test Sharpe ratio (resource ``decisions``); with the seed's
    rules any monitored metric worse than its activation baseline by this much rolls back.
    ``window_bars``: the most recent bars the model never saw that it is judged on."""

    rollback_threshold: float = ROLLBACK_THRESHOLD
    monitored_metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_MONITORED))
    min_bars: int = DEFAULT_MIN_LIVE_BARS
    window_bars: int = DEFAULT_LIVE_WINDOW_BARS
