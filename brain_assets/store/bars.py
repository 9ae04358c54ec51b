"""The bar store: OHLCV bars per (source, symbol, timeframe) and the batches that wrote them.

A *source* is where bars came from: an exchange id such as ``binance``, or ``files`` for bars
imported from CSV/Parquet files. The same symbol may be held by several sources; they are never
mixed. Every write is a *batch* (one exchange request, one file) recorded in ``bar_batches``
with what it brought: rows received, new, changed.

Writes are upserts keyed by ``(source, symbol, timeframe, open_time)``: storing the same bars
again adds nothing and rewrites nothing (counted neither new nor changed); a bar whose values
differ from the stored ones is overwritten and counted as changed.

What is refused (ValueError naming the field and the row, before anything is written): an
unknown timeframe, a missing or unparseable timestamp, a timestamp twice in one frame, a
timestamp not aligned to the timeframe (open times are multiples of the timeframe since
1970-01-01 UTC, so daily bars open at 00:00 UTC), a non-numeric, NaN or infinite price or volume.

What is kept: bad prints such as a zero price, a negative volume or high < low. The store keeps
what the source sent, so that the record of the feed is faithful; the retrain's cleaning policy
(``brain_assets/quality/cleaning.py``) drops or repairs such bars when it reads them, and logs
what it did.

Bars travel in PostgreSQL's binary COPY format, built and parsed with numpy: no float is ever
formatted as text, so values round-trip exactly, and a million bars load in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from brain_assets.calendar import parse_timestamps
from brain_assets.errors import BarsLockTimeoutError
from brain_assets.market_data.base import OHLCV_COLUMNS, require_ohlcv
from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase

# Bar lengths the store accepts, as exchanges name them (ccxt's timeframe strings).
TIMEFRAME_SECONDS: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1_800,
    "1h": 3_600,
    "2h": 7_200,
    "4h": 14_400,
    "6h": 21_600,
    "8h": 28_800,
    "12h": 43_200,
    "1d": 86_400,
}

VALUE_COLUMNS: tuple[str, ...] = OHLCV_COLUMNS[1:]
INVENTORY_COLUMNS: tuple[str, ...] = (
    "source",
    "symbol",
    "timeframe",
    "first_bar",
    "last_bar",
    "bars",
    "gaps",
    "missing_bars",
    "last_batch_at",
)

# Writers of one series take this advisory lock class (second key: hashtext of the series), so
# that two imports of the same bars serialise and count new and changed bars consistently.
BARS_LOCK_CLASS = 0x42415253  # "BARS"


def series_lock_key(source: str, symbol: str, timeframe: str) -> str:
    """The text whose hashtext is the series' second advisory lock key (with BARS_LOCK_CLASS)."""
    return "\x1f".join((source, symbol, timeframe))


# PostgreSQL's binary COPY: a header, then per row a field count and (length, value) per field,
# big-endian; timestamptz is int64 microseconds since 2000-01-01 UTC, float8 is IEEE 754.
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_HEADER = COPY_SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
_ROW_DTYPE = np.dtype(
    [("fields", ">i2"), ("time_len", ">i4"), ("time", ">i8")]
    + [item for name in VALUE_COLUMNS for item in ((f"{name}_len", ">i4"), (name, ">f8"))]
)
PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 UTC in microseconds since 1970
_COPY_CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class BarBatch:
    """What one ``store_bars`` call did. ``batch_id`` is None (and nothing was written) when the
    frame held no bars."""

    batch_id: int | None
    source: str
    symbol: str
    timeframe: str
    received: int
    new: int
    changed: int
    first_bar: pd.Timestamp | None
    last_bar: pd.Timestamp | None

    @property
    def unchanged(self) -> int:
        """Bars already stored with the same values (not rewritten)."""
        return self.received - self.new - self.changed


