"""Step retries for transient database failures, and only for those.

A Dagster ``RetryPolicy`` retries whatever the step raised: a bad bar file or a failed quality
gate would run again to the same end, minutes later. Here a step is asked to retry only when the
database connection itself failed (lost, refused, server restarting) or the server aborted the
transaction for a conflict that a second attempt resolves. Retrying a retrain step is safe:
its outputs are stored per run and registration is idempotent, so a second attempt overwrites
what the first left and registers no version twice.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import dagster as dg
import psycopg

MAX_RETRIES = 3
WAIT_S = 15.0
# Connection exceptions (class 08); admin shutdown, crash shutdown, cannot connect now (server
# restarting); serialization failure and deadlock (the server tells the client to try again).
TRANSIENT_CLASSES = ("08",)
TRANSIENT_STATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01"})

F = TypeVar("F", bound=Callable[..., Any])


def is_transient(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, is a database failure that a new
    attempt can get past."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, psycopg.OperationalError):
            state = current.sqlstate
            # No SQLSTATE: libpq lost or never had the connection (reset, refused, timed out);
            # the pool's own timeout also lands here.
            if state is None or state.startswith(TRANSIENT_CLASSES) or state in TRANSIENT_STATES:
                return True
        current = current.__cause__ or current.__context__
    return False


def retry_transient(asset_fn: F) -> F:
    """Decorate an asset or op body: a transient database failure asks Dagster to run the step
    again (up to ``MAX_RETRIES`` times, ``WAIT_S`` apart); any other error fails it at once."""

    def retry_or_raise(error: Exception) -> None:
        if is_transient(error):
            raise dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=WAIT_S) from error

    # Most of our assets yield their output and then their checks: the failure happens while
    # Dagster iterates, so a generator needs a generator wrapper.
    if inspect.isgeneratorfunction(asset_fn):

        @functools.wraps(asset_fn)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from asset_fn(*args, **kwargs)
            except Exception as error:
                retry_or_raise(error)
                raise

        return generator  # type: ignore[return-value]

    @functools.wraps(asset_fn)
    def function(*args: Any, **kwargs: Any) -> Any:
        try:
            return asset_fn(*args, **kwargs)
        except Exception as error:
            retry_or_raise(error)
            raise

    return function  # type: ignore[return-value]
