"""The model lifecycle: which version of a symbol's model trades, and why.

``versioning`` registers versions and decides promotion, rollback and standing aside (the policy
and its statistics are in ``brain_assets.decisions``); ``selection`` picks a version per
volatility regime; ``predictor`` loads what the Brain recommends for the engine, with
``predictor_cache`` standing in for the Brain when its database does not answer. The store below
(``brain_assets.store``) owns every state switch; nothing here writes SQL.
"""