def check_timeframe(value: object, field: str = "timeframe") -> str:
    """``value`` when it is a known timeframe ('1m' ... '1d'); a ValueError otherwise."""
    if not isinstance(value, str) or value not in TIMEFRAME_SECONDS:
        known = ", ".join(TIMEFRAME_SECONDS)
        raise ValueError(f"{field} must be one of {known}; got {value!r}")
    return value


def timeframe_for_seconds(seconds: float) -> str | None:
    """The timeframe whose bars are ``seconds`` long, or None when none is."""
    for name, size in TIMEFRAME_SECONDS.items():
        if seconds == size:
            return name
    return None


def _row(position: int, nanos: np.ndarray) -> str:
    """``row 3 (2024-01-01 03:00:00+00:00)``: the position in the frame (from 0) and its time."""
    return f"row {position} ({pd.Timestamp(int(nanos[position]), tz='UTC')})"


def _validated_frame(
    frame: object, tf: str, *, where: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Epoch nanoseconds and float64 values of ``frame``'s bars, after every check."""
    frame = require_ohlcv(frame, where)
    stamps = parse_timestamps(frame["timestamp"], where=where)
    missing_time = np.flatnonzero(stamps.isna().to_numpy())
    if missing_time.size:
        raise ValueError(f"{where}: timestamp is missing at row {int(missing_time[0])}")
    nanos = pd.DatetimeIndex(stamps).asi8.copy()
    values: dict[str, np.ndarray] = {}
    for name in VALUE_COLUMNS:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column):
            raise ValueError(f"{where}: column {name!r} holds booleans, not numbers")
        try:
            numbers = pd.to_numeric(column, errors="raise").to_numpy(dtype="float64")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: column {name!r} is not numeric: {exc}") from exc
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            first = int(bad[0])
            raise ValueError(
                f"{where}: {name} at {_row(first, nanos)} is {numbers[first]}; prices and "
                f"volumes must be finite ({bad.size} such row(s))"
            )
        values[name] = numbers
    order = np.argsort(nanos, kind="stable")
    ordered = nanos[order]
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if repeated.size:
        first, second = sorted((int(order[repeated[0]]), int(order[repeated[0] + 1])))
        raise ValueError(
            f"{where}: timestamp {pd.Timestamp(int(ordered[repeated[0]]), tz='UTC')} appears "
            f"more than once (rows {first} and {second}); a frame holds each bar once"
        )
    step = TIMEFRAME_SECONDS[tf] * 1_000_000_000
    misaligned = np.flatnonzero(nanos % step != 0)
    if misaligned.size:
        anchor = "00:00 UTC" if tf == "1d" else f"multiples of {step // 1_000_000_000} s"
        raise ValueError(
            f"{where}: timestamp at {_row(int(misaligned[0]), nanos)} is not aligned to the "
            f"{tf} timeframe (bars open at {anchor} since 1970-01-01 UTC; "
            f"{misaligned.size} such row(s))"
        )
    return nanos, values


