"""The Dagster instance next to the Brain: same PostgreSQL, DAGSTER_HOME under BRAIN_HOME."""

from __future__ import annotations

import os
import shutil

import psycopg.conninfo
from sqlalchemy.engine import URL

from brain_assets.bundled import bundled_path
from brain_assets.environment import brain_home, configured_dsn, worker_count
from brain_assets.store.embedded import start_embedded

REPO_DAGSTER_YAML = bundled_path("dagster.yaml")
DAGSTER_DATABASE = "dagster"


def sqlalchemy_url(dsn: str) -> str:
    """A libpq DSN as dagster-postgres wants it: ``postgresql+psycopg2://``, socket as ?host=."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    host = str(params.get("host") or "")
    socket = host.startswith("/")
    query = {"host": host} if socket else {}
    url = URL.create(
        "postgresql+psycopg2",
        username=str(params["user"]) if params.get("user") else None,
        password=str(params["password"]) if params.get("password") else None,
        host=None if socket or not host else host,
        port=int(str(params["port"])) if params.get("port") else None,
        database=str(params.get("dbname") or params.get("user") or "postgres"),
        query=query,
    )
    return url.render_as_string(hide_password=False)


def dagster_database_for(origin: str) -> str | None:
    """The Dagster instance's own database beside a Brain reached through ``origin`` (a
    ``Target.origin``): the embedded server's :data:`DAGSTER_DATABASE`, or None with
    DATABASE_DSN, where :func:`prepare_dagster_environment` keeps the instance's tables in the
    Brain's database itself."""
    return DAGSTER_DATABASE if origin == "embedded" else None


def prepare_dagster_environment() -> dict[str, str]:
    """Environment for Dagster processes: DAGSTER_HOME with dagster.yaml, DAGSTER_PG_URL,
    BRAIN_HOME made absolute. Starts the embedded server when no DATABASE_DSN is set."""
    home = brain_home()
    dsn = configured_dsn()
    if dsn is None:
        server = start_embedded(home / "pgdata")
        dagster_dsn = server.ensure_database(DAGSTER_DATABASE)
    else:
        dagster_dsn = dsn
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_DAGSTER_YAML, dagster_home / "dagster.yaml")
    env = {
        "BRAIN_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_URL": sqlalchemy_url(dagster_dsn),
        # dagster.yaml's run queue: one run per core, or per BRAIN_WORKERS.
        "BRAIN_MAX_CONCURRENT_RUNS": str(worker_count()),
    }
    os.environ.update(env)
    return env
