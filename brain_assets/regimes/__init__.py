"""Volatility regimes: :mod:`.classify` labels bars without look-ahead (and defines ``REGIMES``),
:mod:`.evaluation` scores a model per regime. Maths only; the pipeline stores the results.

Nothing is imported here: the store and the evaluation report read ``REGIMES`` from
:mod:`.classify`, and :mod:`.evaluation` builds on the evaluation package, which would otherwise
import itself back through this package.
"""
