"""Sensors that turn Dagster run outcomes into Brain alerts (``brain_assets.alerts``)."""
