"""From raw exchange bars to bars a model may use: cleaning, the OHLCV checks and gap counts.

One function for every consumer of bars (the retrain, live monitoring, the nightly analysis), so
that a bar dropped as a bad print in training is dropped in monitoring too, and the same
Pandera schema guards both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from brain_assets.features.gaps import GapReport, gap_affected_rows
from brain_assets.pipeline.settings import RetrainSettings
from brain_assets.quality.cleaning import (
    CleaningReport,
    CleanStretch,
    clean_bars,
    recent_clean_stretch,
)
from brain_assets.quality.run import CheckOutcome, FailureCase, ohlcv_checks
from brain_assets.store.quality import CLEANING_CHECK

CLEANING_LIMIT = "cleaning_limit"


@dataclass(frozen=True)
class PreparedBars:
    """One symbol's bars after the cleaning policy, with the verdict of the bar checks.

    ``valid`` is the blocking ``ohlcv_valid`` outcome on the cleaned bars; it also fails when the
    cleaning dropped or repaired more than the policy's fraction of the raw bars, so that a broken
    feed never trains however well its remains look. ``gaps`` is None when the bars are not in
    order (then ``valid`` has failed already and nothing downstream runs).
    """

    symbol: str
    frame: pd.DataFrame
    cleaning: CleaningReport
    valid: CheckOutcome
    gap_check: CheckOutcome
    gaps: GapReport | None
    left_out: CleanStretch | None = None
    """Set when the whole history broke the cleaning budget and only its recent stretch is
    used: ``cleaning`` is then that stretch's, and this says what was left out and why."""

    @property
    def usable(self) -> bool:
        return self.valid.passed

    def outcomes(self) -> dict[str, CheckOutcome]:
        return {"ohlcv_valid": self.valid, "ohlcv_gaps": self.gap_check}

    def cleaning_record(self, run_id: str | None) -> dict[str, Any]:
        """The ``data_quality_logs`` row of the cleaning applied (the checks log their own)."""
        cleaning = self.cleaning
        severity = "ERROR" if cleaning.too_much else ("WARN" if cleaning.actions else "INFO")
        message = cleaning.summary()
        if self.left_out is not None:
            severity = "ERROR" if cleaning.too_much else "WARN"
            message = f"{message}; {self.left_out.reason()}"
        return {
            "symbol": self.symbol,
            "check_name": CLEANING_CHECK,
            "severity": severity,
            "passed": not cleaning.too_much,
            "failure_count": cleaning.affected,
            "details": {
                "message": message,
                "rows": cleaning.raw_rows,
                "left_out": None if self.left_out is None else self.left_out.to_dict(),
                "cleaning": cleaning.to_dict(),
                "gaps": None if self.gaps is None else self.gaps.to_dict(),
                "usable": self.usable,
                "run_id": run_id,
            },
        }

    def health(self) -> dict[str, Any]:
        """The symbol's data health for the ``data_quality`` asset (JSON-friendly)."""
        return {
            "symbol": self.symbol,
            "usable": self.usable,
            "raw_rows": self.cleaning.raw_rows,
            "clean_rows": self.cleaning.clean_rows,
            "cleaning": self.cleaning.to_dict(),
            "left_out": None if self.left_out is None else self.left_out.to_dict(),
            "gaps": None if self.gaps is None else self.gaps.to_dict(),
            "checks": [
                {
                    "check_name": o.check_name,
                    "severity": o.severity,
                    "passed": o.passed,
                    "failure_count": o.failure_count,
                    "message": o.message,
                }
                for o in (self.valid, self.gap_check)
            ],
        }


def _sorted_unique(frame: pd.DataFrame) -> bool:
    stamps = pd.DatetimeIndex(frame["timestamp"])
    return bool(stamps.is_monotonic_increasing and stamps.is_unique and not stamps.hasnans)


def _with_limit(valid: CheckOutcome, cleaning: CleaningReport) -> CheckOutcome:
    """``valid`` failed with a ``cleaning_limit`` case when the cleaning went too far."""
    if not cleaning.too_much:
        return valid
    case: FailureCase = {
        "column": None,
        "check": CLEANING_LIMIT,
        "index": None,
        "failure_case": (
            f"{cleaning.affected} of {cleaning.raw_rows} raw bars dropped or repaired "
            f"({cleaning.affected_fraction:.2%}), more than the limit of "
            f"{cleaning.max_affected_fraction:.2%}: the feed looks broken"
        ),
    }
    count = valid.failure_count + 1
    return dataclasses.replace(
        valid,
        passed=False,
        failure_count=count,
        failure_cases=[case, *valid.failure_cases],
        message=(
            f"ohlcv_valid: {count} failure(s) on {valid.row_count} row(s); {case['failure_case']}"
        ),
    )


def _with_gap_rows(gap_check: CheckOutcome, gaps: GapReport | None) -> CheckOutcome:
    """The gap warning, saying how many modelling rows the gaps took out of training."""
    if gaps is None:
        return gap_check
    return dataclasses.replace(gap_check, message=f"{gap_check.message}; {gaps.summary()}")


def prepare_bars(symbol: str, raw: pd.DataFrame, settings: RetrainSettings) -> PreparedBars:
    """Clean ``raw`` under ``settings.cleaning`` and judge the result with the OHLCV schema.

    Over the cleaning budget, the longest recent stretch that keeps it is used instead, when
    the policy allows and one of at least ``settings.min_rows`` bars exists (``left_out``)."""
    frame, cleaning = clean_bars(raw, settings.cleaning)
    left_out = None
    if cleaning.too_much and settings.cleaning.recent_stretch:
        left_out = recent_clean_stretch(
            raw, cleaning, settings.cleaning, min_rows=settings.min_rows
        )
        if left_out is not None:
            frame, cleaning = left_out.frame, left_out.report
    valid, gap_check = ohlcv_checks(
        frame, min_rows=settings.min_rows, max_gap_bars=settings.max_gap_bars
    )
    gaps = None
    if "timestamp" in frame.columns and len(frame) and _sorted_unique(frame):
        _, gaps = gap_affected_rows(
            pd.DatetimeIndex(frame["timestamp"]),
            horizon=settings.horizon,
            max_gap_bars=settings.max_gap_bars,
        )
    return PreparedBars(
        symbol=symbol,
        frame=frame,
        cleaning=cleaning,
        valid=_with_limit(valid, cleaning),
        gap_check=_with_gap_rows(gap_check, gaps),
        gaps=gaps,
        left_out=left_out,
    )
