"""Crypto's 24/7 calendar: bar spacing and the number of bars in a year.

Exchanges never close, so a year holds 365 daily bars and 8760 hourly bars (not the 252 trading
days that equity libraries default to).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SECONDS_PER_YEAR = 365 * 24 * 3600


def bar_seconds(timestamps: Sequence[object] | pd.Index | pd.Series) -> float:
    """The median spacing of consecutive timestamps, in seconds.

    The median ignores the odd missing bar, so a gap does not change the inferred frequency.
    """
    index = pd.DatetimeIndex(pd.to_datetime(pd.Series(timestamps), utc=True))
    if len(index) < 2:
        raise ValueError("timestamps: at least 2 are needed to infer the bar frequency")
    steps = np.diff(index.asi8) / 1e9
    steps = steps[steps > 0]
    if steps.size == 0:
        raise ValueError("timestamps: no two distinct timestamps to infer the bar frequency from")
    return float(np.median(steps))


def periods_per_year(timestamps: Sequence[object] | pd.Index | pd.Series) -> float:
    """Bars per year on a 24/7 calendar: 8760 for 1h bars, 365 for daily bars."""
    return SECONDS_PER_YEAR / bar_seconds(timestamps)


def frequency_label(seconds: float) -> str:
    """A short human label such as ``1h``, ``15min`` or ``1d`` for a bar spacing."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size and abs(seconds / size - round(seconds / size)) < 1e-9:
            return f"{round(seconds / size)}{unit}"
    return f"{seconds:g}s"


def parse_timestamps(raw: pd.Series, *, where: str) -> pd.Series:
    """``raw`` as ``datetime64[ns, UTC]``: numbers are epoch milliseconds, text is ISO-8601,
    naive datetimes are UTC. A ValueError names ``where`` and shows the first values."""
    if pd.api.types.is_bool_dtype(raw):
        raise ValueError(f"{where}: column 'timestamp' holds booleans, not timestamps")
    try:
        if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw):
            # Parquet keeps real timestamps; a naive one is UTC by the project's convention.
            parsed = pd.to_datetime(raw, utc=True)
        elif pd.api.types.is_numeric_dtype(raw):
            parsed = pd.to_datetime(raw, unit="ms", utc=True)
        else:
            parsed = pd.to_datetime(raw, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError) as exc:
        sample = raw.dropna().astype(str).head(3).tolist()
        raise ValueError(
            f"{where}: cannot parse column 'timestamp' as ISO-8601 text or epoch milliseconds "
            f"(first values {sample}): {exc}"
        ) from exc
    return parsed.astype("datetime64[ns, UTC]")
