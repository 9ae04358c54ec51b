"""Exceptions that callers of the Brain Library may want to catch by type."""

from __future__ import annotations


class BrainError(Exception):
    """Base class of the Brain Library's own errors."""


class BrainConnectionError(BrainError, ConnectionError):
    """The configured PostgreSQL cannot be reached (the message masks any password)."""


class EmbeddedServerError(BrainError, RuntimeError):
    """The embedded PostgreSQL could not be started or does not answer."""


class MigrationError(BrainError, RuntimeError):
    """The schema migrations cannot be applied (missing folder, edited file, bad SQL)."""


class UnknownModelError(BrainError, ValueError):
    """A model_id that is not in the registry (or belongs to another symbol)."""


class ArtifactIntegrityError(BrainError, ValueError):
    """A stored model artifact whose sha256 no longer matches the one recorded at registration."""
