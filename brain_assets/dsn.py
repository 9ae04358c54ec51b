"""Connection strings shown to people: never with the password."""

from __future__ import annotations

import re

import psycopg.conninfo

_URI_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?#]*:)(?P<pw>[^@/?#]*)(?=@)")
# Every libpq parameter that holds a secret: the password, the passphrase of the client key, the
# OAuth client secret and the SCRAM keys of a pass-through login (libpq marks the first three as
# passwords; the SCRAM keys derive the password's proof, so they are as good as one).
SECRET_PARAMETERS = frozenset(
    {"password", "sslpassword", "oauth_client_secret", "scram_client_key", "scram_server_key"}
)
_PARAM_PASSWORD = re.compile(
    r"(?P<head>(?:^|[?&\s])(?:"
    + "|".join(sorted(SECRET_PARAMETERS))
    + r")\s*=\s*)(?P<pw>'(?:\\.|[^'])*'|[^&\s]*)"
)


def mask_dsn(dsn: str) -> str:
    """The DSN with any password (URI user info, ``?password=``, ``password=``) and any other
    secret parameter (``sslpassword``...) as ``***``."""
    masked = _URI_PASSWORD.sub(lambda m: m.group("head") + ("***" if m.group("pw") else ""), dsn)
    return _PARAM_PASSWORD.sub(lambda m: m.group("head") + "***", masked)


def password_of(dsn: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(dsn).get("password") or None  # type: ignore[return-value]
    except psycopg.ProgrammingError:
        return None


def secrets_of(dsn: str) -> list[str]:
    """The values of the DSN's secret parameters (:data:`SECRET_PARAMETERS`), longest first."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return []
    found = {str(params[key]) for key in SECRET_PARAMETERS if params.get(key)}
    # Longest first, so that a secret that contains another is replaced whole.
    return sorted(found, key=len, reverse=True)


def scrub(text: str, dsn: str) -> str:
    """Remove the DSN's password, and its other secrets, from a message that a driver, a server
    or a tool produced."""
    text = mask_dsn(text)
    for secret in secrets_of(dsn):
        text = text.replace(secret, "***")
    return text


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
