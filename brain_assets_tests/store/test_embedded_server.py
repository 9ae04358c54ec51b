"""The embedded server and the DSN path as separate processes see them."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from brain_assets.errors import BrainConnectionError
from brain_assets.library import BrainLibrary
from brain_assets.store.embedded import start_embedded

pytestmark = pytest.mark.slow

WRITE = """
from brain_assets import BrainLibrary
b = BrainLibrary()
mid = b.register_model("BTC/USDT", "ridge", b"w", metrics={"rmse": 0.5}, activate=True)
print(mid, flush=True)
"""
READ = """
from brain_assets import BrainLibrary
m = BrainLibrary().get_active_model("BTC/USDT")
print(m.model_id if m else None)
"""
WRITE_AND_WAIT = WRITE + "import time\nprint('ready', flush=True)\ntime.sleep(120)\n"
READ_WITH_SERVER_PID = """
import os
from pathlib import Path
from brain_assets import BrainLibrary
m = BrainLibrary().get_active_model("BTC/USDT")
pid_file = Path(os.environ["BRAIN_HOME"], "pgdata", "postmaster.pid")
print(m.model_id, pid_file.read_text().split()[0])
"""


def env_for(home: Path, dsn: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_DSN", "BRAIN_HOME")}
    env["BRAIN_HOME"] = str(home)
    if dsn is not None:
        env["DATABASE_DSN"] = dsn
    return env


def run(code: str, env: dict[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def postmaster_pid(pgdata: Path) -> int | None:
    pid_file = pgdata / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def wait_until_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def start_waiting_writer(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITE_AND_WAIT], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    model_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "ready"
    return proc, model_id


def test_new_folder_needs_no_setup(tmp_path: Path) -> None:
    env = env_for(tmp_path / "unused")
    env.pop("BRAIN_HOME")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    code = "from brain_assets import BrainLibrary; print(BrainLibrary().get_best_model('BTC/USDT'))"
    # The default home does not depend on the directory brain runs from.
    for cwd in (tmp_path / "a", tmp_path / "b"):
        cwd.mkdir()
        assert run(code, env, cwd=cwd) == "None"
        assert not (cwd / ".brain").exists()
    assert (tmp_path / "data" / "brain-assets" / "pgdata" / "PG_VERSION").exists()


def test_data_persists_across_processes_and_server_stops_after_last(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    model_id = run(WRITE, env)
    assert run(READ, env) == model_id
    pid = postmaster_pid(tmp_path / "pgdata")
    # pgserver's cleanup_mode='stop': the last process to leave stops the server.
    assert pid is None or wait_until_gone(pid)


def test_server_of_a_sigkilled_owner_is_reused_and_later_stopped(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    owner, model_id = start_waiting_writer(env)
    pgdata = tmp_path / "pgdata"
    pid_before = postmaster_pid(pgdata)
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=10)
    # Reused, not restarted: the reader saw the same postmaster while it held the server.
    assert run(READ_WITH_SERVER_PID, env) == f"{model_id} {pid_before}"
    handles = json.loads((pgdata / ".handle_pids.json").read_text() or "[]")
    assert owner.pid not in handles
    assert pid_before is not None and wait_until_gone(pid_before)


def test_dead_postmaster_is_restarted_with_its_data(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    owner, model_id = start_waiting_writer(env)
    try:
        pgdata = tmp_path / "pgdata"
        pid = postmaster_pid(pgdata)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_until_gone(pid)
        # A new process must not be handed the dead server; crash recovery keeps the data.
        assert run(READ, env) == model_id
        new_pid = postmaster_pid(pgdata)
        assert new_pid is not None and new_pid != pid
    finally:
        owner.kill()
        owner.wait(timeout=10)
    # Leave no server behind: a clean process exit stops it once the dead handles are pruned.
    run(READ, env)
    assert wait_until_gone(new_pid)


def test_database_dsn_selects_another_server(tmp_path: Path) -> None:
    other = start_embedded(tmp_path / "other" / "pgdata")
    dsn = other.ensure_database("huracan")
    home = tmp_path / "home"
    model_id = run(WRITE, env_for(home, dsn=dsn))
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT symbol FROM model_registry WHERE model_id = %s", (model_id,))
        assert row.fetchone() == ("BTC/USDT",)
    assert not (home / "pgdata").exists()
    assert BrainLibrary(dsn).origin == "argument"


def test_unreachable_server_fails_fast_naming_target_without_password(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    secret = "s3cr3t-pw"
    dsns = [
        f"postgresql://trader:{secret}@127.0.0.1:1/huracan",
        f"host=127.0.0.1 port=1 dbname=huracan user=trader password={secret}",
        f"postgresql://trader@/huracan?host={tmp_path}&password={secret}",
    ]
    caplog.set_level(logging.DEBUG)
    for dsn in dsns:
        started = time.monotonic()
        with pytest.raises(BrainConnectionError) as info:
            BrainLibrary(dsn)
        assert time.monotonic() - started < 10
        message = str(info.value)
        assert "database=huracan" in message
        assert "port=" in message and "host=" in message
        assert secret not in message
    assert secret not in caplog.text
    assert "brain_library_initialization_failed" in caplog.text


def test_malformed_dsn_is_a_value_error_without_password() -> None:
    with pytest.raises(ValueError, match="not a valid PostgreSQL connection string") as info:
        BrainLibrary("user=u password=hunter2 host")
    assert "hunter2" not in str(info.value)


def test_repr_masks_password(tmp_path: Path) -> None:
    server = start_embedded(tmp_path / "pgdata")
    dsn = server.uri("postgres").replace("postgres:@", "postgres:topsecret@")
    with BrainLibrary(dsn) as brain:
        assert "topsecret" not in repr(brain)
        assert "topsecret" not in brain.masked_dsn
        assert "***" in brain.masked_dsn
