"""Structured logs for operators: JSON lines in a rotating file, readable lines on stderr.

``configure_logging()`` attaches both handlers to the ``brain_assets`` logger. The file is
``logs/brain.log`` under the working directory, or under ``$BRAIN_LOG_DIR``; it rotates at 10 MB
and keeps five old files (``brain.log.1`` the newest of them, ``brain.log.5`` the oldest). Under
``brain dev`` the UI, the daemon and every run worker write this one file: the handler
(``SharedRotatingFileHandler``) serialises their writes and rotations with a lock file,
``.brain.log.lock``, so no line is lost, torn or written into a file another process has just
rotated away. Everything, oldest first: ``cat $(ls -tr logs/brain.log*)``. Each line is one JSON
object::

    {"ts": "2025-01-02T01:00:03.120+00:00", "level": "INFO", "logger": "brain_assets",
     "event": "model_promoted", "message": "model_promoted symbol=BTC/USDT ...",
     "fields": {"symbol": "BTC/USDT", ...}}

with an ``exception`` key added when the record carries a traceback. ``event`` is null for plain
log calls; named events come from ``brain_assets.events.log_event``.

Events operators grep for (``grep '"event": "model_rollback"' logs/brain.log`` or ``jq``):

- ``brain_library_initialized`` / ``brain_library_initialization_failed``: the store connected
  and applied its migrations, or could not.
- ``brain_integration_complete``: a retrain run wrote its results into the Brain.
- ``feature_importance_analyzed`` / ``feature_importance_analysis_failed``: an importance
  analysis was stored, or failed for a model.
- ``model_version_registered``: a new model version is in the registry.
- ``model_promoted``: a version became the active model of its symbol.
- ``model_rollback``: the active model went back to an earlier version.
- ``data_quality_failed``: a data-quality check failed for a symbol.
- ``alert_delivery_failed``: an alert webhook was down or refused the alert (the alert itself is
  still in this log under its own event name; an outbox alert is tried again later).
- ``alert_delivered`` / ``alert_abandoned``: an outbox alert reached the webhook, or was given up
  (too many failed attempts, or older than a day).

Passwords never reach a handler's output: every record passes through ``PasswordFilter``, which
masks DSN passwords (``postgresql://user:***@``, ``password=***``) and any occurrence of the
password of ``$DATABASE_DSN``. The filter rewrites the record itself, so what propagates on to the
root logger's handlers (an application's own, pytest's caplog) is masked as well.
"""

from __future__ import annotations

import functools
import json
import logging
import logging.handlers
import os
import re
import stat
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from brain_assets.dsn import mask_dsn, password_of
from brain_assets.environment import configured_dsn

try:
    import fcntl
except ImportError:  # Windows: no flock; the handler falls back to one-process rotation.
    fcntl = None  # type: ignore[assignment]

LOGGER_NAME = "brain_assets"
LOG_DIR_ENV = "BRAIN_LOG_DIR"
DEFAULT_LOG_DIR = "logs"
LOG_FILE_NAME = "brain.log"
MAX_BYTES = 10 * 1024 * 1024
BACKUP_COUNT = 5

# Marks the handlers this module owns, so that a second configure_logging() replaces them
# instead of stacking duplicates, and leaves handlers that someone else attached alone.
_OWNED = "_brain_assets_handler"


# mask_dsn only knows ``password=`` at the start of a DSN parameter; in log text it also follows
# other punctuation (``error=password=...``, ``(password=...)``) or a prefix (``PGPASSWORD=``).
_LOOSE_PASSWORD = re.compile(
    r"(?P<head>(?<![A-Za-z0-9])(?:PG)?password\s*=\s*)(?P<pw>'(?:\\.|[^'])*'|[^\s&]+)",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=8)
def _dsn_password(dsn: str) -> str | None:
    # Parsing a DSN on every log line would be wasteful; the DSN rarely changes in a process.
    return password_of(dsn)


def redact(text: str) -> str:
    """``text`` with DSN passwords and the configured ``DATABASE_DSN`` password as ``***``."""
    masked = _LOOSE_PASSWORD.sub(lambda m: m.group("head") + "***", mask_dsn(text))
    dsn = configured_dsn()
    password = _dsn_password(dsn) if dsn else None
    return masked.replace(password, "***") if password else masked


