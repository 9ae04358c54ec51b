"""Champion/challenger promotion, direction-aware rollback, and its history."""

from __future__ import annotations

import subprocess
import sys

import pytest

from brain_assets.decisions.policy import DecisionPolicy
from brain_assets.errors import UnknownModelError
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import (
    ModelVersioning,
    assess_regression,
    relative_degradation,
)
from brain_assets_tests.conftest import count_rows

SYMBOL = "BTC/USDT"


@pytest.mark.parametrize(
    ("metric", "baseline", "new", "expected"),
    [
        ("sharpe_ratio", 2.0, 1.8, 0.10),  # higher is better: a 10% drop
        ("sharpe_ratio", 2.0, 2.2, -0.10),  # an improvement is negative degradation
        ("sharpe_ratio", -0.5, -0.8, 0.60),  # negative baseline: worse is still positive
        ("sharpe_ratio", -0.5, -0.2, -0.60),
        ("sharpe_ratio", 0.0, -0.05, 0.1),  # zero baseline: the 0.5 floor is the scale
        ("composite_score", 0.0, -0.02, 0.2),  # floor 0.1
        ("mae", 0.0, 0.001, 0.1),  # default floor 0.01
        ("rmse", 0.010, 0.011, 0.10),  # lower is better
        ("rmse", 0.010, 0.009, -0.10),
        ("max_drawdown", -0.20, -0.25, 0.25),  # magnitude grew by a quarter
        ("max_drawdown", -0.20, -0.10, -0.50),
        ("max_drawdown", 0.0, -0.02, 2.0),
    ],
)
def test_relative_degradation(metric: str, baseline: float, new: float, expected: float) -> None:
    assert relative_degradation(metric, baseline, new) == pytest.approx(expected)


def test_unknown_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="no known direction"):
        relative_degradation("mystery", 1.0, 2.0)


def test_assess_regression_uses_the_worst_metric_and_threshold() -> None:
    baseline = {"sharpe_ratio": 2.0, "composite_score": 0.5, "rmse": 0.01}
    mild = assess_regression(baseline, {"sharpe_ratio": 1.95, "composite_score": 0.49})
    assert mild.regressed is False
    bad = assess_regression(baseline, {"sharpe_ratio": 1.0, "composite_score": 0.49})
    assert bad.regressed is True
    assert bad.worst["metric"] == "sharpe_ratio"
    assert bad.worst["relative_degradation"] == pytest.approx(0.5)
    assert assess_regression(baseline, {"sharpe_ratio": 1.0}, threshold=0.6).regressed is False
    for threshold in (0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="rollback_threshold"):
            assess_regression(baseline, {"sharpe_ratio": 1.0}, threshold=threshold)


def register(versioning: ModelVersioning, score: float, sharpe: float = 1.0) -> str:
    return versioning.register_version(
        SYMBOL,
        "ridge",
        f"w{score}".encode(),
        metrics={"composite_score": score, "sharpe_ratio": sharpe, "directional_accuracy": 0.55},
    )


def test_champion_challenger(brain: BrainLibrary) -> None:
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed(tolerance=0.1))
    first = register(versioning, 0.50)
    assert brain.get_active_model(SYMBOL).model_id == first
    weaker = register(versioning, 0.30)  # worse beyond the tolerance: a challenger
    assert brain.get_active_model(SYMBOL).model_id == first
    close = register(versioning, 0.46)  # worse, but within 10% of 0.50: promoted
    assert brain.get_active_model(SYMBOL).model_id == close
    history = versioning.history(SYMBOL)
    kept = history[history["action"] == "kept_inactive"]
    assert kept["model_id"].tolist() == [weaker]
    assert kept["details"].iloc[0]["active_score"] == 0.5
    assert kept["details"].iloc[0]["candidate_score"] == 0.3
    promoted = history[(history["action"] == "activated") & (history["model_id"] == close)]
    assert promoted["reason"].tolist() == ["promotion"]
    assert promoted["details"].iloc[0]["baseline"]["composite_score"] == 0.46


def test_check_and_rollback(brain: BrainLibrary) -> None:
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    first = register(versioning, 0.40, sharpe=1.5)
    second = register(versioning, 0.50, sharpe=2.0)
    assert not versioning.check_and_rollback(second, SYMBOL, {"sharpe_ratio": 1.95})
    assert versioning.check_and_rollback(second, SYMBOL, {"sharpe_ratio": 1.0}, 0.05)
    assert brain.get_active_model(SYMBOL).model_id == first
    # The same (stale) check again changes nothing: the regressed model is no longer active.
    assert not versioning.check_and_rollback(second, SYMBOL, {"sharpe_ratio": 1.0})
    history = versioning.history(SYMBOL)
    rollback = history[(history["reason"] == "rollback") & (history["action"] == "activated")]
    assert len(rollback) == 1
    details = rollback["details"].iloc[0]
    assert details["metric"] == "sharpe_ratio"
    assert (details["metric_baseline"], details["new_value"]) == (2.0, 1.0)
    assert details["regressed_model_id"] == second
    assert details["baseline"]["sharpe_ratio"] == 1.5  # the reactivated model's own baseline
    assert details["threshold"] == 0.05
    assert details["relative_degradation"] == pytest.approx(0.5)


def test_rollback_without_an_earlier_version_writes_a_warning(brain: BrainLibrary) -> None:
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    only = register(versioning, 0.5, sharpe=2.0)
    assert not versioning.check_and_rollback(only, SYMBOL, {"sharpe_ratio": -1.0})
    assert brain.get_active_model(SYMBOL).model_id == only
    warning = versioning.history(SYMBOL).iloc[-1]
    assert (warning["action"], warning["reason"]) == ("warning", "rollback_unavailable")


