"""Defaults that several layers share: the public API's keyword defaults, ``RetrainSettings``,
the Dagster resources and the CLI. Each is declared here once, so that they cannot drift apart;
this module imports nothing, so any layer may use it."""

FEE_BPS = 10.0
"""Cost of trading one unit of position, in basis points of notional (0.1%: a taker fee)."""

ROLLBACK_THRESHOLD = 0.05
"""Relative regression of a live model's metric, against its registered baseline, beyond which
the symbol rolls back to its previous version."""

BAND_MARGIN = 0.1
"""How far a forecast must clear the round-trip cost (two fees) to open or reverse a position, as
a fraction of that cost: the no-trade band of evaluation, monitoring and the predictor (see
evaluation.positions). Small on purpose: on AR(1) markets with a strong edge, margins from 0 to
0.25 gave about the same net Sharpe ratio (ridge, forest and the true forecast alike) and 0.5 or
more cut it by a fifth to a half; on markets without an edge a wider band trades, and loses,
less, but there the activation floor is what keeps a model out (bench/band_bench.py)."""

MAX_GAP_BARS = 3.0
"""A spacing of more bars than this between two bars is a gap: the quality check's default, the
modelling table's gap exclusion and the predictor's refusal of a window with a gap."""
