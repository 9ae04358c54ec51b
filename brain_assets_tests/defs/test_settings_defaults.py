"""Each default is declared once: the Dagster resources' defaults are those of the core
dataclasses and functions they feed, and every fee or rollback-threshold default in the package
is the shared one (brain_assets.defaults)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest

import brain_assets
from brain_assets.decisions.policy import DecisionPolicy, assess_regression, rollback_assessment
from brain_assets.defaults import FEE_BPS, ROLLBACK_THRESHOLD
from brain_assets.defs.market.resources import ExchangeResource
from brain_assets.defs.monitoring.resources import MonitoringResource
from brain_assets.defs.resources import (
    CleaningConfig,
    DecisionResource,
    LSTMConfig,
    MarketDataResource,
    RetrainResource,
)
from brain_assets.environment import DEFAULT_TIMEFRAME
from brain_assets.market_data.exchange import DEFAULT_PAGE, fetch_symbol
from brain_assets.pipeline.monitoring import evaluate_active_model
from brain_assets.pipeline.settings import LSTMSettings, RetrainSettings
from brain_assets.quality.cleaning import CleaningPolicy
from brain_assets.replay import ReplayPlan


def _field_names(cls: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _keyword_defaults(function: Any) -> dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


@pytest.mark.parametrize(
    ("config", "build", "core"),
    [
        (RetrainResource, RetrainResource.settings, RetrainSettings),
        (LSTMConfig, LSTMConfig.settings, LSTMSettings),
        (CleaningConfig, CleaningConfig.policy, CleaningPolicy),
    ],
)
def test_retrain_config_has_the_settings_fields_and_defaults(
    config: Any, build: Any, core: Any
) -> None:
    assert set(config.model_fields) == _field_names(core)
    assert build(config()) == core()


def test_decision_resource_defaults_are_the_policy_defaults() -> None:
    # tolerance is the seed's promotion tolerance: not offered as a deployment setting.
    # rollback_threshold is the monitored metrics' threshold, passed beside the policy.
    assert set(DecisionResource.model_fields) - {"seed", "rollback_threshold"} == _field_names(
        DecisionPolicy
    ) - {"tolerance"}
    assert DecisionResource().policy() == DecisionPolicy()
    assert DecisionResource(seed=True).policy() == DecisionPolicy.seed()


def test_monitoring_resource_defaults_are_evaluate_active_model_defaults() -> None:
    resource = MonitoringResource()
    defaults = _keyword_defaults(evaluate_active_model)
    # The threshold is a decision setting, beside the rest of the policy.
    assert DecisionResource().rollback_threshold == defaults["rollback_threshold"]
    assert defaults["rollback_threshold"] == ROLLBACK_THRESHOLD
    assert "rollback_threshold" not in MonitoringResource.model_fields
    assert tuple(resource.monitored_metrics) == defaults["monitored"]
    assert resource.min_bars == defaults["min_bars"]
    assert resource.window_bars == defaults["window_bars"]


def test_market_resources_share_the_timeframe_and_page_defaults() -> None:
    assert MarketDataResource().timeframe == ExchangeResource().timeframe == DEFAULT_TIMEFRAME
    assert ExchangeResource().page_limit == _keyword_defaults(fetch_symbol)["limit"]
    assert DEFAULT_PAGE == _keyword_defaults(fetch_symbol)["limit"]


def test_replay_plan_uses_the_shared_rollback_threshold() -> None:
    assert ReplayPlan(start_bars=1).rollback_threshold == ROLLBACK_THRESHOLD
    for function in (assess_regression, rollback_assessment):
        assert _keyword_defaults(function)["threshold"] == ROLLBACK_THRESHOLD


def _parameter_defaults(name: str) -> Iterator[tuple[str, Any]]:
    """(where, default) for every function, method or class of the package whose signature has a
    parameter ``name`` with a default."""
    for info in pkgutil.walk_packages(brain_assets.__path__, "brain_assets."):
        if info.name.endswith("__main__"):  # runs the CLI when imported
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if getattr(value, "__module__", None) != module.__name__:
                continue
            members = list(vars(value).values()) if inspect.isclass(value) else []
            for candidate in (value, *members):
                function = getattr(candidate, "__func__", candidate)  # static/classmethods
                if not callable(function):
                    continue
                try:
                    parameter = inspect.signature(function).parameters.get(name)
                except (TypeError, ValueError):
                    continue
                if parameter is not None and parameter.default is not inspect.Parameter.empty:
                    where = getattr(function, "__qualname__", repr(function))
                    yield f"{module.__name__}.{where}", parameter.default


@pytest.mark.parametrize(
    ("parameter", "shared", "known"),
    [
        ("fee_bps", FEE_BPS, "brain_assets.pipeline.settings.RetrainSettings"),
        ("rollback_threshold", ROLLBACK_THRESHOLD, "brain_assets.replay.ReplayPlan"),
    ],
)
def test_every_default_of_a_shared_parameter_is_the_shared_value(
    parameter: str, shared: float, known: str
) -> None:
    found = dict(_parameter_defaults(parameter))
    assert known in found  # the scan sees the package
    assert {where: value for where, value in found.items() if value != shared} == {}
