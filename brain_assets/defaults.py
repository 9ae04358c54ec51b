"""Defaults that several layers share: the public API's keyword defaults, ``RetrainSettings``,
the Dagster resources and the CLI. Each is declared here once, so that they cannot drift apart;
this module imports nothing, so any layer may use it."""

FEE_BPS = 10.0
"""Cost of trading one unit of position, in basis points of notional (0.1%: a taker fee)."""

ROLLBACK_THRESHOLD = 0.05
"""Relative regression of a live model's metric, against its registered baseline, beyond which
the symbol rolls back to its previous version."""
