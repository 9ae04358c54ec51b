"""Structured logs: JSON lines with the documented keys, passwords masked, idempotent setup."""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from brain_assets.events import log_event
from brain_assets.logs import (
    BACKUP_COUNT,
    LOG_DIR_ENV,
    LOG_FILE_NAME,
    LOGGER_NAME,
    MAX_BYTES,
    configure_logging,
    redact,
    remove_logging,
)

SECRET = "s3cr3t-Pa55"
CONFIGURED_SECRET = "only-in-the-env-9xq"


@pytest.fixture(autouse=True)
def clean_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """Each test starts and ends with none of our handlers and the logger's original level."""
    logger = logging.getLogger(LOGGER_NAME)
    level = logger.level
    monkeypatch.delenv(LOG_DIR_ENV, raising=False)
    monkeypatch.delenv("DATABASE_DSN", raising=False)
    remove_logging()
    yield logger
    remove_logging()
    logger.setLevel(level)


def read_lines(path: Path) -> list[dict[str, Any]]:
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_json_lines_carry_the_documented_keys(tmp_path: Path) -> None:
    path = configure_logging(log_dir=tmp_path / "nested" / "logs")
    assert path == (tmp_path / "nested" / "logs" / LOG_FILE_NAME).resolve()

    log_event("model_promoted", symbol="BTC/USDT", model_id=7, metrics={"sharpe": 1.4})
    logging.getLogger("brain_assets.store").debug("plain message %s", "arg")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger(LOGGER_NAME).exception("it failed")

    promoted, plain, failed = read_lines(path)
    assert set(promoted) == {"ts", "level", "logger", "event", "message", "fields"}
    assert promoted["event"] == "model_promoted"
    assert promoted["level"] == "INFO"
    assert promoted["logger"] == "brain_assets"
    assert promoted["fields"] == {"symbol": "BTC/USDT", "model_id": 7, "metrics": {"sharpe": 1.4}}
    assert promoted["message"].startswith("model_promoted symbol=BTC/USDT")
    assert promoted["ts"].endswith("+00:00")

    assert plain["event"] is None
    assert plain["fields"] == {}
    assert plain["message"] == "plain message arg"
    assert plain["level"] == "DEBUG"
    assert plain["logger"] == "brain_assets.store"

    assert failed["level"] == "ERROR"
    assert "RuntimeError: boom" in failed["exception"]


def test_fields_that_are_not_json_types_are_written_as_text(tmp_path: Path) -> None:
    path = configure_logging(log_dir=tmp_path)
    log_event("data_quality_failed", path=Path("/data/bars.parquet"), failed={"a", "b"}, when=None)
    (line,) = read_lines(path)
    assert line["fields"]["path"] == "/data/bars.parquet"
    assert sorted(line["fields"]["failed"]) == ["a", "b"]
    assert line["fields"]["when"] is None


def test_dsn_passwords_never_reach_the_file_or_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = configure_logging(log_dir=tmp_path)
    dsn = f"postgresql://brain:{SECRET}@db.internal:5432/huracan"
    log_event("brain_library_initialization_failed", dsn=dsn, error=f"password={SECRET} rejected")
    logging.getLogger(LOGGER_NAME).warning("connecting to %s", dsn)
    try:
        raise ConnectionError(f"could not connect to {dsn}")
    except ConnectionError:
        logging.getLogger(LOGGER_NAME).exception("init failed")

    text = path.read_text(encoding="utf-8")
    console = capsys.readouterr().err
    assert SECRET not in text
    assert SECRET not in console
    assert "postgresql://brain:***@db.internal:5432/huracan" in text
    assert "password=***" in text
    assert "postgresql://brain:***@db.internal" in console
    assert all(isinstance(line, dict) for line in read_lines(path))


def test_the_database_dsn_password_is_masked_wherever_it_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_DSN", f"host=db.internal user=brain password={CONFIGURED_SECRET}")
    path = configure_logging(log_dir=tmp_path)
    # Not shaped like a DSN at all: only the configured password tells the filter to mask it.
    log_event("brain_integration_complete", note=f"token {CONFIGURED_SECRET} seen", n=1)
    logging.getLogger(LOGGER_NAME).info("raw %s", CONFIGURED_SECRET)

    text = path.read_text(encoding="utf-8")
    assert CONFIGURED_SECRET not in text
    assert CONFIGURED_SECRET not in capsys.readouterr().err
    first, second = read_lines(path)
    assert first["fields"]["note"] == "token *** seen"
    assert second["message"] == "raw ***"


