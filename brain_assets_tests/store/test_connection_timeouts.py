"""Session limits: a frozen writer cannot hold a symbol's lock for long, and a lock wait that
runs out names what was locked (the symbol, the bar series, the values to publish).

The symbol's lock holder is a separate Python process that takes the symbol's lock through
BrainLibrary.lock_symbol, as a worker would, and reports its server backend's pid; the test then
freezes it (SIGSTOP) or keeps it busy inside its transaction. The bar import and publish locks
are held by a second BrainLibrary's open transaction, as a concurrent import or publication
would hold them.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import psycopg
import pytest

from brain_assets import errors
from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.errors import (
    BarsLockTimeoutError,
    BrainError,
    LockTimeoutError,
    PublishLockTimeoutError,
)
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import ModelVersioning
from brain_assets.store import base, connection
from brain_assets.store.asset_values import describe_values
from brain_assets.store.base import SYMBOL_LOCK_CLASS, SymbolLockTimeoutError
from brain_assets_tests.conftest import count_rows

SYMBOL = "BTC/USDT"
TIMEOUT_VARIABLES = (
    connection.STATEMENT_TIMEOUT_ENV,
    connection.LOCK_TIMEOUT_ENV,
    connection.IDLE_TX_TIMEOUT_ENV,
)

# argv: dsn, symbol, mode. "idle": after locking, wait for a line on stdin (the test freezes the
# process meanwhile), then try to use the transaction. "busy": keep a statement running inside
# the transaction, so that the idle-in-transaction timeout never applies.
HOLDER = """
import sys
import psycopg
from brain_assets.library import BrainLibrary

dsn, symbol, mode = sys.argv[1:4]
brain = BrainLibrary(dsn, max_connections=1)
try:
    with brain.transaction() as conn:
        brain.lock_symbol(symbol)
        print("locked", conn.info.backend_pid, flush=True)
        if mode == "idle":
            sys.stdin.readline()
            conn.execute("SELECT 1")
        else:
            conn.execute("SELECT pg_sleep(120)")
    print("committed", flush=True)
except psycopg.Error as exc:
    print("lost:", type(exc).__name__, " ".join(str(exc).split()), flush=True)
finally:
    brain.close()
"""


def read_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    if not ready:
        raise AssertionError(f"the lock holder said nothing within {timeout_s} s")
    return process.stdout.readline().strip()


@dataclass
class Holder:
    process: subprocess.Popen[str]
    backend_pid: int


@contextmanager
def lock_holder(dsn: str, mode: str) -> Iterator[Holder]:
    """A child process holding SYMBOL's lock inside an open transaction."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, dsn, SYMBOL, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    backend_pid: int | None = None
    try:
        first = read_line(process, 120.0)
        if not first.startswith("locked "):
            process.kill()
            _, stderr = process.communicate(timeout=30)
            raise AssertionError(f"the lock holder failed: {first!r} {stderr}")
        backend_pid = int(first.split()[1])
        yield Holder(process, backend_pid)
    finally:
        # Continued before the kill so that no stopped process outlives a failed test; the
        # backend is ended too, since a busy holder's pg_sleep outlives its killed client.
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        process.communicate(timeout=30)
        if backend_pid is not None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))


def symbol_lock_holders(dsn: str) -> list[int]:
    """Backend pids holding SYMBOL's writer lock (as granted in pg_locks)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT pid FROM pg_locks
               WHERE locktype = 'advisory' AND granted AND database = (
                     SELECT oid FROM pg_database WHERE datname = current_database())
                 AND classid = %s::int4::oid AND objid = hashtext(%s)::oid AND objsubid = 2
               ORDER BY pid""",
            (SYMBOL_LOCK_CLASS, SYMBOL),
        ).fetchall()
    return [int(row[0]) for row in rows]


def backend_gone(dsn: str, pid: int, *, within_s: float) -> bool:
    """Whether backend ``pid`` has exited, waiting up to ``within_s``: a backend releases its
    locks before it leaves pg_stat_activity."""
    deadline = time.monotonic() + within_s
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row is not None and row[0] == 0:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def register(versioning: ModelVersioning, score: float, sharpe: float) -> str:
    return versioning.register_version(
        SYMBOL,
        "ridge",
        f"w{score}".encode(),
        metrics={"composite_score": score, "sharpe_ratio": sharpe, "directional_accuracy": 0.55},
    )


