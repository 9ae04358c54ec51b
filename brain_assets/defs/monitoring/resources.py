"""What the live monitoring judges and when it rolls back."""

import dagster as dg
from pydantic import Field

from brain_assets.pipeline.monitoring import DEFAULT_LIVE_WINDOW_BARS, DEFAULT_MIN_LIVE_BARS
from brain_assets.versioning import DEFAULT_MONITORED


class MonitoringResource(dg.ConfigurableResource):
    """``rollback_threshold``: relative degradation of any monitored metric (against the
    baseline recorded at promotion) beyond which the symbol rolls back, in (0, 1]."""

    rollback_threshold: float = 0.05
    monitored_metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_MONITORED))
    min_bars: int = DEFAULT_MIN_LIVE_BARS
    window_bars: int = DEFAULT_LIVE_WINDOW_BARS
