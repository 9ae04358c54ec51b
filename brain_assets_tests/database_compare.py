"""Comparing two Brain databases row by row, and DSNs with a password, for the backup tests."""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg.conninfo
from psycopg import sql

SECRET = "S3cret-Pa55word"


def tables(dsn: str) -> dict[str, list[str]]:
    """Every table of the public schema, with its primary-key columns."""
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            """SELECT c.relname, array_agg(a.attname ORDER BY k.ord)
               FROM pg_class AS c
               JOIN pg_namespace AS n ON n.oid = c.relnamespace AND n.nspname = 'public'
               JOIN pg_index AS i ON i.indrelid = c.oid AND i.indisprimary
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.attnum
               WHERE c.relkind = 'r'
               GROUP BY c.relname ORDER BY c.relname"""
        ).fetchall()
        every = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert every is not None and every[0] == len(found), "every Brain table has a primary key"
    return {name: list(key) for name, key in found}


def dump_rows(dsn: str, table: str, key: list[str]) -> list[tuple[Any, ...]]:
    query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(column) for column in key)
    )
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def assert_same_database(source: str, copy: str) -> None:
    layout = tables(source)
    assert tables(copy) == layout
    for table, key in layout.items():
        assert dump_rows(copy, table, key) == dump_rows(source, table, key), table


def with_password(dsn: str, **changes: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params.update(password=SECRET, **changes)
    return psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]


def tables_of(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [row[0] for row in found]