def set_timeouts(
    monkeypatch: pytest.MonkeyPatch, *, statement: str = "", lock: str, idle: str
) -> None:
    monkeypatch.setenv(connection.STATEMENT_TIMEOUT_ENV, statement)
    monkeypatch.setenv(connection.LOCK_TIMEOUT_ENV, lock)
    monkeypatch.setenv(connection.IDLE_TX_TIMEOUT_ENV, idle)


def test_defaults_and_environment_reach_every_pooled_session(
    brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in TIMEOUT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    expected_defaults = {
        "statement_timeout": "10min",
        "lock_timeout": "5min",
        "idle_in_transaction_session_timeout": "2min",
    }
    with BrainLibrary(brain_dsn, max_connections=2) as brain, brain.transaction() as conn:
        shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in expected_defaults}
        # The embedded server listens on a Unix socket: libpq accepts the keepalive parameters
        # and ignores them, and the server reads its TCP keepalive settings as 0 there.
        assert conn.info.host.startswith("/")
        assert "keepalives=1" in conn.info.dsn
        assert conn.execute("SHOW tcp_keepalives_idle").fetchone() == ("0",)
    assert shown == expected_defaults

    set_timeouts(monkeypatch, statement="45", lock="7.5", idle="0")
    # Two sessions at once: both carry the limits, not just the first one opened.
    with (
        BrainLibrary(brain_dsn, max_connections=2) as brain,
        brain._pool.connection() as first,
        brain._pool.connection() as second,
    ):
        for conn in (first, second):
            values = [conn.execute(f"SHOW {name}").fetchone()[0] for name in expected_defaults]
            assert values == ["45s", "7500ms", "0"]


