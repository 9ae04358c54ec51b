"""Transient database failures retry the step; every other error fails it at once."""

from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest
from psycopg_pool import PoolTimeout

from brain_assets.defs.retries import is_transient, retry_transient
from brain_assets.errors import BrainError


def server_error(sqlstate: str) -> psycopg.Error:
    error_class = psycopg.errors.lookup(sqlstate)
    return error_class(f"server said {sqlstate}")


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("server closed the connection unexpectedly"),
        PoolTimeout("couldn't get a connection after 30.00 sec"),
        server_error("57P01"),  # admin_shutdown: the server is restarting
        server_error("08006"),  # connection_failure
        server_error("40P01"),  # deadlock_detected
        server_error("40001"),  # serialization_failure
    ],
    ids=lambda error: type(error).__name__,
)
def test_connection_losses_and_conflicts_are_transient(error: Exception) -> None:
    assert is_transient(error)
    # Wrapped by the store's own error, the cause still counts.
    wrapped = BrainError("could not register BTC/USDT")
    wrapped.__cause__ = error
    assert is_transient(wrapped)


@pytest.mark.parametrize(
    "error",
    [
        server_error("55P03"),  # lock_not_available: it already waited the whole lock timeout
        server_error("57014"),  # query_canceled by statement_timeout
        server_error("23505"),  # unique_violation
        server_error("42P01"),  # undefined_table
        ValueError("bars out of order in BTC-USDT.csv"),
        BrainError("BTC/USDT: 3 bars fail the OHLC check"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_that_would_only_recur_are_not_transient(error: Exception) -> None:
    assert not is_transient(error)


def test_a_step_retries_a_lost_connection_and_then_succeeds() -> None:
    attempts: list[int] = []

    @dg.asset
    @retry_transient
    def flaky(context: dg.AssetExecutionContext) -> int:
        attempts.append(context.retry_number)
        if len(attempts) < 3:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return 42

    # Retries are timed by the executor; a zero wait keeps the test short.
    import brain_assets.defs.retries as retries

    saved, retries.WAIT_S = retries.WAIT_S, 0.0
    try:
        result = dg.materialize([flaky])
    finally:
        retries.WAIT_S = saved
    assert result.success
    assert attempts == [0, 1, 2]
    assert result.output_for_node("flaky") == 42


def test_a_generator_step_retries_too() -> None:
    attempts: list[int] = []

    @dg.asset
    @retry_transient
    def streamed(context: dg.AssetExecutionContext) -> Iterator[dg.Output[int]]:
        attempts.append(context.retry_number)
        if len(attempts) < 2:
            raise psycopg.errors.lookup("57P01")(
                "terminating connection due to administrator command"
            )
        yield dg.Output(7)

    import brain_assets.defs.retries as retries

    saved, retries.WAIT_S = retries.WAIT_S, 0.0
    try:
        result = dg.materialize([streamed])
    finally:
        retries.WAIT_S = saved
    assert result.success and attempts == [0, 1]


def test_a_step_with_a_deterministic_error_fails_without_retrying() -> None:
    attempts: list[int] = []

    @dg.asset
    @retry_transient
    def broken(context: dg.AssetExecutionContext) -> int:
        attempts.append(context.retry_number)
        raise BrainError("BTC/USDT: no bars in the store")

    result = dg.materialize([broken], raise_on_error=False)
    assert not result.success
    assert attempts == [0]


def test_every_step_that_writes_to_the_brain_retries_transient_failures() -> None:
    from brain_assets.definitions import defs

    # functools.wraps leaves __wrapped__ on the body retry_transient wraps.
    graph = defs.resolve_asset_graph()
    unwrapped = []
    for key in graph.get_all_asset_keys():
        op = graph.get(key).assets_def.op
        body = op.compute_fn.decorated_fn  # type: ignore[union-attr]
        if not hasattr(body, "__wrapped__"):
            unwrapped.append(key.to_user_string())
    assert unwrapped == []
