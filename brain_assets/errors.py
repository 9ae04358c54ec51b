"""Exceptions that callers of the Brain Library may want to catch by type."""

from __future__ import annotations


class BrainError(Exception):
    """Base class of the Brain Library's own errors."""

    exit_status = 1
    """The ``brain`` command's exit status for it: 1, the command could not be carried out (the
    database, a lock, an artifact, a run); 2 for the errors that refuse an argument."""


class BrainConnectionError(BrainError, ConnectionError):
    """The configured PostgreSQL cannot be reached (the message masks any password)."""


class StoreError(BrainError):
    """A statement of the store failed in the database or on the way to it (connection lost,
    pool exhausted, constraint refused). The driver's error is its ``__cause__``, so that
    ``defs.retries`` still tells a transient failure from a lasting one."""


class EmbeddedServerError(BrainError, RuntimeError):
    """The embedded PostgreSQL could not be started or does not answer."""


class MigrationError(BrainError, RuntimeError):
    """The schema migrations cannot be applied (missing folder, edited file, bad SQL)."""


class UnknownModelError(BrainError, ValueError):
    """A model_id that is not in the registry (or belongs to another symbol)."""

    exit_status = 2


class ArtifactIntegrityError(BrainError, ValueError):
    """A stored model artifact whose sha256 no longer matches the one recorded at registration."""


def integrity_checked(data: bytes, expected: str, what: str) -> bytes:
    """``data`` when its sha256 is ``expected``, else ArtifactIntegrityError naming ``what``."""
    import hashlib

    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ArtifactIntegrityError(
            f"{what} fails its integrity check: sha256 {actual} does not match the {expected} "
            "recorded with it; refusing to load it"
        )
    return data


class LockTimeoutError(BrainError, TimeoutError):
    """A wait for a lock outlasted the session's lock timeout (``$BRAIN_LOCK_TIMEOUT_S``): another
    writer held it for longer. The message names what was locked; the waiting call's transaction
    is rolled back, so it wrote nothing."""


class SymbolLockTimeoutError(LockTimeoutError):
    """Another writer of the symbol (registration, activation, rollback) held the symbol's writer
    lock for longer than the lock timeout; the message names the symbol."""


class BarsLockTimeoutError(LockTimeoutError):
    """Another import of the same bar series held its import lock for longer than the lock
    timeout; the message names the source, symbol and timeframe."""


class PublishLockTimeoutError(LockTimeoutError):
    """Another publication of asset values held the publish lock for longer than the lock
    timeout; the message names the run and the assets and partitions left unpublished."""


class SyntheticBarsRefusedError(BrainError, ValueError):
    """A version trained on synthetic bars was to be activated where the bars are real."""

    exit_status = 2


class MissingBarsError(BrainError, ValueError):
    """The deployment's bar store holds no bars of a symbol (and synthetic bars were not
    chosen): nothing is trained on made-up bars in their place."""


class StaleDecisionError(BrainError, RuntimeError):
    """A decision about which version trades was made against another active version than the
    one active now (another writer changed it in between); nothing was written."""
