"""The Dagster instance next to the Brain: same PostgreSQL, DAGSTER_HOME under BRAIN_HOME."""

from __future__ import annotations

import os
import shutil

import psycopg.conninfo
from sqlalchemy.engine import URL

from brain_assets.bundled import bundled_path
from brain_assets.dsn import mask_dsn
from brain_assets.environment import brain_home, configured_dsn, worker_count
from brain_assets.store.embedded import start_embedded

REPO_DAGSTER_YAML = bundled_path("dagster.yaml")
DAGSTER_DATABASE = "dagster"


def _psycopg2_refuses(key: str, value: str) -> bool:
    """Whether the libpq that psycopg2 is linked with (not always psycopg's) rejects ``key``."""
    import psycopg2
    import psycopg2.extensions

    try:
        psycopg2.extensions.parse_dsn(psycopg2.extensions.make_dsn(**{key: value}))
    except psycopg2.ProgrammingError:
        return True
    return False


def sqlalchemy_url(dsn: str) -> str:
    """A libpq DSN as dagster-postgres wants it: a ``postgresql+psycopg2://`` SQLAlchemy URL that
    carries every parameter of the DSN.

    User, password and database go in the URL's own fields; every other parameter, host and port
    included, goes in its query, which SQLAlchemy's psycopg2 dialect hands to ``psycopg2.connect``
    as keywords and psycopg2 to libpq unchanged: ``sslmode``, ``sslrootcert``, ``options``,
    ``target_session_attrs``... reach Dagster's connections as they reach the Brain's. That
    includes:

    - a Unix-socket folder as host (``?host=/path``), which a URL's host field cannot hold;
    - several hosts (``host=a,b port=5432,5433``, libpq's failover): the dialect joins a
      comma-separated ``host`` and ``port`` back into libpq's lists. libpq lets one port serve
      every host, the dialect does not, so a single port is repeated for each host;
    - ``passfile`` and ``service``: libpq reads the password file and the service file itself,
      at connection time, in whichever process connects; psycopg2 connects through libpq as
      psycopg does, so Dagster's processes, started from this one with its environment, read
      the same files.

    Refused with a ValueError naming the parameter: one that the libpq psycopg2 is linked with
    does not know (it can be older than psycopg's: a parameter of a newer libpq would make every
    Dagster connection fail later, far from the DSN's owner), and a port list whose length
    matches neither one nor the host list (libpq would refuse it too).
    """
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # Not chained: the driver's message may quote the DSN, password included.
        raise ValueError(
            f"DATABASE_DSN is not a valid PostgreSQL connection string: {mask_dsn(dsn)}"
        ) from None
    # An empty value is libpq's "not set" (its default, or the PG* variable, applies): left out,
    # it means the same to psycopg2.
    settings = {key: str(value) for key, value in params.items() if value not in (None, "")}
    for key, value in settings.items():
        if _psycopg2_refuses(key, value):
            import psycopg2

            linked = psycopg2.__libpq_version__
            raise ValueError(
                f"DATABASE_DSN parameter {key!r} is not known to libpq "
                f"{linked // 10000}.{linked % 10000}, which Dagster's storage connects with "
                "(psycopg2): remove it from DATABASE_DSN, or install a psycopg2 built with a "
                "newer libpq"
            )
    hosts = settings.get("host", "").split(",")
    ports = settings["port"].split(",") if "port" in settings else []
    if len(ports) == 1 and len(hosts) > 1:
        settings["port"] = ",".join(ports * len(hosts))
    elif len(ports) > 1 and len(ports) != len(hosts):
        raise ValueError(
            f"DATABASE_DSN parameter 'port' lists {len(ports)} ports for {len(hosts)} host(s): "
            "give one port for every host, or a single port for all of them"
        )
    username = settings.pop("user", None)
    password = settings.pop("password", None)
    # No dbname: libpq's default ($PGDATABASE, else the user name) applies, as for the Brain.
    database = settings.pop("dbname", None)
    url = URL.create(
        "postgresql+psycopg2",
        username=username,
        password=password,
        database=database,
        query=settings,
    )
    return url.render_as_string(hide_password=False)


def dagster_database_for(origin: str) -> str | None:
    """The Dagster instance's own database beside a Brain reached through ``origin`` (a
    ``Target.origin``): the embedded server's :data:`DAGSTER_DATABASE`, or None with
    DATABASE_DSN, where :func:`prepare_dagster_environment` keeps the instance's tables in the
    Brain's database itself."""
    return DAGSTER_DATABASE if origin == "embedded" else None


def prepare_brain_store() -> None:
    """Open the Brain's store once, which applies its migrations. A command that starts run
    workers calls it while their forkserver still imports: on a new database every first run
    would otherwise wait for the migrations (0.4 s with both workers racing for them)."""
    from brain_assets.library import BrainLibrary

    with BrainLibrary():
        pass


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