def redact_value(value: Any) -> Any:
    """A JSON-safe copy of ``value`` with every string in it redacted.

    Strings are masked one by one rather than after serialisation: the patterns could otherwise
    swallow the quotes and commas around a value and leave a broken JSON line.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(key)): redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact(str(value))


class PasswordFilter(logging.Filter):
    """Masks passwords in a record's message, fields and traceback before any handler sees it.

    The record is rewritten in place (message rendered, ``args`` dropped), so every handler after
    this one, including the ones of other libraries, gets the masked text too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A message that does not match its arguments: keep both, masked, rather than let
            # logging's error report print them unmasked later.
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            record.fields = redact_value(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, event, message, fields[, exception]."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None),
            "message": record.getMessage(),
            "fields": redact_value(fields) if isinstance(fields, Mapping) else {},
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """``2025-01-02T01:00:03Z WARNING brain_assets: message`` (tracebacks follow on new lines)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%SZ")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.strftime(datefmt or "%Y-%m-%dT%H:%M:%SZ")

    def format(self, record: logging.LogRecord) -> str:
        # Plain text, so a last pass over the whole line is safe and catches anything a
        # formatter added after the filter ran.
        return redact(super().format(record))


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A ``RotatingFileHandler`` that several processes may share (``brain dev``: UI, daemon and
    run workers all write ``brain.log``).

    The stock handler decides to rotate from its own file offset and renames the file under the
    other processes' feet: they keep writing into the renamed file (then into a deleted one) and
    the next one to fill up rotates again, clobbering the backups. Here every write holds an
    exclusive ``flock`` on a lock file next to the log, and under it the handler

    - reopens the log when the file at its path is no longer the one it has open (same device and
      inode), i.e. another process rotated it;
    - measures the file on disk, not its own offset, to decide whether this line would take it
      past ``maxBytes``, and rotates then;
    - writes the line and flushes it before releasing the lock.

    The lock is a separate, never-renamed file because a lock held on the log itself would move
    with it at rotation. Threads of one process are already serialised by the handler's own lock.
    """

    def __init__(
        self, filename: str | os.PathLike[str], *, max_bytes: int, backup_count: int
    ) -> None:
        # Opened (and created) at once, so the file exists from the start; whether it is still
        # the right one is checked under the lock on every write.
        super().__init__(filename, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        base = Path(self.baseFilename)
        # Hidden, so that `brain.log*` globs (operators, the bench) never pick it up.
        self.lock_path = str(base.with_name(f".{base.name}.lock"))
        self._lock_fd: int | None = None
        self._lock_pid: int | None = None

    def _lock_file(self) -> int:
        # A forked child shares its parent's open file description, and flock treats both as
        # one holder: the child needs a description of its own to be excluded by the parent.
        if self._lock_fd is None or self._lock_pid != os.getpid():
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            self._lock_pid = os.getpid()
        return self._lock_fd

    def _reopen_if_rotated(self) -> None:
        if self.stream is None:
            return
        try:
            on_disk = os.stat(self.baseFilename)
        except FileNotFoundError:
            on_disk = None
        mine = os.fstat(self.stream.fileno())
        if on_disk is None or (on_disk.st_dev, on_disk.st_ino) != (mine.st_dev, mine.st_ino):
            self.stream.close()
            self.stream = None

    def _would_overflow(self, size: int) -> bool:
        if self.maxBytes <= 0:
            return False
        try:
            on_disk = os.stat(self.baseFilename)
        except FileNotFoundError:
            return False
        # Never rotate something that is not a regular file (bpo-45401: /dev/null, a pipe).
        if not stat.S_ISREG(on_disk.st_mode):
            return False
        return on_disk.st_size > 0 and on_disk.st_size + size > self.maxBytes

    def emit(self, record: logging.LogRecord) -> None:
        if fcntl is None:
            super().emit(record)
            return
        try:
            line = self.format(record) + self.terminator
            size = len(line.encode(self.encoding or "utf-8", self.errors or "strict"))
            fd = self._lock_file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                self._reopen_if_rotated()
                if self._would_overflow(size):
                    self.doRollover()
                if self.stream is None:
                    self.stream = self._open()
                self.stream.write(line)
                self.stream.flush()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except Exception:
            # logging's own convention: report on stderr (logging.raiseExceptions), never raise
            # into the code that logged.
            self.handleError(record)

    def close(self) -> None:
        self.acquire()
        try:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            self._lock_fd = None
            super().close()
        finally:
            self.release()


def log_dir_from_env() -> Path:
    """``$BRAIN_LOG_DIR``, else ``./logs`` (resolved against the working directory)."""
    raw = os.environ.get(LOG_DIR_ENV, "").strip()
    return Path(raw).expanduser().resolve() if raw else (Path.cwd() / DEFAULT_LOG_DIR).resolve()


def _owned_handlers(logger: logging.Logger) -> list[logging.Handler]:
    return [handler for handler in logger.handlers if getattr(handler, _OWNED, False)]


def remove_logging() -> None:
    """Detach and close the handlers that ``configure_logging`` attached (tests, shutdown)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in _owned_handlers(logger):
        logger.removeHandler(handler)
        handler.close()


def logging_configured() -> bool:
    """Whether ``configure_logging`` has attached its handlers in this process."""
    return bool(_owned_handlers(logging.getLogger(LOGGER_NAME)))


def configure_logging(
    *,
    log_dir: Path | None = None,
    console: bool = True,
    console_level: int = logging.INFO,
    json_level: int = logging.DEBUG,
    max_bytes: int = MAX_BYTES,
    backup_count: int = BACKUP_COUNT,
) -> Path:
    """Attach the JSON-lines file handler and the console handler; returns the log file path.

    Calling it again replaces the handlers it attached before (a new ``log_dir`` or level takes
    effect) rather than adding a second copy of each. ``console=False`` attaches the file
    handler alone (a run worker, whose terminal lines are its parent's to print).
    """
    directory = Path(log_dir).expanduser().resolve() if log_dir else log_dir_from_env()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOG_FILE_NAME

    logger = logging.getLogger(LOGGER_NAME)
    remove_logging()

    file_handler = SharedRotatingFileHandler(path, max_bytes=max_bytes, backup_count=backup_count)
    file_handler.setLevel(json_level)
    file_handler.setFormatter(JsonLinesFormatter())

    console_handler = logging.StreamHandler(sys.stderr)
    console_handler.setLevel(console_level)
    console_handler.setFormatter(ConsoleFormatter())

    handlers: list[logging.Handler] = [file_handler, console_handler] if console else [file_handler]
    for handler in handlers:
        handler.addFilter(PasswordFilter())
        setattr(handler, _OWNED, True)
        logger.addHandler(handler)

    # The logger must let through what the most verbose handler wants; NOTSET would defer to
    # the root logger's WARNING and drop the INFO events operators rely on.
    logger.setLevel(min(console_level, json_level) if console else json_level)
    return path
