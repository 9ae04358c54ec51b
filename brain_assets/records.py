"""The registry's records as the store returns them: frozen, typed, and the same for every caller.

They are defined below the store (core) so that the layers that read them (training, provenance,
the lifecycle, the CLI) and the store that builds them share one definition, the way MLflow's
registry store returns its entities rather than rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

_TIMES = ("training_start", "training_end", "created_at", "data_start", "data_end")


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version of a symbol's model (a ``model_registry`` row, artifact aside)."""

    model_id: str
    symbol: str
    version: int
    model_type: str
    artifact_sha256: str
    artifact_format: str
    composite_score: float | None = None
    is_active: bool = False
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    feature_names: list[str] = field(default_factory=list)
    training_start: datetime | None = None
    training_end: datetime | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    horizon: int | None = None
    fingerprint: str | None = None
    run_id: str | None = None
    data_start: datetime | None = None
    data_end: datetime | None = None
    credible: bool | None = None
    """Whether it passed the activation floor when registered (None: never judged)."""
    feature_profile: dict[str, Any] | None = None
    bar_source: str | None = None
    bar_timeframe: str | None = None
    synthetic_bars: bool | None = None
    """True for generated bars, False for real ones, None for versions older than provenance."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ModelVersion:
        """From a registry row (extra columns, such as the artifact, are left out)."""
        values = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        values["hyperparameters"] = dict(values.get("hyperparameters") or {})
        values["metrics"] = dict(values.get("metrics") or {})
        values["feature_names"] = list(values.get("feature_names") or [])
        return cls(**values)

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> ModelVersion:
        """From the JSON metadata of an export bundle or a cached decision, whose times are
        ISO-8601 strings (fields the metadata lacks keep their defaults)."""
        row = dict(values)
        for name in _TIMES:
            if isinstance(row.get(name), str):
                try:
                    stamp = datetime.fromisoformat(row[name])
                except ValueError:
                    raise ValueError(
                        f"field {name!r} is not an ISO-8601 time: {row[name]!r}"
                    ) from None
                row[name] = stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
        return cls.from_row(row)

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict, keyed by the registry's column names (for JSON output
        and frames)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def label(self) -> str:
        """``<model_type> v<version>``: how messages name it."""
        return f"{self.model_type} v{self.version}"


@dataclass(frozen=True, slots=True)
class TradingStatus:
    """What the engine should do for a symbol: trade ``active``, or stand aside, and why."""

    symbol: str
    active: ModelVersion | None
    reason: str

    @property
    def stand_aside(self) -> bool:
        return self.active is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "active": None if self.active is None else self.active.to_dict(),
            "stand_aside": self.stand_aside,
            "reason": self.reason,
        }


TransitionAction = Literal["activate", "stand_aside", "keep_inactive", "warn"]
_ACTION_ROWS: dict[str, str] = {"keep_inactive": "kept_inactive", "warn": "warning"}


@dataclass(frozen=True, slots=True)
class Transition:
    """A decision on which version of a symbol trades, for the store to carry out.

    The lifecycle's policy decides; the store locks the symbol, checks that the version active
    now is ``expected_active`` (the one the decision was made against; not checked when
    ``check_active`` is false), switches and records the decision in one transaction
    (BrainStore.apply_transition). ``activate`` makes ``model_id`` the only active version;
    ``stand_aside`` deactivates the active one and leaves none; ``keep_inactive`` and ``warn``
    only record a row about ``model_id``.
    """

    action: TransitionAction
    symbol: str
    model_id: str | None
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)
    expected_active: str | None = None
    check_active: bool = True

    def __post_init__(self) -> None:
        if self.action not in ("activate", "stand_aside", "keep_inactive", "warn"):
            raise ValueError(f"transition action: unknown {self.action!r}")
        if self.action != "stand_aside" and not self.model_id:
            raise ValueError(f"a {self.action!r} transition names the version (model_id)")

    @property
    def history_action(self) -> str:
        """The ``action`` of the activation-history row a keep_inactive or warn writes."""
        return _ACTION_ROWS[self.action]