def _copy_rows(nanos: np.ndarray, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """The rows of a binary COPY into (open_time, open, high, low, close, volume)."""
    rows = np.empty(nanos.size, dtype=_ROW_DTYPE)
    rows["fields"] = 1 + len(VALUE_COLUMNS)
    rows["time_len"] = 8
    # Aligned to at least a minute, so whole microseconds.
    rows["time"] = nanos // 1_000 - PG_EPOCH_US
    for name in VALUE_COLUMNS:
        rows[f"{name}_len"] = 8
        rows[name] = values[name]
    return rows


def _parse_copy(data: bytes | bytearray) -> np.ndarray:
    """The rows of a binary COPY of (open_time, open, high, low, close, volume)."""
    if not data.startswith(COPY_SIGNATURE) or not data.endswith(COPY_TRAILER):
        raise RuntimeError("unexpected binary COPY stream from PostgreSQL")
    extension = int.from_bytes(data[15:19], "big")
    body = memoryview(data)[19 + extension : len(data) - len(COPY_TRAILER)]
    if len(body) % _ROW_DTYPE.itemsize:
        raise RuntimeError("unexpected row size in the binary COPY stream from PostgreSQL")
    rows = np.frombuffer(body, dtype=_ROW_DTYPE)
    lengths = [rows["time_len"], *(rows[f"{name}_len"] for name in VALUE_COLUMNS)]
    if rows.size and (
        np.any(rows["fields"] != 1 + len(VALUE_COLUMNS)) or any(np.any(x != 8) for x in lengths)
    ):
        raise RuntimeError("unexpected field layout in the binary COPY stream from PostgreSQL")
    return rows


def empty_bars() -> pd.DataFrame:
    """A zero-row frame with ``load_bars``' columns and dtypes."""
    return pd.DataFrame(
        {
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            **{name: pd.Series([], dtype="float64") for name in VALUE_COLUMNS},
        }
    )


def _utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _open_batch(
    cur: psycopg.Cursor[Any],
    series: Mapping[str, str],
    bounds: tuple[pd.Timestamp, pd.Timestamp],
    received: int,
    details: str,
) -> int:
    """Insert the batch's row (its counts of new and changed bars still 0); its batch_id."""
    cur.execute(
        """INSERT INTO bar_batches (source, symbol, timeframe, first_bar, last_bar,
               rows_received, rows_new, rows_changed, details)
           VALUES (%(source)s, %(symbol)s, %(timeframe)s, %(first)s, %(last)s,
               %(received)s, 0, 0, %(details)s::jsonb)
           RETURNING batch_id""",
        {
            **series,
            "first": bounds[0].to_pydatetime(),
            "last": bounds[1].to_pydatetime(),
            "received": received,
            "details": details,
        },
    )
    created = cur.fetchone()
    assert created is not None
    return int(created[0])


def _copy_into_import_table(cur: psycopg.Cursor[Any], rows: np.ndarray) -> None:
    """Load ``rows`` into the temporary table bar_import (created here) by binary COPY."""
    # ON COMMIT DROP for safety; store_bars drops it too, so that several calls can share
    # one transaction (brain.transaction()).
    cur.execute(
        """CREATE TEMP TABLE bar_import (
               open_time timestamptz NOT NULL, open float8 NOT NULL,
               high float8 NOT NULL, low float8 NOT NULL, close float8 NOT NULL,
               volume float8 NOT NULL) ON COMMIT DROP"""
    )
    with cur.copy(
        "COPY bar_import (open_time, open, high, low, close, volume) FROM STDIN (FORMAT binary)"
    ) as copy:
        copy.write(COPY_HEADER)
        for start in range(0, rows.size, _COPY_CHUNK_ROWS):
            copy.write(rows[start : start + _COPY_CHUNK_ROWS].tobytes())
        copy.write(COPY_TRAILER)


def _upsert_imported(
    cur: psycopg.Cursor[Any], series: Mapping[str, str], batch_id: int
) -> tuple[int, int]:
    """Upsert bar_import's rows into the series as batch ``batch_id``; (new, changed)."""
    # Sorted so that concurrent writers of overlapping series lock rows in one order;
    # xmax = 0 marks a freshly inserted row, an updated one has its updater's xid.
    cur.execute(
        """WITH upserted AS (
               INSERT INTO bars AS b (source, symbol, timeframe, open_time,
                   open, high, low, close, volume, batch_id)
               SELECT %(source)s, %(symbol)s, %(timeframe)s, open_time,
                   open, high, low, close, volume, %(batch_id)s
               FROM bar_import ORDER BY open_time
               ON CONFLICT (source, symbol, timeframe, open_time) DO UPDATE
               SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
                   close = EXCLUDED.close, volume = EXCLUDED.volume,
                   batch_id = EXCLUDED.batch_id
               WHERE (b.open, b.high, b.low, b.close, b.volume)
                   IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low,
                                     EXCLUDED.close, EXCLUDED.volume)
               RETURNING (b.xmax = 0) AS inserted)
           SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
           FROM upserted""",
        {**series, "batch_id": batch_id},
    )
    counted = cur.fetchone()
    assert counted is not None
    return int(counted[0]), int(counted[1])


class BarsMixin(StoreBase):
    def store_bars(
        self,
        source: str,
        symbol: str,
        timeframe: str,
        frame: pd.DataFrame,
        *,
        details: Mapping[str, Any] | None = None,
    ) -> BarBatch:
        """Upsert ``frame``'s bars into the series (source, symbol, timeframe) as one batch.

        ``frame`` has columns ``timestamp`` (tz-aware, naive = UTC, ISO-8601 text or epoch
        milliseconds), ``open, high, low, close, volume``; other columns are ignored, row order
        does not matter. ``details`` (JSON) records where the batch came from, e.g. the file or
        the exchange request. One transaction: the batch row and its bars, or nothing. An empty
        frame writes nothing and returns a BarBatch with ``batch_id`` None and ``received`` 0.
        See the module docstring for what is refused and what is kept.
        """
        source = check.text(source, "source", max_length=64)
        name = check.symbol(symbol)
        tf = check_timeframe(timeframe)
        document = check.json_document(details, "details")
        where = f"bars of {name!r} ({source}, {tf})"
        nanos, values = _validated_frame(frame, tf, where=where)
        if nanos.size == 0:
            return BarBatch(None, source, name, tf, 0, 0, 0, None, None)
        first = pd.Timestamp(int(nanos.min()), tz="UTC")
        last = pd.Timestamp(int(nanos.max()), tz="UTC")
        rows = _copy_rows(nanos, values)
        series = {"source": source, "symbol": name, "timeframe": tf}
        with self.transaction() as conn, conn.cursor() as cur:
            with self._waiting_for_lock(
                BarsLockTimeoutError,
                f"the import lock of the {tf} bars of {name!r} from source {source!r}",
                "another import of the same series",
            ):
                cur.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    (BARS_LOCK_CLASS, series_lock_key(source, name, tf)),
                )
            batch_id = _open_batch(cur, series, (first, last), int(nanos.size), document)
            _copy_into_import_table(cur, rows)
            new, changed = _upsert_imported(cur, series, batch_id)
            cur.execute(
                "UPDATE bar_batches SET rows_new = %s, rows_changed = %s WHERE batch_id = %s",
                (new, changed, batch_id),
            )
            cur.execute("DROP TABLE bar_import")
        return BarBatch(batch_id, source, name, tf, int(nanos.size), new, changed, first, last)

    def load_bars(
        self,
        source: str,
        symbol: str,
        timeframe: str,
        *,
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """The series' bars with open time in [start, end] (both inclusive, either optional),
        sorted by time: columns ``timestamp`` (datetime64[ns, UTC]), ``open, high, low, close,
        volume``. An empty frame with the same columns when there are none."""
        first = check.optional_timestamp(start, "start")
        last = check.optional_timestamp(end, "end")
        if first is not None and last is not None and first > last:
            raise ValueError("start must not be after end")
        params = {
            "source": check.text(source, "source", max_length=64),
            "symbol": check.symbol(symbol),
            "timeframe": check_timeframe(timeframe),
            "start": first,
            "end": last,
        }
        data = bytearray()
        with (
            self.transaction() as conn,
            conn.cursor() as cur,
            cur.copy(
                """COPY (SELECT open_time, open, high, low, close, volume FROM bars
                         WHERE source = %(source)s AND symbol = %(symbol)s
                           AND timeframe = %(timeframe)s
                           AND (%(start)s::timestamptz IS NULL OR open_time >= %(start)s)
                           AND (%(end)s::timestamptz IS NULL OR open_time <= %(end)s)
                         ORDER BY open_time)
                   TO STDOUT (FORMAT binary)""",
                params,
            ) as copy,
        ):
            for block in copy:
                data += block
        rows = _parse_copy(data)
        if rows.size == 0:
            return empty_bars()
        nanos = (rows["time"].astype(np.int64) + PG_EPOCH_US) * 1_000
        frame = pd.DataFrame(
            {
                "timestamp": pd.to_datetime(nanos, unit="ns", utc=True),
                **{name: rows[name].astype(np.float64) for name in VALUE_COLUMNS},
            }
        )
        frame["timestamp"] = frame["timestamp"].astype("datetime64[ns, UTC]")
        return frame

    def last_bar_time(self, source: str, symbol: str, timeframe: str) -> pd.Timestamp | None:
        """Open time of the series' latest bar, or None when it holds none."""
        rows = self._rows(
            """SELECT max(open_time) AS last FROM bars
               WHERE source = %s AND symbol = %s AND timeframe = %s""",
            (
                check.text(source, "source", max_length=64),
                check.symbol(symbol),
                check_timeframe(timeframe),
            ),
        )
        return _utc(rows[0]["last"]) if rows else None

    def bar_sources(self, symbol: str, timeframe: str) -> list[str]:
        """The sources holding bars of ``symbol`` at ``timeframe``, sorted."""
        # Candidates from the (small) batch table, confirmed on the bars' primary key.
        rows = self._rows(
            """SELECT s.source FROM (SELECT DISTINCT source FROM bar_batches
                                     WHERE symbol = %(symbol)s AND timeframe = %(timeframe)s) s
               WHERE EXISTS (SELECT 1 FROM bars b WHERE b.source = s.source
                             AND b.symbol = %(symbol)s AND b.timeframe = %(timeframe)s)
               ORDER BY s.source""",
            {"symbol": check.symbol(symbol), "timeframe": check_timeframe(timeframe)},
        )
        return [str(row["source"]) for row in rows]

    def bar_inventory(self, symbol: str | None = None) -> pd.DataFrame:
        """One row per series (source, symbol, timeframe), optionally of one symbol: first and
        last bar, bars, gaps (consecutive open times further apart than the timeframe),
        missing_bars (bars those gaps lack) and last_batch_at (the latest batch's time)."""
        rows = self._rows(
            """SELECT s.source, s.symbol, s.timeframe, st.first_bar, st.last_bar, st.bars,
                      st.gaps, st.missing_bars, s.last_batch_at
               FROM (SELECT source, symbol, timeframe, max(fetched_at) AS last_batch_at
                     FROM bar_batches
                     WHERE %(symbol)s::text IS NULL OR symbol = %(symbol)s
                     GROUP BY source, symbol, timeframe) s
               JOIN unnest(%(names)s::text[], %(seconds)s::bigint[]) AS tf (timeframe, seconds)
                 ON tf.timeframe = s.timeframe
               CROSS JOIN LATERAL (
                   SELECT min(open_time) AS first_bar, max(open_time) AS last_bar,
                          count(*) AS bars,
                          count(*) FILTER (WHERE step > tf.seconds) AS gaps,
                          coalesce(sum(step / tf.seconds - 1) FILTER (WHERE step > tf.seconds),
                                   0)::bigint AS missing_bars
                   FROM (SELECT open_time,
                                extract(epoch FROM open_time - lag(open_time)
                                        OVER (ORDER BY open_time))::bigint AS step
                         FROM bars b
                         WHERE b.source = s.source AND b.symbol = s.symbol
                           AND b.timeframe = s.timeframe) w) st
               WHERE st.bars > 0
               ORDER BY s.symbol, s.timeframe, s.source""",
            {
                "symbol": None if symbol is None else check.symbol(symbol),
                "names": list(TIMEFRAME_SECONDS),
                "seconds": list(TIMEFRAME_SECONDS.values()),
            },
        )
        frame = self._frame(rows, INVENTORY_COLUMNS)
        for name in ("first_bar", "last_bar", "last_batch_at"):
            frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[ns, UTC]")
        for name in ("bars", "gaps", "missing_bars"):
            frame[name] = frame[name].astype("int64")
        return frame
