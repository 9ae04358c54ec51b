"""Values handed between assets, stored in PostgreSQL without pickle.

DataFrames travel as Parquet, everything else as strict JSON (no NaN, no infinity). A write of
several partitions is one transaction.

Values are kept per run, so that two runs at once never read each other's: a run reads the value
it wrote itself, else the *published* value of the partition, which is the latest value written
by a run that completed successfully (``publish_run``, called when a run succeeds). A run's
values are unpublished until then; a write made outside any run (``run_id=None``) is published
as it is written. Publishing removes the published value it supersedes, so each (asset,
partition) keeps one published value plus the values of runs not yet published or pruned.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pandas as pd
import psycopg

from brain_assets.errors import PublishLockTimeoutError
from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase

# The run id of values written outside any run; such values are published as they are written.
NO_RUN = ""
# Publications serialise on this advisory lock (class, key), so that two runs publishing the same
# partition at once cannot both keep a published value.
PUBLISH_LOCK = (0x42524150, 0)
# Unpublished values older than this are left by runs that failed or never finished.
DEFAULT_UNPUBLISHED_RETENTION = timedelta(days=7)
# A lock-timeout error lists at most this many partitions per asset: enough to recognise the
# values, short enough to read when a run wrote hundreds.
_NAMED_PARTITIONS = 5


def encode_value(value: object) -> tuple[str, bytes]:
    if isinstance(value, pd.DataFrame):
        buffer = io.BytesIO()
        value.to_parquet(buffer, index=True)
        return "parquet", buffer.getvalue()
    try:
        return "json", json.dumps(value, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"asset value of type {type(value).__name__} is neither a DataFrame nor strict JSON: "
            f"{exc}"
        ) from exc


def describe_values(pairs: Sequence[tuple[str, str]]) -> str:
    """``(asset_key, partition_key)`` pairs for people: each asset with its partitions."""
    by_asset: dict[str, list[str]] = {}
    for asset, partition in pairs:
        by_asset.setdefault(asset, []).append(partition)
    described = []
    for asset, partitions in by_asset.items():
        named = ", ".join(repr(key) for key in partitions[:_NAMED_PARTITIONS])
        more = len(partitions) - _NAMED_PARTITIONS
        described.append(
            f"asset {asset!r} partition(s) {named}" + (f" and {more} more" if more > 0 else "")
        )
    return "; ".join(described) if described else "no values"


def decode_value(fmt: str, data: bytes) -> Any:
    if fmt == "parquet":
        return pd.read_parquet(io.BytesIO(data))
    if fmt == "json":
        return json.loads(data)
    raise ValueError(f"unknown asset value format {fmt!r}")


class AssetValuesMixin(StoreBase):
    def put_asset_values(
        self, asset_key: str, values: Mapping[str, object], *, run_id: str | None = None
    ) -> int:
        """Store ``{partition_key: value}`` for one asset as ``run_id``'s values (all or nothing).

        A run's values replace only its own earlier values and stay unpublished until
        ``publish_run``; with ``run_id=None`` they are published at once.
        """
        asset_key = check.text(asset_key, "asset_key")
        run = NO_RUN if run_id is None else check.text(run_id, "run_id")
        rows = [(key, *encode_value(value)) for key, value in values.items()]
        with self.transaction() as conn:
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO asset_values
                           (asset_key, partition_key, run_id, format, value, published)
                       VALUES (%s, %s, %s, %s, %s, false)
                       ON CONFLICT (asset_key, partition_key, run_id) DO UPDATE
                       SET format = EXCLUDED.format, value = EXCLUDED.value,
                           published = false, written_at = clock_timestamp()""",
                    [(asset_key, key, run, fmt, data) for key, fmt, data in rows],
                )
            if run == NO_RUN:
                written = describe_values([(asset_key, key) for key, _, _ in rows])
                self._publish(conn, NO_RUN, f"the values just written outside a run: {written}")
        return len(rows)

    def get_asset_values(
        self, asset_key: str, partition_keys: Sequence[str], *, run_id: str | None = None
    ) -> dict[str, Any]:
        """``{partition_key: value}``: per partition, the value ``run_id`` wrote if it wrote one,
        else the published value; never another run's unpublished value. A partition with
        neither is a clear error naming it."""
        asset_key = check.text(asset_key, "asset_key")
        run = None if run_id is None else check.text(run_id, "run_id")
        rows = self._rows(
            """SELECT DISTINCT ON (partition_key) partition_key, format, value
               FROM asset_values
               WHERE asset_key = %(asset)s AND partition_key = ANY(%(keys)s)
                 AND (published OR run_id = %(run)s)
               ORDER BY partition_key, run_id = %(run)s DESC NULLS LAST""",
            {"asset": asset_key, "keys": list(partition_keys), "run": run},
        )
        found = {
            row["partition_key"]: decode_value(row["format"], bytes(row["value"])) for row in rows
        }
        missing = [key for key in partition_keys if key not in found]
        if missing:
            raise LookupError(
                f"asset {asset_key!r} has no stored value for partition(s) {missing}; "
                "materialise it for those symbols first"
            )
        return {key: found[key] for key in partition_keys}

    def unpublished_runs(self, asset_key: str, partition_keys: Sequence[str]) -> list[str]:
        """The runs whose unpublished values of these partitions are newer than the published
        ones: the runs that may still be running, or that ended but were never published."""
        asset_key = check.text(asset_key, "asset_key")
        rows = self._rows(
            """SELECT v.run_id, max(v.written_at) AS newest FROM asset_values v
               WHERE v.asset_key = %s AND v.partition_key = ANY(%s) AND NOT v.published
                 AND NOT EXISTS (
                     SELECT 1 FROM asset_values p
                     WHERE p.published AND p.asset_key = v.asset_key
                       AND p.partition_key = v.partition_key AND p.written_at > v.written_at)
               GROUP BY v.run_id ORDER BY newest, v.run_id""",
            (asset_key, list(partition_keys)),
        )
        return [row["run_id"] for row in rows]

    def publish_run(self, run_id: str) -> int:
        """Make ``run_id``'s values the published ones (one transaction), as when the run has
        completed successfully; returns how many values it published.

        Each replaces the partition's older published value; a value older than the published one
        (a run that started earlier but published later) is superseded and deleted instead.
        """
        run = check.text(run_id, "run_id")
        with self.transaction() as conn:
            # Read before the lock, while the transaction can still read: should the wait for the
            # lock run out, the error names the values that stay unpublished.
            pending = conn.execute(
                """SELECT asset_key, partition_key FROM asset_values
                   WHERE run_id = %s AND NOT published ORDER BY asset_key, partition_key""",
                (run,),
            ).fetchall()
            return self._publish(conn, run, f"run {run!r}: {describe_values(pending)}")

    def discard_run(self, run_id: str) -> int:
        """Delete ``run_id``'s unpublished values (a run that failed and will not be re-executed);
        returns how many it deleted. Published values are never deleted here."""
        run = check.text(run_id, "run_id")
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM asset_values WHERE run_id = %s AND NOT published", (run,)
            )
            return cur.rowcount

    def prune_unpublished_values(
        self, older_than: timedelta = DEFAULT_UNPUBLISHED_RETENTION
    ) -> int:
        """Delete unpublished values written longer than ``older_than`` ago: left by runs that
        failed or never finished (a live run older than that loses its values). Returns how many
        it deleted."""
        if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
            raise ValueError(f"older_than must be a positive timedelta, got {older_than!r}")
        with self.transaction() as conn:
            cur = conn.execute(
                """DELETE FROM asset_values
                   WHERE NOT published AND written_at < clock_timestamp() - %s""",
                (older_than,),
            )
            return cur.rowcount

    def _publish(self, conn: psycopg.Connection, run: str, what: str) -> int:
        """Publish ``run``'s values inside the caller's transaction; ``what`` describes them for
        the error raised when the wait for the publish lock runs out."""
        with self._waiting_for_lock(
            PublishLockTimeoutError,
            f"the publish lock of asset values, to publish {what}",
            "another publication (a run's, or a write outside a run)",
        ):
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", PUBLISH_LOCK)
        # The run's values that a newer published value already supersedes.
        conn.execute(
            """DELETE FROM asset_values mine USING asset_values pub
               WHERE mine.run_id = %s AND NOT mine.published
                 AND pub.published AND pub.asset_key = mine.asset_key
                 AND pub.partition_key = mine.partition_key
                 AND pub.written_at > mine.written_at""",
            (run,),
        )
        # The published values that the run's values supersede.
        conn.execute(
            """DELETE FROM asset_values old USING asset_values mine
               WHERE mine.run_id = %s AND NOT mine.published
                 AND old.published AND old.asset_key = mine.asset_key
                 AND old.partition_key = mine.partition_key""",
            (run,),
        )
        cur = conn.execute(
            "UPDATE asset_values SET published = true WHERE run_id = %s AND NOT published", (run,)
        )
        return cur.rowcount
