"""The files of backups and restores: the owner's alone from their creation, and none left behind
for long by a run that was killed."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from brain_assets.library import BrainLibrary
from brain_assets.store import backup as backup_module
from brain_assets.store.backup import (
    STALE_UNLOCKED_S,
    STALE_WITHOUT_LOCK_S,
    backup,
    remove_stale_work,
    restore,
    verify_backup,
)

try:
    import fcntl
except ImportError:
    fcntl = None  # type: ignore[assignment]

SYMBOL = "BTC/USDT"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual umask, under which a file created without a mode is readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder of the test's own, where restores and verifications work."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def spy(monkeypatch: pytest.MonkeyPatch, name: str, seen: dict[str, int]) -> Callable[..., Any]:
    """Wrap ``backup_module.<name>``, whose first argument is a work file, to record the modes
    of that file and of the folders above it, up to the work folder, while the run is live."""
    real = getattr(backup_module, name)

    def recording(path: Path, *args: Any, **kwargs: Any) -> Any:
        seen[str(path)] = mode(path)
        folder = path.parent
        while folder.name.endswith(".work") or folder.name == "check":
            seen[str(folder)] = mode(folder)
            if folder.name.endswith(".work"):
                break
            folder = folder.parent
        return real(path, *args, **kwargs)

    monkeypatch.setattr(backup_module, name, recording)
    return real


def test_every_dump_and_work_file_is_private_from_its_creation(
    brain: BrainLibrary,
    brain_dsn: str,
    empty_dsn: str,
    tmp_path: Path,
    private_tmp: Path,
    permissive_umask: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
    seen: dict[str, int] = {}
    # _sha256 reads each dump that pg_dump wrote; _toc each one extracted for verification.
    spy(monkeypatch, "_sha256", seen)
    spy(monkeypatch, "_toc", seen)
    path = tmp_path / "backups" / "brain.backup"
    backup(brain_dsn, path)
    written = {name for name in seen if name.endswith(".dump")}
    assert len(written) >= 2  # pg_dump's output, and the copy verification extracted
    assert any("/check/" in name for name in written)
    assert mode(path) == 0o600

    verify_backup(path)
    restore(empty_dsn, path)
    restored = {name for name in seen if name.startswith(str(private_tmp))}
    assert {Path(name).name for name in restored} >= {"brain.dump"}
    assert any("brain-verify-" in name for name in restored)
    assert any("brain-restore-" in name for name in restored)

    for name, found in seen.items():
        wanted = 0o700 if Path(name).suffix in (".work", "") else 0o600
        assert found == wanted, f"{name} was {oct(found)} while the run was live"
    # Nothing is left: not in the backups' folder, not in the temporary folder.
    assert sorted(p.name for p in path.parent.iterdir()) == ["brain.backup"]
    assert list(private_tmp.iterdir()) == []


def run_killed(code: str, *args: str, tmp: Path) -> None:
    """Run ``code`` in a new Python process that kills itself with SIGKILL, as the OOM killer
    or `kill -9` would; its TMPDIR is ``tmp``."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr


def age(folder: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(folder, (past, past))


def removed_events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.fields["path"]  # type: ignore[attr-defined]
        for record in caplog.records
        if getattr(record, "event", None) == "stale_work_removed"
    ]


def test_a_killed_backup_leaves_nothing_once_the_next_backup_starts(
    brain: BrainLibrary,
    brain_dsn: str,
    tmp_path: Path,
    private_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
    folder = tmp_path / "backups"
    folder.mkdir()
    # Killed once its archive is written, before verifying and renaming it.
    run_killed(
        """
        import os, signal, sys
        from brain_assets.store import backup as b
        real = b._write_archive
        def then_killed(*args, **kwargs):
            real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        b._write_archive = then_killed
        b.backup(sys.argv[1], sys.argv[2])
        """,
        brain_dsn,
        str(folder / "nightly.backup"),
        tmp=private_tmp,
    )
    [left] = list(folder.iterdir())
    assert left.is_dir() and not (folder / "nightly.backup").exists()
    # What it left was private too: the archive and the dumps hold every row.
    assert mode(left) == 0o700
    assert all(mode(file) == 0o600 for file in left.rglob("*") if file.is_file())
    assert any(file.stat().st_size > 0 for file in left.rglob("*"))

    age(left, STALE_UNLOCKED_S + 60)
    caplog.set_level(logging.INFO, logger="brain_assets")
    backup(brain_dsn, folder / "next.backup")
    assert sorted(p.name for p in folder.iterdir()) == ["next.backup"]
    assert removed_events(caplog) == [str(left)]


def test_a_killed_restore_leaves_nothing_once_the_next_restore_or_check_starts(
    brain: BrainLibrary,
    brain_dsn: str,
    empty_dsn: str,
    tmp_path: Path,
    private_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    brain.register_model(SYMBOL, "ridge", b"weights", metrics={"rmse": 0.1})
    path = tmp_path / "brain.backup"
    backup(brain_dsn, path)
    # Killed after extracting and verifying the dumps, before restoring them.
    run_killed(
        """
        import os, signal, sys
        from brain_assets.store import backup as b
        def killed(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        b._restore_database = killed
        b.restore(sys.argv[1], sys.argv[2])
        """,
        empty_dsn,
        str(path),
        tmp=private_tmp,
    )
    [left] = list(private_tmp.iterdir())
    assert left.name.startswith("brain-restore-")
    assert mode(left) == 0o700 and mode(left / "brain.dump") == 0o600

    age(left, STALE_UNLOCKED_S + 60)
    caplog.set_level(logging.INFO, logger="brain_assets")
    verify_backup(path)
    assert list(private_tmp.iterdir()) == []
    assert removed_events(caplog) == [str(left)]


@pytest.mark.skipif(fcntl is None, reason="no flock: only the age tells a stale folder")
def test_only_stale_folders_of_the_brains_naming_are_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def work(name: str, *, lock: bool = True, old: float = 0.0) -> Path:
        folder = tmp_path / name
        folder.mkdir(mode=0o700)
        (folder / "brain.dump").write_bytes(b"PGDMP rows")
        if lock:
            (folder / ".lock").touch()
        if old:
            age(folder, old)
        return folder

    killed = work(".brain-backup.a.backup.k1l2m3n4.work", old=STALE_UNLOCKED_S + 5)
    live = work(".brain-backup.a.backup.l1v2e3x4.work", old=3600)
    fresh = work(".brain-backup.a.backup.f1r2e3s4.work")
    unlocked_recent = work("brain-restore-u1n2l3k4.work", lock=False, old=3600)
    unlocked_old = work("brain-restore-abcd1234", lock=False, old=STALE_WITHOUT_LOCK_S + 5)
    foreign = work(".someone-else.work", old=10 * STALE_WITHOUT_LOCK_S)
    not_a_folder = tmp_path / "brain-verify-x.work"
    not_a_folder.write_text("a file, not ours to remove")
    age(not_a_folder, 10 * STALE_WITHOUT_LOCK_S)

    # A live run holds its lock (another open file description, as another process has).
    holder = os.open(live / ".lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        caplog.set_level(logging.INFO, logger="brain_assets")
        removed = remove_stale_work(tmp_path)
    finally:
        os.close(holder)

    assert sorted(removed) == sorted([killed, unlocked_old])
    assert sorted(removed_events(caplog)) == sorted([str(killed), str(unlocked_old)])
    for kept in (live, fresh, unlocked_recent, foreign, not_a_folder):
        assert kept.exists(), kept
    assert not killed.exists() and not unlocked_old.exists()