def test_the_dsn_options_override_the_defaults(brain_dsn: str) -> None:
    dsn = psycopg.conninfo.make_conninfo(brain_dsn, options="-c lock_timeout=1234")
    limits = connection.SessionTimeouts(lock_s=9.0)
    with connection.connect(dsn, limits) as conn:
        assert conn.execute("SHOW lock_timeout").fetchone() == ("1234ms",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("10min",)


@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "inf", "1e12"])
def test_a_bad_timeout_variable_is_named(
    brain_dsn: str, monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    for name in TIMEOUT_VARIABLES:
        monkeypatch.setenv(name, raw)
        pattern = rf"{name} must be a number of seconds.*{re.escape(repr(raw))}"
        with pytest.raises(ValueError, match=pattern):
            BrainLibrary(brain_dsn)
        monkeypatch.delenv(name)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_frozen_lock_holder_delays_a_rollback_by_the_idle_timeout_only(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    first = register(versioning, 0.40, sharpe=1.5)
    second = register(versioning, 0.50, sharpe=2.0)
    assert brain.get_active_model(SYMBOL).model_id == second
    idle_s, lock_s = 3.0, 20.0
    # The child inherits these: its own session is the one the server ends when it freezes.
    set_timeouts(monkeypatch, lock=str(lock_s), idle=str(idle_s))
    with BrainLibrary(brain_dsn) as waiter, lock_holder(brain_dsn, "idle") as holder:
        os.kill(holder.process.pid, signal.SIGSTOP)
        assert symbol_lock_holders(brain_dsn) == [holder.backend_pid]
        started = time.monotonic()
        rolled_back = ModelVersioning(waiter, policy=DecisionPolicy.seed()).check_and_rollback(
            second, SYMBOL, {"sharpe_ratio": 1.0}, 0.05
        )
        elapsed = time.monotonic() - started
        print(f"rollback behind a frozen lock holder took {elapsed:.2f} s")
        assert rolled_back
        # Freed by the idle timeout, well before the lock timeout would have failed the wait.
        assert elapsed < idle_s + 5.0
        assert backend_gone(brain_dsn, holder.backend_pid, within_s=5.0)
        os.kill(holder.process.pid, signal.SIGCONT)
        assert holder.process.stdin is not None
        holder.process.stdin.write("go\n")
        holder.process.stdin.flush()
        outcome = read_line(holder.process, 60.0)
        assert outcome.startswith("lost:"), outcome
        assert "idle-in-transaction timeout" in outcome
    models = brain.list_models(SYMBOL)
    assert models["is_active"].sum() == 1
    assert brain.get_active_model(SYMBOL).model_id == first
    history = versioning.history(SYMBOL)
    rollbacks = history[(history["reason"] == "rollback") & (history["action"] == "activated")]
    assert rollbacks["model_id"].tolist() == [first]


@pytest.mark.e2e
@pytest.mark.slow
def test_a_lock_wait_past_the_lock_timeout_names_the_symbol_and_changes_nothing(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    register(versioning, 0.40, sharpe=1.5)
    second = register(versioning, 0.50, sharpe=2.0)
    tables = ("model_registry", "model_activations", "model_metrics")
    before = {table: count_rows(brain_dsn, table) for table in tables}
    models_before = brain.list_models(SYMBOL)
    lock_s = 2.0
    set_timeouts(monkeypatch, lock=str(lock_s), idle="30")
    with BrainLibrary(brain_dsn) as waiter, lock_holder(brain_dsn, "busy") as holder:
        assert symbol_lock_holders(brain_dsn) == [holder.backend_pid]
        started = time.monotonic()
        with pytest.raises(SymbolLockTimeoutError) as caught:
            ModelVersioning(waiter, policy=DecisionPolicy.seed()).check_and_rollback(
                second, SYMBOL, {"sharpe_ratio": 1.0}, 0.05
            )
        elapsed = time.monotonic() - started
        message = str(caught.value)
        assert repr(SYMBOL) in message
        assert "lock timeout" in message
        assert connection.LOCK_TIMEOUT_ENV in message
        assert isinstance(caught.value.__cause__, psycopg.errors.LockNotAvailable)
        assert lock_s <= elapsed < lock_s + 5.0
        # The holder is still busy and still holds the lock: only the waiter gave up.
        assert symbol_lock_holders(brain_dsn) == [holder.backend_pid]
        with pytest.raises(SymbolLockTimeoutError, match="BTC/USDT"):
            waiter.register_model(SYMBOL, "ridge", b"w", metrics={"composite_score": 0.9})
    assert {table: count_rows(brain_dsn, table) for table in tables} == before
    after = brain.list_models(SYMBOL)
    assert after[["model_id", "is_active"]].equals(models_before[["model_id", "is_active"]])
    assert brain.get_active_model(SYMBOL).model_id == second


def test_the_lock_timeout_errors_share_one_base_in_the_errors_module() -> None:
    # Still importable from the store's base module, where it was first defined.
    assert base.SymbolLockTimeoutError is errors.SymbolLockTimeoutError is SymbolLockTimeoutError
    for error in (SymbolLockTimeoutError, BarsLockTimeoutError, PublishLockTimeoutError):
        assert issubclass(error, LockTimeoutError)
    assert issubclass(LockTimeoutError, BrainError) and issubclass(LockTimeoutError, TimeoutError)


def hourly_bars(n: int, price: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
            "open": price,
            "high": price + 1.0,
            "low": price - 1.0,
            "close": price,
            "volume": 10.0,
        }
    )


def test_a_bar_import_waiting_past_the_lock_timeout_names_the_series_and_writes_nothing(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_s = 1.0
    set_timeouts(monkeypatch, lock=str(lock_s), idle="30")
    with BrainLibrary(brain_dsn) as waiter:
        # The fixture's library, opened before the variables were set, holds the series' import
        # lock in its open transaction, as an import in flight does.
        with brain.transaction():
            held = brain.store_bars("binance", SYMBOL, "1h", hourly_bars(24, 100.0))
            started = time.monotonic()
            with pytest.raises(BarsLockTimeoutError) as caught:
                waiter.store_bars("binance", SYMBOL, "1h", hourly_bars(24, 200.0))
            elapsed = time.monotonic() - started
            # Only that series is locked: another symbol, or another source, imports meanwhile.
            other = waiter.store_bars("binance", "ETH/USDT", "1h", hourly_bars(24, 50.0))
            files = waiter.store_bars("files", SYMBOL, "1h", hourly_bars(24, 300.0))
        message = str(caught.value)
        for part in ("'BTC/USDT'", "1h", "'binance'", "lock timeout", connection.LOCK_TIMEOUT_ENV):
            assert part in message
        assert isinstance(caught.value, LockTimeoutError)
        assert isinstance(caught.value.__cause__, psycopg.errors.LockNotAvailable)
        assert lock_s <= elapsed < lock_s + 5.0
        assert (other.new, files.new) == (24, 24)

        # The waiter wrote nothing: the series holds the holder's bars and batch only.
        kept = waiter.load_bars("binance", SYMBOL, "1h")
        assert kept["close"].tolist() == [100.0] * 24
        with psycopg.connect(brain_dsn) as conn:
            batches = conn.execute(
                "SELECT batch_id FROM bar_batches WHERE source = 'binance' AND symbol = %s",
                (SYMBOL,),
            ).fetchall()
        assert batches == [(held.batch_id,)]
        # Once the lock is free, the same import goes through.
        retried = waiter.store_bars("binance", SYMBOL, "1h", hourly_bars(24, 200.0))
        assert (retried.new, retried.changed) == (0, 24)


def asset_rows(dsn: str) -> list[tuple[str, str, str, bool]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT asset_key, partition_key, run_id, published FROM asset_values ORDER BY 1, 2, 3"
        ).fetchall()
    return [(str(a), str(p), str(r), bool(published)) for a, p, r, published in rows]


def test_a_publication_waiting_past_the_lock_timeout_names_the_values_and_changes_nothing(
    brain: BrainLibrary, brain_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    brain.put_asset_values("features", {SYMBOL: {"v": 0}})
    brain.put_asset_values("features", {SYMBOL: {"v": 1}, "ETH/USDT": {"v": 1}}, run_id="run-a")
    brain.put_asset_values("features", {SYMBOL: {"v": 2}}, run_id="run-b")
    brain.put_asset_values("signals", {SYMBOL: [2]}, run_id="run-b")
    lock_s = 1.0
    set_timeouts(monkeypatch, lock=str(lock_s), idle="30")
    with BrainLibrary(brain_dsn) as waiter:
        with brain.transaction():
            assert brain.publish_run("run-a") == 2  # holds the publish lock until committed
            started = time.monotonic()
            with pytest.raises(PublishLockTimeoutError) as run_wait:
                waiter.publish_run("run-b")
            elapsed = time.monotonic() - started
            with pytest.raises(PublishLockTimeoutError) as write_wait:
                waiter.put_asset_values("features", {"SOL/USDT": {"v": 3}})
        assert lock_s <= elapsed < lock_s + 5.0
        message = str(run_wait.value)
        assert "run 'run-b'" in message
        assert "asset 'features' partition(s) 'BTC/USDT'" in message
        assert "asset 'signals' partition(s) 'BTC/USDT'" in message
        assert "lock timeout" in message and connection.LOCK_TIMEOUT_ENV in message
        assert isinstance(run_wait.value.__cause__, psycopg.errors.LockNotAvailable)
        message = str(write_wait.value)
        assert "outside a run" in message
        assert "asset 'features' partition(s) 'SOL/USDT'" in message

        # run-a's publication committed; run-b's values wait unpublished; the write is absent.
        assert asset_rows(brain_dsn) == [
            ("features", "BTC/USDT", "run-a", True),
            ("features", "BTC/USDT", "run-b", False),
            ("features", "ETH/USDT", "run-a", True),
            ("signals", "BTC/USDT", "run-b", False),
        ]
        assert waiter.get_asset_values("features", [SYMBOL]) == {SYMBOL: {"v": 1}}
        with pytest.raises(LookupError, match="SOL/USDT"):
            waiter.get_asset_values("features", ["SOL/USDT"])
        # With the lock free, the same publication goes through.
        assert waiter.publish_run("run-b") == 2
        assert waiter.get_asset_values("features", [SYMBOL]) == {SYMBOL: {"v": 2}}


def test_the_values_in_a_lock_timeout_are_listed_per_asset_and_bounded() -> None:
    pairs = [("features", f"S{i}/USDT") for i in range(8)] + [("signals", "")]
    assert describe_values(pairs) == (
        "asset 'features' partition(s) 'S0/USDT', 'S1/USDT', 'S2/USDT', 'S3/USDT', 'S4/USDT' "
        "and 3 more; asset 'signals' partition(s) ''"
    )
    assert describe_values([]) == "no values"
