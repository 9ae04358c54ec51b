"""Connection strings shown to people: never with the password."""

from __future__ import annotations

import re

import psycopg.conninfo

_URI_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?#]*:)(?P<pw>[^@/?#]*)(?=@)")
_PARAM_PASSWORD = re.compile(
    r"(?P<head>(?:^|[?&\s])password\s*=\s*)(?P<pw>'(?:\\.|[^'])*'|[^&\s]*)"
)


def mask_dsn(dsn: str) -> str:
    """The DSN with any password (URI user info, ``?password=``, ``password=``) as ``***``."""
    masked = _URI_PASSWORD.sub(lambda m: m.group("head") + ("***" if m.group("pw") else ""), dsn)
    return _PARAM_PASSWORD.sub(lambda m: m.group("head") + "***", masked)


def password_of(dsn: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(dsn).get("password") or None  # type: ignore[return-value]
    except psycopg.ProgrammingError:
        return None


def scrub(text: str, dsn: str) -> str:
    """Remove the DSN's password from a message that a driver or server produced."""
    password = password_of(dsn)
    text = mask_dsn(text)
    return text.replace(password, "***") if password else text


def describe_target(dsn: str) -> str:
    """``host=..., port=..., database=..., user=...`` for error messages (no password)."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ValueError(
            f"DATABASE_DSN is not a valid PostgreSQL connection string: {mask_dsn(dsn)}"
        ) from exc
    host = params.get("host") or "localhost (default socket)"
    port = params.get("port") or "5432"
    database = params.get("dbname") or params.get("user") or "(default)"
    user = params.get("user") or "(default)"
    return f"host={host}, port={port}, database={database}, user={user}"