def test_operator_promote_and_rollback(brain: BrainLibrary) -> None:
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    v1 = register(versioning, 0.5)
    v2 = register(versioning, 0.1)  # challenger
    versioning.promote(v2)
    assert brain.get_active_model(SYMBOL).model_id == v2
    versioning.rollback(SYMBOL)
    assert brain.get_active_model(SYMBOL).model_id == v1
    versioning.rollback(SYMBOL, to_version=2)
    assert brain.get_active_model(SYMBOL).version == 2
    with pytest.raises(ValueError, match="no version 9"):
        versioning.rollback(SYMBOL, to_version=9)
    with pytest.raises(ValueError, match="no earlier version"):
        versioning.rollback("ETH/USDT")


def test_bad_input_changes_nothing(brain: BrainLibrary, brain_dsn: str) -> None:
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    model = register(versioning, 0.5)
    register(versioning, 0.6)
    eth = brain.register_model("ETH/USDT", "ridge", b"e", metrics={"composite_score": 0.1})
    before = {t: count_rows(brain_dsn, t) for t in ("model_activations", "model_registry")}
    cases = [
        (
            lambda: versioning.check_and_rollback(model, SYMBOL, {"sharpe_ratio": 1.0}, 0),
            "rollback_threshold",
        ),
        (
            lambda: versioning.check_and_rollback(model, SYMBOL, {"sharpe_ratio": 1.0}, 1.5),
            "rollback_threshold",
        ),
        (
            lambda: versioning.check_and_rollback(model, SYMBOL, {"sharpe_ratio": float("nan")}),
            "must be finite",
        ),
        (
            lambda: versioning.check_and_rollback("nope", SYMBOL, {"sharpe_ratio": 1.0}),
            "unknown model_id",
        ),
        (
            lambda: versioning.check_and_rollback(eth, SYMBOL, {"sharpe_ratio": 1.0}),
            "belongs to symbol 'ETH/USDT'",
        ),
        (lambda: versioning.promote("nope"), "unknown model_id"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    assert {t: count_rows(brain_dsn, t) for t in before} == before
    assert isinstance(UnknownModelError("x"), ValueError)


RACE = """
import random, sys
from brain_assets.library import BrainLibrary
from brain_assets.lifecycle.versioning import DecisionPolicy, ModelVersioning
brain = BrainLibrary(sys.argv[1]); rng = random.Random(int(sys.argv[2]))
v = ModelVersioning(brain, policy=DecisionPolicy.seed())
for i in range(12):
    op = rng.choice(["register", "register", "rollback", "check", "promote"])
    try:
        if op == "register":
            v.register_version("RACE/USDT", "ridge", b"w", metrics={
                "composite_score": rng.random(), "sharpe_ratio": rng.random() * 2})
        elif op == "rollback":
            v.rollback("RACE/USDT")
        elif op == "check":
            active = brain.get_active_model("RACE/USDT")
            if active:
                v.check_and_rollback(active.model_id, "RACE/USDT", {"sharpe_ratio": -5.0})
        else:
            models = brain.list_models("RACE/USDT")
            if len(models):
                v.promote(rng.choice(models["model_id"].tolist()))
    except ValueError as exc:
        if "no earlier version" not in str(exc):
            raise  # only "nothing to roll back to yet" is an expected answer
"""


@pytest.mark.slow
def test_racing_processes_leave_one_active_version_and_a_consistent_history(
    brain: BrainLibrary, brain_dsn: str
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, brain_dsn, str(seed)], stderr=subprocess.PIPE, text=True
        )
        for seed in range(8)
    ]
    errors = [(p.wait(timeout=180), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert all(rc == 0 for rc, _ in errors), errors
    models = brain.list_models("RACE/USDT")
    assert models["is_active"].sum() == 1
    assert models["version"].tolist() == list(range(1, len(models) + 1))
    # Replaying the history must reach the stored state without ever having two actives.
    active = None
    for row in brain.get_activation_history("RACE/USDT").itertuples():
        if row.action == "activated":
            assert active is None, f"{row.model_id} activated while {active} was active"
            active = row.model_id
        elif row.action == "deactivated":
            assert active == row.model_id
            active = None
    assert active == models.loc[models["is_active"], "model_id"].item()


def test_operator_rollbacks_do_not_blacklist_a_model(brain: BrainLibrary) -> None:
    versioning = ModelVersioning(brain, policy=DecisionPolicy.seed())
    v1 = register(versioning, 0.5, sharpe=2.0)
    v2 = register(versioning, 0.6, sharpe=2.0)
    versioning.rollback(SYMBOL)  # operator: back to v1 (v2 deactivated, reason rollback)
    versioning.promote(v2)  # and forward again
    # A regression of v2 now rolls back to v1; then v1 regresses: v2 is a fair target again,
    # because it was only ever rolled back by an operator, not for a regression.
    assert versioning.check_and_rollback(v2, SYMBOL, {"sharpe_ratio": 0.1})
    assert brain.get_active_model(SYMBOL).model_id == v1
    assert not versioning.check_and_rollback(v1, SYMBOL, {"sharpe_ratio": 0.1})
    # v2 was rolled back for a regression after its last activation: it is no target.
    assert versioning.history(SYMBOL).iloc[-1]["reason"] == "rollback_unavailable"
    versioning.promote(v2)  # an operator's promotion clears the mark
    assert versioning.check_and_rollback(v2, SYMBOL, {"sharpe_ratio": 0.1})
    assert brain.get_active_model(SYMBOL).model_id == v1
