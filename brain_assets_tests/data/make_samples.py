"""Write the committed OHLCV sample files of this folder (run once; the output is committed).

    .venv/bin/python brain_assets_tests/data/make_samples.py [FOLDER]

Daily bars that behave like an exchange's: a geometric random walk whose shocks are fat-tailed
(Student t) with GARCH(1,1) volatility clustering, each day opening at the previous close,
wicks that grow with the day's volatility, and volume that rises with the size of the move.
Then each file gets its own, known defects at fixed dates (see README.md in this folder), so
that tests can assert exact counts. Seeded: running it again writes byte-identical files.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

START = "2019-01-01"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# BTC: three bad prints (open, high and low of 0), one bar repeated identically, three days
# missing, and two adjacent rows swapped.
BTC_BAD_PRINTS = ("2019-06-14", "2020-03-13", "2021-02-08")
BTC_GAP = ("2019-11-05", "2019-11-06", "2019-11-07")
BTC_DUPLICATE = "2020-07-21"
BTC_SWAPPED = ("2021-05-03", "2021-05-04")

# LTC: open outside the day's range, as on thin markets where the first trade of the day is far
# from the rest (above the high on two days, below the low on two), and one timestamp given
# twice with different closes.
LTC_OPEN_ABOVE_HIGH = ("2019-04-02", "2020-05-28")
LTC_OPEN_BELOW_LOW = ("2019-09-17", "2021-03-11")
LTC_CONFLICT = "2020-10-06"

# BROKEN: every 20th bar from row 10 on is broken, 50 of 1000 (5%); even-numbered ones print all
# four prices and the volume as 0, odd-numbered ones a negative low.
BROKEN_EVERY = 20
BROKEN_FIRST = 10


@dataclass(frozen=True)
class Market:
    """How one symbol's price and volume behave."""

    seed: int
    start_price: float
    daily_drift: float
    daily_vol: float
    base_volume: float
    price_decimals: int
    volume_decimals: int


MARKETS: dict[str, Market] = {
    "BTC/USD": Market(11, 3_750.0, 0.0012, 0.038, 9_000.0, 2, 2),
    "ETH/USD": Market(23, 135.0, 0.0010, 0.048, 160_000.0, 2, 2),
    "LTC/USD": Market(44, 31.5, 0.0004, 0.052, 420_000.0, 3, 1),
    "BROKEN/USD": Market(41, 0.36, 0.0002, 0.055, 25_000_000.0, 5, 0),
}


def simulate(market: Market, days: int) -> pd.DataFrame:
    """``days`` consistent daily bars from ``START`` (UTC midnight), rounded for a CSV."""
    rng = np.random.default_rng(market.seed)
    # GARCH(1,1) with persistence 0.97 and the long-run variance of ``daily_vol``.
    alpha, beta = 0.10, 0.87
    omega = market.daily_vol**2 * (1.0 - alpha - beta)
    dof = 4.0
    shocks = rng.standard_t(dof, size=days) / np.sqrt(dof / (dof - 2.0))
    variance = np.empty(days)
    returns = np.empty(days)
    variance[0] = market.daily_vol**2
    for day in range(days):
        if day > 0:
            variance[day] = omega + alpha * returns[day - 1] ** 2 + beta * variance[day - 1]
        returns[day] = market.daily_drift + np.sqrt(variance[day]) * shocks[day]
    sigma = np.sqrt(variance)

    close = market.start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[market.start_price], close[:-1]])
    upper_wick = np.abs(rng.normal(0.0, 0.45, days)) * sigma
    lower_wick = np.abs(rng.normal(0.0, 0.45, days)) * sigma
    high = np.maximum(open_, close) * np.exp(upper_wick)
    low = np.minimum(open_, close) * np.exp(-lower_wick)
    # Busy days are big-move days: log volume rises with the move measured in long-run sigmas.
    surprise = np.abs(returns) / market.daily_vol
    volume = market.base_volume * np.exp(0.35 * surprise + rng.normal(0.0, 0.35, days))

    # Rounding is monotone, so high >= max(open, close) and low <= min(open, close) survive it.
    prices = market.price_decimals
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(START, periods=days, freq="D", tz="UTC"),
            "open": np.round(open_, prices),
            "high": np.round(high, prices),
            "low": np.round(low, prices),
            "close": np.round(close, prices),
            "volume": np.round(volume, market.volume_decimals),
        }
    )


