"""An explicit, configurable cleaning policy for raw exchange bars, run before the blocking check.

Real exchange histories are not clean: bad prints with a price of 0, NaN volumes, candles whose
open lies outside the day's range on illiquid markets, bars repeated by overlapping downloads,
rows out of order. Failing the whole pipeline on one such bar would make real data unusable;
silently fixing everything would hide a broken feed. So the policy does a small, named set of
repairs, reports every one of them (how many bars, and a few examples), and states a budget:
when more than ``max_affected_fraction`` of the raw bars had to be dropped or repaired, the
data is considered broken and the blocking check must fail even though the cleaned frame is
valid.

Rules run in the order of :data:`CLEANING_RULES`, each on what the previous ones left, so a bar
is counted by the first rule that removes it and never twice (a duplicated bad print is one
``non_positive_price`` drop per copy, not also a duplicate). Gaps (missing bars) are left as
they are: filling them would invent prices.

Dagster-free on purpose, like :mod:`brain_assets.quality.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from brain_assets.market_data.base import OHLCV_COLUMNS, PRICE_COLUMNS, require_ohlcv

CLEANING_RULES: tuple[str, ...] = (
    "missing_value",
    "non_positive_price",
    "negative_volume",
    "inconsistent_ohlc",
    "unsorted",
    "duplicate_identical",
    "duplicate_conflicting",
)

INCONSISTENT_OHLC_MODES: tuple[str, ...] = ("drop", "widen")
DUPLICATE_MODES: tuple[str, ...] = ("drop", "keep_last", "keep_first")

# Actions that lose a bar's information; "collapsed" loses nothing (the copies were identical)
# and "sorted" only moves rows.
REMOVING_ACTIONS: tuple[str, ...] = ("dropped", "kept_last", "kept_first")
REPAIRING_ACTIONS: tuple[str, ...] = ("widened",)

# Enough to recognise the pattern (a feed's zero prints, one exchange's habit) in a log line.
MAX_EXAMPLES = 5

_VALUE_COLUMNS: tuple[str, ...] = OHLCV_COLUMNS[1:]


def _one_of(field_name: str, value: object, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(repr(name) for name in allowed)
        raise ValueError(f"cleaning.{field_name} must be one of {choices}, got {value!r}")


@dataclass(frozen=True)
class CleaningPolicy:
    """What :func:`clean_bars` may do to raw bars.

    ``inconsistent_ohlc``: ``"drop"`` the bar, or ``"widen"`` its range to
    ``high = max(open, high, low, close)`` and ``low = min(...)``. Widening only ever sees
    positive, finite prices, because the rules before it drop every other bar.

    ``duplicates``: what to do with copies of a timestamp whose values differ: ``"drop"`` every
    copy (neither can be trusted), ``"keep_last"`` or ``"keep_first"`` in file order. Copies
    with identical values always collapse to one.

    ``max_affected_fraction``: the share of raw bars that may be dropped or repaired before the
    data counts as broken (see :attr:`CleaningReport.too_much`).

    ``recent_stretch``: when the whole history is over that share but its recent bars are not
    (bad prints of an exchange's early years), train on the longest recent stretch that keeps
    it, and log what was left out (see :func:`recent_clean_stretch`); False blocks the symbol.
    """

    enabled: bool = True
    inconsistent_ohlc: str = "drop"
    duplicates: str = "drop"
    max_affected_fraction: float = 0.01
    recent_stretch: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"cleaning.enabled must be true or false, got {self.enabled!r}")
        if not isinstance(self.recent_stretch, bool):
            raise ValueError(
                f"cleaning.recent_stretch must be true or false, got {self.recent_stretch!r}"
            )
        _one_of("inconsistent_ohlc", self.inconsistent_ohlc, INCONSISTENT_OHLC_MODES)
        _one_of("duplicates", self.duplicates, DUPLICATE_MODES)
        fraction = self.max_affected_fraction
        is_number = isinstance(fraction, int | float) and not isinstance(fraction, bool)
        if not is_number or not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(
                f"cleaning.max_affected_fraction must be a number in [0, 1], got {fraction!r}"
            )
        # A frozen dataclass needs object.__setattr__; an int such as 0 or 1 becomes a float so
        # that reports and metadata always show the same type.
        object.__setattr__(self, "max_affected_fraction", float(fraction))


@dataclass(frozen=True)
class CleaningAction:
    """What one rule did: ``count`` bars, with at most :data:`MAX_EXAMPLES` of them shown.

    Each example is ``{"timestamp": ISO-8601 text or None, "values": "open=...; ...; volume=..."}``
    and shows the bar as it was before the rule touched it.
    """

    rule: str
    action: str
    count: int
    examples: list[dict[str, Any]]


@dataclass(frozen=True)
class CleaningReport:
    """Everything :func:`clean_bars` did to one frame, in rule order."""

    raw_rows: int
    clean_rows: int
    actions: tuple[CleaningAction, ...]
    enabled: bool
    max_affected_fraction: float
    affected_ns: np.ndarray = field(
        default_factory=lambda: np.empty(0, dtype="int64"), compare=False, repr=False
    )
    """When the affected bars were (epoch nanoseconds; NaT as the smallest int64), to tell bad
    bars of long ago from bad bars now (see :func:`recent_clean_stretch`)."""

    @property
    def dropped(self) -> int:
        """Bars removed, not counting identical copies collapsed into one."""
        return sum(item.count for item in self.actions if item.action in REMOVING_ACTIONS)

    @property
    def repaired(self) -> int:
        """Bars kept with changed values (widened)."""
        return sum(item.count for item in self.actions if item.action in REPAIRING_ACTIONS)

    @property
    def affected(self) -> int:
        """Bars dropped or repaired: the ones whose information the cleaning changed."""
        return self.dropped + self.repaired

    @property
    def affected_fraction(self) -> float:
        """``affected`` as a share of the raw bars; 0.0 for an empty frame."""
        if self.raw_rows == 0:
            return 0.0
        return self.affected / self.raw_rows

    @property
    def too_much(self) -> bool:
        """True when so many bars needed cleaning that the feed itself looks broken."""
        return self.affected_fraction > self.max_affected_fraction

    def counts(self) -> dict[str, int]:
        """Bars per rule, for the rules that changed something."""
        return {item.rule: item.count for item in self.actions}

    def summary(self) -> str:
        """One line for a log or a metadata field."""
        if not self.enabled:
            return f"cleaning disabled: {self.raw_rows} raw bars passed through unchanged"
        head = f"{self.raw_rows} raw bars, {self.clean_rows} kept"
        parts = [
            _summary_part("dropped", self.dropped, self.actions, REMOVING_ACTIONS),
            _summary_part("widened", self.repaired, self.actions, REPAIRING_ACTIONS),
            _summary_part("collapsed", _total(self.actions, ("collapsed",)), self.actions),
            _summary_part("sorted", _total(self.actions, ("sorted",)), self.actions),
        ]
        done = ", ".join(part for part in parts if part) or "nothing to clean"
        verdict = f"{self.affected_fraction:.2%} affected (limit {self.max_affected_fraction:.2%})"
        if self.too_much:
            verdict += ": too much, the feed looks broken"
        return f"{head}: {done}; {verdict}"

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-friendly values, derived figures included."""
        return {
            "enabled": self.enabled,
            "raw_rows": self.raw_rows,
            "clean_rows": self.clean_rows,
            "dropped": self.dropped,
            "repaired": self.repaired,
            "affected": self.affected,
            "affected_fraction": self.affected_fraction,
            "max_affected_fraction": self.max_affected_fraction,
            "too_much": self.too_much,
            "counts": self.counts(),
            "actions": [asdict(item) for item in self.actions],
            "summary": self.summary(),
        }


def _total(actions: tuple[CleaningAction, ...], kinds: tuple[str, ...]) -> int:
    return sum(item.count for item in actions if item.action in kinds)


def _summary_part(
    verb: str,
    total: int,
    actions: tuple[CleaningAction, ...],
    kinds: tuple[str, ...] | None = None,
) -> str:
    """``"dropped 3 (non_positive_price 2, duplicate_conflicting 1)"``, or "" for nothing."""
    if total == 0:
        return ""
    wanted = kinds if kinds is not None else (verb,)
    detail = ", ".join(f"{item.rule} {item.count}" for item in actions if item.action in wanted)
    return f"{verb} {total} ({detail})"


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    """A fresh frame with exactly the conventional columns and dtypes, and a RangeIndex."""
    require_ohlcv(frame, "clean_bars")
    stamps = frame["timestamp"]
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(stamps):
        # A naive timestamp is UTC by the market-data convention.
        stamps = stamps.dt.tz_localize("UTC")
    else:
        raise ValueError(
            f"clean_bars: column 'timestamp' must hold datetimes, got dtype {stamps.dtype}"
        )
    # .array, not .to_numpy(): a tz-aware column's to_numpy() builds one Timestamp object per
    # row, which costs more than all the rules together on a long history.
    columns: dict[str, Any] = {"timestamp": stamps.astype("datetime64[ns, UTC]").array}
    for name in _VALUE_COLUMNS:
        try:
            columns[name] = frame[name].to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"clean_bars: column {name!r} is not numeric: {exc}") from exc
    return pd.DataFrame(columns)


