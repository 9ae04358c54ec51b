"""Checks at the store's boundary: bad input fails with a ValueError naming the field, before any
SQL runs, so that nothing is written."""

from __future__ import annotations

import json
import math
import numbers
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from brain_assets.regimes.classify import REGIMES

SEVERITIES = ("INFO", "WARN", "ERROR")
MAX_SYMBOL_LENGTH = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text(value: object, field: str, *, max_length: int = 200) -> str:
    """A non-blank string without control characters, returned verbatim."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{field} must not be empty or blank")
    if value != value.strip():
        raise ValueError(f"{field} must not start or end with whitespace: {value!r}")
    if _CONTROL.search(value):
        raise ValueError(f"{field} must not contain control characters: {value!r}")
    if len(value) > max_length:
        raise ValueError(f"{field} is longer than {max_length} characters")
    return value


def symbol(value: object, field: str = "symbol") -> str:
    return text(value, field, max_length=MAX_SYMBOL_LENGTH)


def finite(value: object, field: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{field} must be a real number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{field} must be finite, got {number}")
    return number


def positive_int(value: object, field: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{field} must be an integer, got {type(value).__name__}")
    if int(value) < 1:
        raise ValueError(f"{field} must be at least 1, got {value}")
    return int(value)


def metrics(values: object, field: str = "metrics") -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise ValueError(f"{field} must be a mapping of metric name to number")
    if not values:
        raise ValueError(f"{field} must not be empty")
    return {
        text(name, f"{field} name"): finite(value, f"{field}[{name!r}]")
        for name, value in values.items()
    }


def importances(values: object, field: str = "importances") -> list[tuple[str, float]]:
    """A mapping feature -> importance, a Series indexed by feature, or a DataFrame with columns
    ``feature`` and ``importance``."""
    pairs: Iterable[tuple[object, object]]
    if isinstance(values, pd.DataFrame):
        missing = {"feature", "importance"} - set(values.columns)
        if missing:
            raise ValueError(f"{field} DataFrame lacks column(s) {sorted(missing)}")
        pairs = zip(values["feature"].tolist(), values["importance"].tolist(), strict=True)
    elif isinstance(values, pd.Series | Mapping):
        pairs = values.items()
    else:
        raise ValueError(
            f"{field} must be a mapping feature -> importance, a Series or a DataFrame, "
            f"got {type(values).__name__}"
        )
    result: list[tuple[str, float]] = []
    seen: set[str] = set()
    for feature, importance in pairs:
        name = text(feature, f"{field} feature")
        if name in seen:
            raise ValueError(f"{field}: feature {name!r} appears more than once")
        seen.add(name)
        result.append((name, finite(importance, f"{field}[{name!r}]")))
    if not result:
        raise ValueError(f"{field} must not be empty")
    return result


def timestamp(value: object, field: str) -> datetime:
    """A timezone-aware datetime; naive values are taken as UTC (crypto bars are UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{field} is not an ISO-8601 timestamp: {value!r}") from exc
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            raise ValueError(f"{field} must not be NaT")
        value = value.to_pydatetime()
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise ValueError(f"{field} must be a datetime, got {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def optional_timestamp(value: object, field: str) -> datetime | None:
    return None if value is None else timestamp(value, field)


def regime(value: object) -> str | None:
    if value is None:
        return None
    if value not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)} or None, got {value!r}")
    return str(value)


def severity(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {value!r}")
    normalised = {"WARNING": "WARN"}.get(value.upper(), value.upper())
    if normalised not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {value!r}")
    return normalised


def artifact(value: object, name: str = "artifact") -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"{name} must be bytes, got {type(value).__name__}")
    data = bytes(value)
    if not data:
        raise ValueError(f"{name} must not be empty")
    return data


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_document(value: object, field: str) -> str:
    """A JSON text for a jsonb column: a mapping, no NaN or infinity (PostgreSQL rejects them)."""
    if value is None:
        return "{}"
    if not isinstance(value, Mapping):
        raise ValueError(f"{field} must be a mapping, got {type(value).__name__}")
    try:
        return json.dumps(dict(value), allow_nan=False, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{field} is not JSON serialisable without NaN or infinity: {exc}"
        ) from exc


def names(values: object, field: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValueError(f"{field} must be a list of strings")
    result = [text(item, f"{field} entry") for item in values]
    duplicates = sorted(item for item, count in Counter(result).items() if count > 1)
    if duplicates:
        raise ValueError(f"{field} has duplicates: {duplicates}")
    return result


def failure_count(value: object) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"failure_count must be an integer, got {type(value).__name__}")
    if int(value) < 0:
        raise ValueError(f"failure_count must be >= 0, got {value}")
    return int(value)
