"""Dagster definitions, split by domain; the maths lives in the Dagster-free core."""

import warnings

import dagster as dg

# Single-run backfills need BackfillPolicy, which Dagster still labels beta; we rely on it
# knowingly, so its warning would only be noise in every process that loads the code location.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