def test_configuring_twice_adds_no_duplicate_handlers(
    tmp_path: Path, clean_logger: logging.Logger
) -> None:
    configure_logging(log_dir=tmp_path / "first")
    before = list(clean_logger.handlers)
    path = configure_logging(log_dir=tmp_path / "second")
    after = list(clean_logger.handlers)
    assert len(after) == len(before)
    assert path.parent == (tmp_path / "second").resolve()

    log_event("model_rollback", symbol="ETH/USDT")
    assert len(read_lines(path)) == 1
    assert (tmp_path / "first" / LOG_FILE_NAME).read_text(encoding="utf-8") == ""


def test_handlers_someone_else_attached_are_left_alone(
    tmp_path: Path, clean_logger: logging.Logger
) -> None:
    foreign = logging.NullHandler()
    clean_logger.addHandler(foreign)
    try:
        configure_logging(log_dir=tmp_path)
        configure_logging(log_dir=tmp_path)
        remove_logging()
        assert clean_logger.handlers == [foreign]
    finally:
        clean_logger.removeHandler(foreign)


def test_env_var_moves_the_log_and_the_file_rotates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_logger: logging.Logger
) -> None:
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "from_env"))
    path = configure_logging()
    assert path == (tmp_path / "from_env" / LOG_FILE_NAME).resolve()
    rotating = [h for h in clean_logger.handlers if isinstance(h, logging.FileHandler)]
    assert len(rotating) == 1
    assert isinstance(rotating[0], logging.handlers.RotatingFileHandler)
    assert rotating[0].maxBytes == MAX_BYTES
    assert rotating[0].backupCount == BACKUP_COUNT


def test_levels_apply_per_handler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_logger: logging.Logger
) -> None:
    path = configure_logging(log_dir=tmp_path, console_level=logging.WARNING)
    clean_logger.debug("only in the file")
    clean_logger.warning("in both")
    assert [line["message"] for line in read_lines(path)] == ["only in the file", "in both"]
    err = capsys.readouterr().err
    assert "only in the file" not in err
    assert "WARNING brain_assets: in both" in err


def test_redact_leaves_text_without_passwords_unchanged() -> None:
    text = "model_promoted symbol=BTC/USDT https://example.org/a?b=c"
    assert redact(text) == text


WRITERS = 4
LINES_PER_WRITER = 250
TINY_MAX_BYTES = 4096
# Enough backups to keep every line: the check is that none is lost, torn or duplicated.
ROOMY_BACKUP_COUNT = 500


def _write_numbered_lines(log_dir: str, writer: int, start: Any) -> None:
    """One process of the shared-log test (spawned: module level, so it can be pickled)."""
    configure_logging(
        log_dir=Path(log_dir),
        console_level=logging.CRITICAL,
        max_bytes=TINY_MAX_BYTES,
        backup_count=ROOMY_BACKUP_COUNT,
    )
    start.wait()  # all writers at once: the rotations collide as they do under `brain dev`
    for number in range(LINES_PER_WRITER):
        log_event("numbered_line", writer=writer, number=number, pad="x" * (number % 37))
    remove_logging()


def test_processes_sharing_the_log_lose_no_line_across_rotations(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [
        context.Process(target=_write_numbered_lines, args=(str(tmp_path), writer, start))
        for writer in range(WRITERS)
    ]
    for process in writers:
        process.start()
    start.set()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0

    backups = sorted(
        tmp_path.glob(f"{LOG_FILE_NAME}.*"), key=lambda p: int(p.suffix[1:]), reverse=True
    )
    assert [p.name for p in backups] == [f"{LOG_FILE_NAME}.{n}" for n in range(len(backups), 0, -1)]
    # It did rotate, many times, and kept everything (fewer files than the backups allowed).
    assert 20 < len(backups) < ROOMY_BACKUP_COUNT
    files = [*backups, tmp_path / LOG_FILE_NAME]  # oldest first
    seen: list[tuple[int, int]] = []
    for path in files:
        assert path.stat().st_size <= TINY_MAX_BYTES
        for text in path.read_text(encoding="utf-8").splitlines():
            line = json.loads(text)  # a torn or interleaved line would not parse
            assert line["event"] == "numbered_line"
            seen.append((line["fields"]["writer"], line["fields"]["number"]))

    expected = {(w, n) for w in range(WRITERS) for n in range(LINES_PER_WRITER)}
    assert len(seen) == len(expected)
    assert set(seen) == expected  # with the length: every line exactly once
    for writer in range(WRITERS):
        # Read oldest file first, each writer's lines come in the order it wrote them.
        numbers = [n for w, n in seen if w == writer]
        assert numbers == sorted(numbers)
    # The lock file is hidden: `brain.log*` (operators, the bench) matches log files only.
    assert (tmp_path / f".{LOG_FILE_NAME}.lock").is_file()
    assert set(tmp_path.glob(f"{LOG_FILE_NAME}*")) == set(files)