def _examples(bars: pd.DataFrame, rows: np.ndarray) -> list[dict[str, Any]]:
    """The first few of ``rows`` (positions in ``bars``) as JSON-friendly examples."""
    shown: list[dict[str, Any]] = []
    for position in rows[:MAX_EXAMPLES]:
        row = bars.iloc[int(position)]
        stamp = row["timestamp"]
        values = "; ".join(f"{name}={float(row[name])}" for name in _VALUE_COLUMNS)
        shown.append({"timestamp": None if pd.isna(stamp) else stamp.isoformat(), "values": values})
    return shown


def _action(rule: str, action: str, bars: pd.DataFrame, mask: np.ndarray) -> CleaningAction:
    rows = np.flatnonzero(mask)
    return CleaningAction(rule=rule, action=action, count=len(rows), examples=_examples(bars, rows))


# Each rule returns the bars it leaves, the name of what it did, and which of the bars it was
# given it touched (a boolean array over its input).
_Result = tuple[pd.DataFrame, str, np.ndarray]


def _drop(bars: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    if not mask.any():
        # Clean data is the common case: no copy per rule for it.
        return bars
    return bars.loc[~mask].reset_index(drop=True)


def _missing_value(bars: pd.DataFrame, policy: CleaningPolicy) -> _Result:
    values = bars[list(_VALUE_COLUMNS)].to_numpy(dtype="float64")
    mask = bars["timestamp"].isna().to_numpy() | ~np.isfinite(values).all(axis=1)
    return _drop(bars, mask), "dropped", mask


def _non_positive_price(bars: pd.DataFrame, policy: CleaningPolicy) -> _Result:
    mask = np.any(bars[list(PRICE_COLUMNS)].to_numpy(dtype="float64") <= 0, axis=1)
    return _drop(bars, mask), "dropped", mask


def _negative_volume(bars: pd.DataFrame, policy: CleaningPolicy) -> _Result:
    mask = bars["volume"].to_numpy(dtype="float64") < 0
    return _drop(bars, mask), "dropped", mask


def _inconsistent_ohlc(bars: pd.DataFrame, policy: CleaningPolicy) -> _Result:
    prices = bars[list(PRICE_COLUMNS)].to_numpy(dtype="float64")
    open_, high, low, close = prices.T
    body_top = np.maximum(open_, close)
    body_bottom = np.minimum(open_, close)
    # high < low needs no test of its own: open would then be above high or below low.
    mask = (body_top > high) | (body_bottom < low)
    if policy.inconsistent_ohlc == "drop" or not mask.any():
        return _drop(bars, mask), "dropped", mask
    repaired = bars.copy()
    # max/min over all four prices, so a swapped high/low is fixed too: every price is positive
    # and finite here (earlier rules dropped the rest), so the widest range is unambiguous.
    repaired.loc[mask, "high"] = prices[mask].max(axis=1)
    repaired.loc[mask, "low"] = prices[mask].min(axis=1)
    return repaired, "widened", mask


def _unsorted(bars: pd.DataFrame, policy: CleaningPolicy) -> _Result:
    stamps = pd.DatetimeIndex(bars["timestamp"]).asi8
    # Counted: rows earlier than the row just above them. A swapped adjacent pair counts 1 and
    # one row misplaced far away also counts 1, where "rows that moved" would count every row
    # it was shifted past.
    mask = np.zeros(len(stamps), dtype=bool)
    mask[1:] = stamps[1:] < stamps[:-1]
    if not mask.any():
        return bars, "sorted", mask
    # Stable, so copies of one timestamp keep their file order for keep_first / keep_last.
    order = np.argsort(stamps, kind="stable")
    return bars.iloc[order].reset_index(drop=True), "sorted", mask


def _identical_keep(policy: CleaningPolicy) -> Literal["first", "last"]:
    # Which identical copy survives does not change any value, but it fixes the survivor's
    # position among conflicting copies: keep_last must see the last copy in file order.
    return "last" if policy.duplicates == "keep_last" else "first"


def _duplicate_identical(bars: pd.DataFrame, policy: CleaningPolicy) -> _Result:
    if not bars["timestamp"].duplicated().any():
        return bars, "collapsed", np.zeros(len(bars), dtype=bool)
    mask = bars.duplicated(keep=_identical_keep(policy)).to_numpy()
    return _drop(bars, mask), "collapsed", mask


def _duplicate_conflicting(bars: pd.DataFrame, policy: CleaningPolicy) -> _Result:
    stamps = bars["timestamp"]
    if policy.duplicates == "keep_last":
        mask, action = stamps.duplicated(keep="last").to_numpy(), "kept_last"
    elif policy.duplicates == "keep_first":
        mask, action = stamps.duplicated(keep="first").to_numpy(), "kept_first"
    else:
        mask, action = stamps.duplicated(keep=False).to_numpy(), "dropped"
    return _drop(bars, mask), action, mask


_Rule = Callable[[pd.DataFrame, CleaningPolicy], _Result]

_RULES: dict[str, _Rule] = {
    "missing_value": _missing_value,
    "non_positive_price": _non_positive_price,
    "negative_volume": _negative_volume,
    "inconsistent_ohlc": _inconsistent_ohlc,
    "unsorted": _unsorted,
    "duplicate_identical": _duplicate_identical,
    "duplicate_conflicting": _duplicate_conflicting,
}


def clean_bars(
    frame: pd.DataFrame, policy: CleaningPolicy | None = None
) -> tuple[pd.DataFrame, CleaningReport]:
    """The cleaned bars and a report of every change, under ``policy`` (None: the defaults).

    The result has exactly the conventional OHLCV columns and dtypes (other columns are not
    carried over) and a fresh RangeIndex; ``frame`` itself is never changed. A frame without
    defects comes back equal to itself. Raises ValueError naming the missing columns when
    ``frame`` lacks an OHLCV column.

    With ``policy.enabled`` false the frame is returned as a copy without even looking at its
    columns, so that the blocking check sees exactly what the source delivered.
    """
    policy = policy if policy is not None else CleaningPolicy()
    raw_rows = len(frame)
    if not policy.enabled:
        report = CleaningReport(
            raw_rows=raw_rows,
            clean_rows=raw_rows,
            actions=(),
            enabled=False,
            max_affected_fraction=policy.max_affected_fraction,
        )
        return frame.copy(), report

    bars = _conform(frame)
    actions: list[CleaningAction] = []
    affected: list[np.ndarray] = []
    for rule in CLEANING_RULES:
        if bars.empty:
            break
        before = bars
        bars, action, mask = _RULES[rule](before, policy)
        if mask.any():
            actions.append(_action(rule, action, before, mask))
            if action in REMOVING_ACTIONS or action in REPAIRING_ACTIONS:
                affected.append(pd.DatetimeIndex(before["timestamp"]).asi8[mask])
    report = CleaningReport(
        raw_rows=raw_rows,
        clean_rows=len(bars),
        actions=tuple(actions),
        enabled=True,
        max_affected_fraction=policy.max_affected_fraction,
        affected_ns=np.sort(np.concatenate(affected)) if affected else np.empty(0, "int64"),
    )
    return bars, report


@dataclass(frozen=True)
class CleanStretch:
    """The most recent bars that keep the cleaning budget, when the whole history does not.

    ``start`` is its first raw bar; ``left_out_rows`` raw bars before it were left out, of which
    ``left_out_affected`` needed cleaning. ``frame`` and ``report`` are the stretch cleaned."""

    start: pd.Timestamp
    left_out_rows: int
    left_out_affected: int
    frame: pd.DataFrame
    report: CleaningReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "left_out_rows": self.left_out_rows,
            "left_out_affected": self.left_out_affected,
            "reason": self.reason(),
        }

    def reason(self) -> str:
        return (
            f"{self.left_out_rows} raw bars before {self.start.isoformat()} left out: "
            f"{self.left_out_affected} of them needed cleaning, too many for the budget; the "
            f"{self.report.raw_rows} bars since keep it ({self.report.affected_fraction:.2%} "
            f"affected, limit {self.report.max_affected_fraction:.2%})"
        )