def _row(bars: pd.DataFrame, day: str) -> int:
    """The position of the bar of ``day`` (which must exist exactly once)."""
    (positions,) = np.nonzero((bars["timestamp"] == pd.Timestamp(day, tz="UTC")).to_numpy())
    if len(positions) != 1:
        raise ValueError(f"{day}: expected exactly one bar, found {len(positions)}")
    return int(positions[0])


def btc(market: Market) -> pd.DataFrame:
    bars = simulate(market, 1003)
    for day in BTC_BAD_PRINTS:
        bars.loc[_row(bars, day), ["open", "high", "low"]] = 0.0
    bars = bars.drop(index=[_row(bars, day) for day in BTC_GAP]).reset_index(drop=True)
    # An overlapping download: the same bar delivered twice, one after the other.
    copy_at = _row(bars, BTC_DUPLICATE)
    order = [*range(copy_at + 1), copy_at, *range(copy_at + 1, len(bars))]
    bars = bars.iloc[order].reset_index(drop=True)
    first, second = (_row(bars, day) for day in BTC_SWAPPED)
    order = list(range(len(bars)))
    order[first], order[second] = second, first
    return bars.iloc[order].reset_index(drop=True)


def ltc(market: Market) -> pd.DataFrame:
    bars = simulate(market, 1000)
    decimals = market.price_decimals
    for day in LTC_OPEN_ABOVE_HIGH:
        at = _row(bars, day)
        bars.loc[at, "open"] = round(float(bars["high"].iloc[at]) * 1.012, decimals)
    for day in LTC_OPEN_BELOW_LOW:
        at = _row(bars, day)
        bars.loc[at, "open"] = round(float(bars["low"].iloc[at]) * 0.988, decimals)
    # The same day again with another close, still inside its range: only the duplicate is wrong.
    at = _row(bars, LTC_CONFLICT)
    other = bars.iloc[[at]].copy()
    low, high = float(other["low"].iloc[0]), float(other["high"].iloc[0])
    close = float(other["close"].iloc[0])
    other["close"] = round((close + high) / 2.0 if high > close else (close + low) / 2.0, decimals)
    if float(other["close"].iloc[0]) == close:
        raise ValueError(f"{LTC_CONFLICT}: the conflicting close equals the original one")
    return pd.concat([bars.iloc[: at + 1], other, bars.iloc[at + 1 :]], ignore_index=True)


def eth(market: Market) -> pd.DataFrame:
    return simulate(market, 1000)


def broken(market: Market) -> pd.DataFrame:
    bars = simulate(market, 1000)
    rows = np.arange(BROKEN_FIRST, len(bars), BROKEN_EVERY)
    for number, at in enumerate(rows.tolist()):
        if number % 2 == 0:
            bars.loc[at, ["open", "high", "low", "close", "volume"]] = 0.0
        else:
            bars.loc[at, "low"] = -float(bars["low"].iloc[at])
    return bars


BUILDERS = {"BTC/USD": btc, "ETH/USD": eth, "LTC/USD": ltc, "BROKEN/USD": broken}


def write_samples(folder: Path) -> list[Path]:
    """Write every sample CSV into ``folder``; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for symbol, build in BUILDERS.items():
        bars = build(MARKETS[symbol])
        text = bars.assign(timestamp=bars["timestamp"].dt.strftime(TIMESTAMP_FORMAT))
        path = folder / f"{symbol.replace('/', '-')}.csv"
        text.to_csv(path, index=False, lineterminator="\n")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parent
    for path in write_samples(folder):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
