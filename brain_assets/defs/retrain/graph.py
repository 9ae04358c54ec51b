"""Every asset and check of the daily_retrain job, in one list for definitions, tests and bench."""

from brain_assets.defs.regimes.assets import volatility_regime
from brain_assets.defs.retrain.assets import retrain_assets
from brain_assets.defs.retrain.checks import retrain_checks

DAILY_RETRAIN_ASSETS = [*retrain_assets, volatility_regime]
DAILY_RETRAIN_CHECKS = retrain_checks
