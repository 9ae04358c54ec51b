"""Values handed between assets, stored in PostgreSQL without pickle.

DataFrames travel as Parquet, everything else as strict JSON (no NaN, no infinity). Each
(asset, partition) keeps its latest value; a write of several partitions is one transaction.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase


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
        """Store ``{partition_key: value}`` for one asset (all or nothing)."""
        asset_key = check.text(asset_key, "asset_key")
        rows = [(key, *encode_value(value)) for key, value in values.items()]
        with self.transaction() as conn, conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO asset_values (asset_key, partition_key, format, value, run_id)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (asset_key, partition_key) DO UPDATE
                   SET format = EXCLUDED.format, value = EXCLUDED.value,
                       run_id = EXCLUDED.run_id, updated_at = clock_timestamp()""",
                [(asset_key, key, fmt, data, run_id) for key, fmt, data in rows],
            )
        return len(rows)

    def get_asset_values(self, asset_key: str, partition_keys: Sequence[str]) -> dict[str, Any]:
        """``{partition_key: value}``; a missing partition is a clear error naming it."""
        asset_key = check.text(asset_key, "asset_key")
        rows = self._rows(
            """SELECT partition_key, format, value FROM asset_values
               WHERE asset_key = %s AND partition_key = ANY(%s)""",
            (asset_key, list(partition_keys)),
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
