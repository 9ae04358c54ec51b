"""Run a pandera schema and report the result as a plain, JSON-friendly outcome.

Dagster-free on purpose: the Dagster asset checks wrap these outcomes, and tests and the
command line can use them directly. Only pandera's own validation errors become a failed
outcome; any other exception is a bug and propagates.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pandera.errors as pa_errors
import pandera.pandas as pa

from brain_assets.market_data.base import OHLCV_COLUMNS
from brain_assets.quality.schemas import (
    DEFAULT_MAX_GAP_BARS,
    FeaturesSchema,
    OHLCVSchema,
    gap_schema,
)

Severity = Literal["ERROR", "WARN"]
SEVERITIES: tuple[str, ...] = ("ERROR", "WARN")

# Enough to show the pattern of a failure without bloating the event log with every bad row.
MAX_FAILURE_CASES = 20

# A whole failing row can be wide (every feature); its text is cut to stay readable.
MAX_CASE_CHARS = 400

ENOUGH_ROWS = "enough_rows"
COLUMNS_PRESENT = "column_in_dataframe"

FailureCase = dict[str, Any]
Schema = type[pa.DataFrameModel] | pa.DataFrameSchema


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one data-quality check.

    ``failure_cases`` holds at most :data:`MAX_FAILURE_CASES` dicts with keys ``column``,
    ``check``, ``index`` and ``failure_case`` (a string), all JSON-serialisable;
    ``failure_count`` counts every failure, including those not listed.
    """

    check_name: str
    passed: bool
    severity: Severity
    failure_count: int
    failure_cases: list[FailureCase] = field(default_factory=list)
    row_count: int = 0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The outcome as a plain dict (for JSON or Dagster metadata)."""
        return asdict(self)


def _json_scalar(value: Any) -> str | int | None:
    """``value`` as something json.dumps accepts: an int, a string, or None for missing."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return int(value)
    return str(value)


def _case_text(value: Any) -> str | None:
    """The failing value as text; None only when pandera gives nothing at all."""
    if value is None:
        return None
    return str(value)


def _failure_cases(cases: pd.DataFrame | None) -> tuple[int, list[FailureCase]]:
    """The number of failures and the first few as JSON-friendly dicts.

    pandera reports a failing row of a dataframe-level check once per column; those rows are
    merged into one case per (check, row) whose ``failure_case`` shows the row's values, so a
    bad candle counts as one failure, not six.
    """
    if cases is None or len(cases) == 0:
        return 0, []
    frame = cases.reset_index(drop=True)
    context = frame.get("schema_context", pd.Series("", index=frame.index)).astype(str)
    index = frame.get("index", pd.Series(None, index=frame.index, dtype=object))
    whole_row = (context == "DataFrameSchema") & index.notna()
    per_row_key = frame["check"].astype(str) + "\x00" + index.astype(str)
    own_key = pd.Series(frame.index.astype(str), index=frame.index)
    codes, uniques = pd.factorize(per_row_key.where(whole_row, own_key))

    rows: list[FailureCase] = []
    for code in range(min(len(uniques), MAX_FAILURE_CASES)):
        group = frame.loc[codes == code]
        first = group.iloc[0]
        column: Any
        text: str | None
        if bool(whole_row.loc[group.index[0]]):
            values = "; ".join(
                f"{name}={value}"
                for name, value in zip(group["column"], group["failure_case"], strict=True)
            )
            column, text = None, values[:MAX_CASE_CHARS]
        else:
            column, text = first.get("column"), _case_text(first.get("failure_case"))
        rows.append(
            {
                "column": None if column is None else str(column),
                "check": str(first.get("check")),
                "index": _json_scalar(first.get("index")),
                "failure_case": text,
            }
        )
    return len(uniques), rows


def _check_severity(severity: str) -> Severity:
    """``severity`` when it is ERROR or WARN; a ValueError naming it otherwise."""
    if severity == "ERROR":
        return "ERROR"
    if severity == "WARN":
        return "WARN"
    raise ValueError(f"severity: expected one of {list(SEVERITIES)}, got {severity!r}")


def _enough_rows_case(row_count: int, needed: int) -> FailureCase:
    """The failure case of a frame with fewer than ``needed`` rows."""
    return {
        "column": None,
        "check": ENOUGH_ROWS,
        "index": None,
        "failure_case": f"{row_count} row(s), at least {needed} needed",
    }