def recent_clean_stretch(
    frame: pd.DataFrame, report: CleaningReport, policy: CleaningPolicy, *, min_rows: int
) -> CleanStretch | None:
    """The longest recent stretch of ``frame`` (raw bars; ``report`` its cleaning) whose own
    cleaning keeps the budget and leaves at least ``min_rows`` bars, or None.

    Old bad prints (an exchange's first illiquid years) need not block a symbol whose recent
    bars are clean: the model is trained on those recent bars only. The stretch always ends at
    the last bar, so a feed that is bad now finds none and stays blocked. Bars without a
    timestamp cannot be placed in time and count as part of every stretch.
    """
    if not report.too_much or not len(frame):
        return None
    nat = np.iinfo("int64").min
    raw = pd.DatetimeIndex(_conform(frame)["timestamp"]).asi8
    timed = np.sort(raw[raw != nat])
    undated = len(raw) - len(timed)
    affected = report.affected_ns
    bad_undated = int(np.count_nonzero(affected == nat))
    bad = affected[affected != nat]
    for cut in np.unique(bad):
        # The stretch: every bar after the cut (a bad bar), so that the cut itself is left out.
        rows = len(timed) - int(np.searchsorted(timed, cut, side="right")) + undated
        still_bad = len(bad) - int(np.searchsorted(bad, cut, side="right")) + bad_undated
        if rows - still_bad < min_rows:
            return None
        if still_bad > policy.max_affected_fraction * rows:
            continue
        stamps = pd.to_datetime(frame["timestamp"], utc=True)
        kept = frame.loc[~(stamps <= pd.Timestamp(int(cut), tz="UTC")).to_numpy()]
        cleaned, stretch_report = clean_bars(kept, policy)
        after = int(np.searchsorted(timed, cut, side="right"))
        if stretch_report.too_much or stretch_report.clean_rows < min_rows or after == len(timed):
            continue
        first = int(timed[after])
        return CleanStretch(
            start=pd.Timestamp(first, tz="UTC"),
            left_out_rows=len(frame) - len(kept),
            left_out_affected=report.affected - stretch_report.affected,
            frame=cleaned,
            report=stretch_report,
        )
    return None
