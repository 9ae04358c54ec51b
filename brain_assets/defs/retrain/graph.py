"""Every asset of the daily_retrain job, in one list for definitions, tests and bench.

The quality checks are declared on the assets themselves (check_specs), so they travel with them.
"""

from brain_assets.defs.regimes.assets import volatility_regime
from brain_assets.defs.retrain.assets import retrain_assets

DAILY_RETRAIN_ASSETS = [*retrain_assets, volatility_regime]