def _outcome(
    check_name: str,
    severity: Severity,
    row_count: int,
    cases: list[FailureCase],
    failure_count: int,
    detail: str = "",
) -> CheckOutcome:
    """An outcome with its one-line message (plus ``detail``), keeping the first few cases."""
    if failure_count == 0:
        message = f"{check_name}: passed on {row_count} row(s)"
    else:
        names = ", ".join(dict.fromkeys(str(case["check"]) for case in cases))
        message = f"{check_name}: {failure_count} failure(s) on {row_count} row(s) in {names}"
    if detail:
        message = f"{message}; {detail}"
    return CheckOutcome(
        check_name=check_name,
        passed=failure_count == 0,
        severity=severity,
        failure_count=failure_count,
        failure_cases=cases[:MAX_FAILURE_CASES],
        row_count=row_count,
        message=message,
    )


def _needed_rows(min_rows: int | None) -> int:
    """Rows a frame needs: ``min_rows``, or 1 when not given (empty never passes by default)."""
    if min_rows is None:
        return 1
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 0:
        raise ValueError(f"min_rows: expected an integer >= 0, got {min_rows!r}")
    return min_rows


def run_check(
    check_name: str,
    schema: Schema,
    df: pd.DataFrame,
    *,
    severity: Severity,
    min_rows: int | None = None,
) -> CheckOutcome:
    """Validate ``df`` against ``schema`` (lazily, collecting every failure) into an outcome.

    A frame with fewer than ``min_rows`` rows (by default: an empty frame) fails with an
    ``enough_rows`` failure case in addition to whatever the schema reports: an empty frame
    passes most schemas vacuously, which must not count as good data. ``min_rows=0`` accepts an
    empty frame.
    """
    level = _check_severity(severity)
    needed = _needed_rows(min_rows)
    row_count = len(df)

    cases: list[FailureCase] = []
    failure_count = 0
    if row_count < needed:
        failure_count += 1
        cases.append(_enough_rows_case(row_count, needed))

    try:
        with warnings.catch_warnings():
            # pandera's failure-case report concatenates frames in a way pandas 2.x warns about;
            # the warning is about pandera internals, not about the data being checked.
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"pandera(\.|$)")
            schema.validate(df, lazy=True)
    except pa_errors.SchemaErrors as exc:
        count, listed = _failure_cases(exc.failure_cases)
        failure_count += count
        cases.extend(listed)
    except pa_errors.SchemaError as exc:
        # Raised instead of SchemaErrors for a few whole-frame problems, even when lazy.
        count, listed = _failure_cases(getattr(exc, "failure_cases", None))
        if count == 0:
            count = 1
            listed = [
                {
                    "column": None,
                    "check": str(getattr(exc, "check", None) or "schema"),
                    "index": None,
                    "failure_case": str(exc),
                }
            ]
        failure_count += count
        cases.extend(listed)
    return _outcome(check_name, level, row_count, cases, failure_count)


def ohlcv_checks(
    df: pd.DataFrame, *, min_rows: int, max_gap_bars: float = DEFAULT_MAX_GAP_BARS
) -> list[CheckOutcome]:
    """The OHLCV checks: ``ohlcv_valid`` (ERROR) then ``ohlcv_gaps`` (WARN).

    Missing columns make ``ohlcv_valid`` fail with a ``column_in_dataframe`` case per column
    (and ``ohlcv_gaps`` too when ``timestamp`` is the one missing) rather than raise. An empty
    frame is the ERROR check's business: ``ohlcv_gaps`` passes on it.
    """
    needed = _needed_rows(min_rows)
    missing = [name for name in OHLCV_COLUMNS if name not in df.columns]
    if missing:
        cases: list[FailureCase] = [
            {"column": name, "check": COLUMNS_PRESENT, "index": None, "failure_case": name}
            for name in missing
        ]
        if len(df) < needed:
            cases.append(_enough_rows_case(len(df), needed))
        detail = f"missing column(s) {missing}"
        valid = _outcome("ohlcv_valid", "ERROR", len(df), cases, len(cases), detail)
    else:
        valid = run_check("ohlcv_valid", OHLCVSchema, df, severity="ERROR", min_rows=needed)
    if "timestamp" in df.columns:
        gaps = run_check("ohlcv_gaps", gap_schema(max_gap_bars), df, severity="WARN", min_rows=0)
    else:
        case: FailureCase = {
            "column": "timestamp",
            "check": COLUMNS_PRESENT,
            "index": None,
            "failure_case": "timestamp",
        }
        gaps = _outcome("ohlcv_gaps", "WARN", len(df), [case], 1, "missing column ['timestamp']")
    return [valid, gaps]


def features_checks(df: pd.DataFrame, *, min_rows: int = 1) -> list[CheckOutcome]:
    """The features check ``features_valid`` (ERROR): finite floats, unique increasing index."""
    return [run_check("features_valid", FeaturesSchema, df, severity="ERROR", min_rows=min_rows)]
