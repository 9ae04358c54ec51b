"""Which PostgreSQL the Brain opens: an explicit DSN, else $DATABASE_DSN, else the embedded
server. Above both ``connection`` (how to connect) and ``embedded`` (which uses it)."""

from __future__ import annotations

from dataclasses import dataclass

from brain_assets.dsn import describe_target
from brain_assets.environment import brain_home, configured_dsn
from brain_assets.store.embedded import embedded_dsn


@dataclass(frozen=True)
class Target:
    dsn: str
    origin: str  # "argument", "DATABASE_DSN" or "embedded"


def resolve(dsn: str | None) -> Target:
    """An explicit DSN wins, then ``$DATABASE_DSN``, then the embedded server under BRAIN_HOME."""
    if dsn is not None:
        if not isinstance(dsn, str) or not dsn.strip():
            raise ValueError("dsn must be a non-empty PostgreSQL connection string or None")
        describe_target(dsn)  # raises a masked ValueError for a malformed DSN
        return Target(dsn.strip(), "argument")
    from_env = configured_dsn()
    if from_env is not None:
        describe_target(from_env)
        return Target(from_env, "DATABASE_DSN")
    return Target(embedded_dsn(brain_home()), "embedded")
