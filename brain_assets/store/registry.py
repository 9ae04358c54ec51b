"""Model versions: registration, activation, lookup and verified artifact loading."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg
from psycopg.rows import dict_row

from brain_assets.errors import (
    StaleDecisionError,
    SyntheticBarsRefusedError,
    UnknownModelError,
    integrity_checked,
)
from brain_assets.events import log_event
from brain_assets.provenance import (
    BarProvenance,
    refused_here,
    refused_synthetic,
    synthetic_bars_allowed,
)
from brain_assets.records import ModelVersion, TradingStatus, Transition
from brain_assets.store import validation as check
from brain_assets.store.base import StoreBase
from brain_assets.store.metrics import insert_metric_rows, latest_metrics

MODEL_COLUMNS = (
    "model_id",
    "symbol",
    "version",
    "model_type",
    "composite_score",
    "is_active",
    "hyperparameters",
    "feature_names",
    "training_start",
    "training_end",
    "metrics",
    "artifact_sha256",
    "artifact_format",
    "created_at",
    "horizon",
    "fingerprint",
    "run_id",
    "data_start",
    "data_end",
    "credible",
    "feature_profile",
    "bar_source",
    "bar_timeframe",
    "synthetic_bars",
)
_SELECT_MODEL = f"SELECT {', '.join(MODEL_COLUMNS)} FROM model_registry"  # noqa: S608 (constant)
ACTIVATION_COLUMNS = (
    "activation_id",
    "symbol",
    "model_id",
    "version",
    "action",
    "reason",
    "details",
    "created_at",
)


UNLOADABLE_TRIGGER = "artifact_unloadable"
"""The ``trigger`` of the activation rows that take out a version whose artifact cannot be loaded
(see ModelVersioning.fall_back_from_unloadable)."""


def withdrawn(alias: str) -> str:
    """SQL: model ``<alias>.model_id`` was withdrawn since its latest activation: taken out by
    monitoring (a deactivation for a ``trigger``: a window regression, a credibly losing record,
    drifted inputs, an artifact that cannot be loaded), or found with an artifact that cannot be
    loaded while inactive. Only an activation after the mark (an operator's promote or rollback,
    or a re-promotion) clears it.

    ``alias`` is a fixed table alias from this package, never user input.
    """
    if not alias.isidentifier():
        raise ValueError(f"not a table alias: {alias!r}")
    # coalesce: a version never activated can still be marked unloadable (the selector's pick,
    # a rollback candidate), and the mark must hold for it too.
    return f"""EXISTS (
        SELECT 1 FROM model_activations r
        WHERE r.model_id = {alias}.model_id
          AND ((r.action = 'deactivated' AND r.reason = 'rollback' AND r.details ? 'trigger')
               OR (r.action IN ('deactivated', 'warning')
                   AND r.details ->> 'trigger' = '{UNLOADABLE_TRIGGER}'))
          AND r.activation_id > coalesce((
              SELECT max(x.activation_id) FROM model_activations x
              WHERE x.model_id = {alias}.model_id AND x.action = 'activated'), 0))"""  # noqa: S608


rolled_back_for_regression = withdrawn
"""The earlier name, kept for the modules that import it; it now covers unloadable artifacts."""


def _lineage(
    horizon: object,
    fingerprint: object,
    run_id: object,
    data_start: object,
    data_end: object,
) -> dict[str, Any]:
    """Validated lineage values (None where not given)."""
    if fingerprint is not None:
        text = check.text(fingerprint, "fingerprint")
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise ValueError(f"fingerprint must be 64 lowercase hex digits, got {text!r}")
        fingerprint = text
    start = check.optional_timestamp(data_start, "data_start")
    end = check.optional_timestamp(data_end, "data_end")
    if start and end and start > end:
        raise ValueError("data_start must not be after data_end")
    return {
        "horizon": None if horizon is None else check.positive_int(horizon, "horizon"),
        "fingerprint": fingerprint,
        "run_id": None if run_id is None else check.text(run_id, "run_id"),
        "data_start": start,
        "data_end": end,
    }


_INSERT_VERSION = """INSERT INTO model_registry (model_id, symbol, version, model_type,
       hyperparameters, feature_names, training_start, training_end, artifact,
       artifact_sha256, artifact_format, metrics, composite_score,
       horizon, fingerprint, run_id, data_start, data_end, credible,
       feature_profile, bar_source, bar_timeframe, synthetic_bars, one_row, one_row_sha256)
   SELECT %s, %s, coalesce(max(version), 0) + 1, %s, %s::jsonb, %s, %s, %s,
          %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s::jsonb,
          %s, %s, %s, %s, %s
   FROM model_registry WHERE symbol = %s
   RETURNING created_at, version"""
"""register_model's INSERT: the parameters are _NewVersion.insert_parameters()."""


@dataclass(frozen=True)
class _NewVersion:
    """A model version that register_model was asked to store, every value validated."""

    model_id: str
    symbol: str
    credible: bool | None
    model_type: str
    artifact: bytes
    metrics: dict[str, float]
    hyperparameters: str  # JSON
    feature_names: list[str]
    training: tuple[datetime | None, datetime | None]
    composite_score: float | None
    artifact_format: str
    periods_per_year: float | None
    metrics_json: str
    feature_profile: str | None  # JSON
    lineage: dict[str, Any]
    bars: BarProvenance | None
    one_row: bytes | None = None

    def insert_parameters(self) -> tuple[Any, ...]:
        """The parameters of register_model's INSERT, in its order."""
        bars = self.bars
        return (
            self.model_id,
            self.symbol,
            self.model_type,
            self.hyperparameters,
            self.feature_names,
            *self.training,
            self.artifact,
            hashlib.sha256(self.artifact).hexdigest(),
            self.artifact_format,
            self.metrics_json,
            self.composite_score,
            *(self.lineage[key] for key in _LINEAGE_KEYS),
            self.credible,
            self.feature_profile,
            None if bars is None else bars.source,
            None if bars is None else bars.timeframe,
            None if bars is None else bars.synthetic,
            self.one_row,
            None if self.one_row is None else hashlib.sha256(self.one_row).hexdigest(),
            self.symbol,
        )


_LINEAGE_KEYS = ("horizon", "fingerprint", "run_id", "data_start", "data_end")


def _credible(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"credible must be True, False or None, got {value!r}")


def _training_window(start: object, end: object) -> tuple[datetime | None, datetime | None]:
    first = check.optional_timestamp(start, "training_start")
    last = check.optional_timestamp(end, "training_end")
    if first and last and first > last:
        raise ValueError("training_start must not be after training_end")
    return first, last


def _composite_score(given: object, values: Mapping[str, float]) -> float | None:
    """``given``, else the metrics' composite_score; None when neither is."""
    score = values.get("composite_score") if given is None else given
    return None if score is None else check.finite(score, "composite_score")


def _periods_per_year(value: object) -> float | None:
    ppy = None if value is None else check.finite(value, "periods_per_year")
    if ppy is not None and ppy <= 0:
        raise ValueError("periods_per_year must be positive")
    return ppy


def _bar_provenance(bars: object) -> BarProvenance | None:
    if bars is None or isinstance(bars, BarProvenance):
        return bars
    raise ValueError(f"bars: expected a BarProvenance, got {type(bars).__name__}")


class RegistryMixin(StoreBase):
    def register_model(
        self,
        symbol: str,
        model_type: str,
        artifact: bytes,
        *,
        metrics: Mapping[str, float],
        hyperparameters: Mapping[str, Any] | None = None,
        feature_names: Sequence[str] = (),
        training_start: datetime | str | None = None,
        training_end: datetime | str | None = None,
        composite_score: float | None = None,
        artifact_format: str = "bytes",
        activate: bool = False,
        periods_per_year: float | None = None,
        horizon: int | None = None,
        fingerprint: str | None = None,
        run_id: str | None = None,
        data_start: datetime | str | None = None,
        data_end: datetime | str | None = None,
        credible: bool | None = None,
        feature_profile: Mapping[str, Any] | None = None,
        bars: BarProvenance | None = None,
        one_row: bytes | None = None,
    ) -> str:
        """Store a new version of a symbol's model and return its model_id.

        The version is the symbol's next integer. ``metrics`` are kept on the registry row (the
        numbers at registration) and also written to ``model_metrics``. ``composite_score``
        defaults to ``metrics['composite_score']``. With ``activate=True`` the new version becomes
        the symbol's only active one (reason ``manual``); champion/challenger promotion is
        ModelVersioning's job.

        Lineage: ``horizon``, the Dagster ``run_id`` and the data window it was trained and
        evaluated on. A ``fingerprint`` (64 hex digits, see pipeline.lineage) makes the call
        idempotent: when the symbol already has a version with it, that version's model_id is
        returned and nothing is written. ``credible`` is the activation floor's verdict (see
        decisions.policy; None: not judged). ``feature_profile`` describes the training rows'
        features (see pipeline.drift), what monitoring compares live inputs with. ``bars`` says
        where the training bars came from; a version with synthetic bars is activated only
        where synthetic bars are allowed (see apply_transition). ``one_row`` is the model's
        one-row prediction as arrays (``OneRowModel.to_bytes``), stored with its own sha256.
        """
        row = _NewVersion(
            model_id=str(uuid.uuid4()),
            symbol=check.symbol(symbol),
            credible=_credible(credible),
            model_type=check.text(model_type, "model_type"),
            artifact=check.artifact(artifact),
            metrics=(values := check.metrics(metrics)),
            hyperparameters=check.json_document(hyperparameters, "hyperparameters"),
            feature_names=check.names(feature_names, "feature_names"),
            training=_training_window(training_start, training_end),
            composite_score=_composite_score(composite_score, values),
            artifact_format=check.text(artifact_format, "artifact_format"),
            periods_per_year=_periods_per_year(periods_per_year),
            metrics_json=check.json_document(values, "metrics"),
            feature_profile=(
                None
                if feature_profile is None
                else check.json_document(feature_profile, "feature_profile")
            ),
            lineage=_lineage(horizon, fingerprint, run_id, data_start, data_end),
            bars=_bar_provenance(bars),
            one_row=None if one_row is None else check.artifact(one_row, "one_row"),
        )
        return self._store_version(row, activate=activate)

    def _store_version(self, row: _NewVersion, *, activate: bool) -> str:
        """Insert ``row`` as the symbol's next version, its metrics and, with ``activate``, its
        activation, in one transaction; the model_id of the version with the same fingerprint
        instead, when there is one."""
        symbol, model_id = row.symbol, row.model_id
        with self.transaction() as conn:
            self._lock_symbol(conn, symbol)
            if row.lineage["fingerprint"] is not None:
                existing = self._model_with_fingerprint(conn, symbol, row.lineage["fingerprint"])
                if existing is not None:
                    log_event(
                        "model_version_exists",
                        symbol=symbol,
                        model_id=existing,
                        model_type=row.model_type,
                        fingerprint=row.lineage["fingerprint"],
                    )
                    return existing
            # The next version is computed by the INSERT itself, under the symbol's lock.
            created = conn.execute(_INSERT_VERSION, row.insert_parameters()).fetchone()
            assert created is not None
            version = int(created[1])
            self._remember_registered(model_id, symbol)
            insert_metric_rows(
                conn,
                model_id,
                symbol,
                row.metrics,
                evaluation_date=created[0],
                regime=None,
                periods_per_year=row.periods_per_year,
            )
            if activate:
                self._switch_active(
                    conn,
                    symbol,
                    model_id,
                    reason="manual",
                    details={"requested": "register_model(activate=True)"},
                )
        log_event(
            "model_version_registered",
            symbol=symbol,
            model_id=model_id,
            version=version,
            model_type=row.model_type,
            composite_score=row.composite_score,
            active=activate,
        )
        return model_id

    # -- state switches: the caller holds the symbol's lock (lock_model, lock_symbol) inside
    # -- the enclosing transaction(), which every one of them joins.

    def lock_model(self, model_id: str, *, symbol: str | None = None) -> ModelVersion:
        """``model_id``'s registry row, with its symbol's writer lock held until the enclosing
        ``transaction()`` ends. With ``symbol``, UnknownModelError unless the model is one of
        that symbol's (a caller that names both must not act on another symbol's version)."""
        with self.transaction() as conn:
            model = self._require_model(conn, model_id)
            if symbol is not None and model.symbol != symbol:
                raise UnknownModelError(
                    f"model {model_id} belongs to symbol {model.symbol!r}, not {symbol!r}"
                )
            self._lock_symbol(conn, model.symbol)
        return model

    def apply_transition(
        self, change: Transition, *, synthetic_allowed: bool | None = None
    ) -> str | None:
        """Carry out ``change`` in one transaction under the symbol's lock: check, switch,
        record (see Transition). Returns the version that was active before an ``activate`` or
        ``stand_aside`` (None when none was, and for the other actions).

        An activation row carries ``baseline``, the latest overall metrics the version is
        activated with, which a later rollback check compares its live metrics against. A
        version trained on synthetic bars is never activated unless ``synthetic_allowed``
        (default: the deployment's market source is 'synthetic', see
        provenance.synthetic_bars_allowed).

        Raises (nothing written):
            UnknownModelError: ``model_id`` is not one of the symbol's versions.
            StaleDecisionError: the active version is not the decision's ``expected_active``.
            SyntheticBarsRefusedError: the activation of a version trained on synthetic bars.
        """
        symbol = check.symbol(change.symbol)
        reason = check.text(change.reason, "reason")
        with self.transaction() as conn:
            self._lock_symbol(conn, symbol)
            model = None if change.model_id is None else self._require_model(conn, change.model_id)
            if model is not None and model.symbol != symbol:
                raise UnknownModelError(
                    f"model {model.model_id} belongs to symbol {model.symbol!r}, not {symbol!r}"
                )
            if change.check_active:
                self._check_still_active(conn, symbol, change)
            if change.action == "stand_aside":
                return self._deactivate(conn, symbol, reason=reason, details=change.details)
            assert model is not None  # Transition requires it for the other actions
            if change.action == "activate":
                baseline = {
                    metric: value
                    for metric, value in latest_metrics(conn, model.model_id, symbol).items()
                    if math.isfinite(value)
                }
                return self._switch_active(
                    conn,
                    symbol,
                    model.model_id,
                    reason=reason,
                    details={**change.details, "baseline": baseline},
                    synthetic_allowed=synthetic_allowed,
                )
            self._record_activation(
                symbol,
                model.model_id,
                model.version,
                action=change.history_action,
                reason=reason,
                details=change.details,
            )
            return None

    @staticmethod
    def _check_still_active(conn: psycopg.Connection, symbol: str, change: Transition) -> None:
        row = conn.execute(
            "SELECT model_id FROM model_registry WHERE symbol = %s AND is_active", (symbol,)
        ).fetchone()
        current = None if row is None else str(row[0])
        if current != change.expected_active:
            raise StaleDecisionError(
                f"{symbol}: the decision to {change.action.replace('_', ' ')} was made with "
                f"{change.expected_active or 'no version'} active, but {current or 'none'} is "
                "active now; nothing was written"
            )

    def _check_tradable_bars(
        self, conn: psycopg.Connection, symbol: str, model_id: str, allowed: bool | None
    ) -> None:
        row = conn.execute(
            """SELECT version, synthetic_bars FROM model_registry
               WHERE model_id = %s AND symbol = %s""",
            (model_id, symbol),
        ).fetchone()
        if row is None or not row[1]:
            return
        if not (synthetic_bars_allowed() if allowed is None else allowed):
            raise SyntheticBarsRefusedError(refused_synthetic(row[0], symbol))

    def _switch_active(
        self,
        conn: psycopg.Connection,
        symbol: str,
        model_id: str,
        *,
        reason: str,
        details: Mapping[str, Any] | None = None,
        synthetic_allowed: bool | None = None,
    ) -> str | None:
        """Make ``model_id`` the symbol's only active version; returns the previous one.

        The caller holds the symbol's advisory lock inside the transaction. Every activation
        passes here, so a version trained on synthetic bars is refused here (see
        apply_transition) before anything is written.
        """
        self._check_tradable_bars(conn, symbol, model_id, synthetic_allowed)
        previous = self._deactivate(
            conn, symbol, reason=reason, details=details, except_model=model_id
        )
        activated = conn.execute(
            """UPDATE model_registry SET is_active = true
               WHERE model_id = %s AND symbol = %s AND NOT is_active RETURNING version""",
            (model_id, symbol),
        ).fetchone()
        if activated:
            self._record_activation(
                symbol, model_id, activated[0], action="activated", reason=reason, details=details
            )
        return previous

    def _deactivate(
        self,
        conn: psycopg.Connection,
        symbol: str,
        *,
        reason: str,
        details: Mapping[str, Any] | None = None,
        except_model: str | None = None,
    ) -> str | None:
        """Deactivate the symbol's active version unless it is ``except_model``, recording why;
        returns the one deactivated. Alone it leaves the symbol standing aside.

        The caller holds the symbol's advisory lock inside the transaction.
        """
        previous = conn.execute(
            """UPDATE model_registry SET is_active = false
               WHERE symbol = %s AND is_active AND model_id IS DISTINCT FROM %s
               RETURNING model_id, version""",
            (symbol, except_model),
        ).fetchone()
        if previous:
            self._record_activation(
                symbol,
                previous[0],
                previous[1],
                action="deactivated",
                reason=reason,
                details=details,
            )
        return previous[0] if previous else None

    def _record_activation(
        self,
        symbol: str,
        model_id: str,
        version: int,
        *,
        action: str,
        reason: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one activation-history row (used for 'kept_inactive' and 'warning' decisions).
        Inside an open ``transaction()`` it commits with the change it records."""
        values = (
            symbol,
            model_id,
            version,
            action,
            check.text(reason, "reason"),
            check.json_document(details, "details"),
        )
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO model_activations (symbol, model_id, version, action, reason,
                       details)
                   VALUES (%s, %s, %s, %s, %s, %s::jsonb)""",
                values,
            )

    def activate_model(
        self,
        model_id: str,
        *,
        reason: str = "manual",
        details: Mapping[str, Any] | None = None,
        synthetic_allowed: bool | None = None,
    ) -> ModelVersion:
        """Make ``model_id`` its symbol's active version, whichever is active now (an
        operator's decision; the previous one is deactivated); a version trained on synthetic
        bars only where they are allowed (see apply_transition)."""
        model_id = check.text(model_id, "model_id")
        with self.transaction():
            model = self.require_model(model_id)
            change = Transition(
                "activate", model.symbol, model_id, reason, details or {}, check_active=False
            )
            self.apply_transition(change, synthetic_allowed=synthetic_allowed)
        result = self.get_model(model_id)
        assert result is not None
        return result

    # -- what the activation history says --------------------------------------------------------

    def is_withdrawn(self, model_id: str) -> bool:
        """Whether the version carries a withdrawal mark (see :func:`withdrawn`)."""
        with self.transaction() as conn:
            row = conn.execute(
                f"SELECT {withdrawn('m')} FROM model_registry m WHERE m.model_id = %s",  # noqa: S608
                (model_id,),
            ).fetchone()
        return bool(row and row[0])

    def activation_baseline(self, model_id: str) -> dict[str, Any] | None:
        """The ``baseline`` recorded when ``model_id`` was last activated (see apply_transition);
        None when it never was, or was activated before baselines were recorded."""
        with self.transaction() as conn:
            row = conn.execute(
                """SELECT details -> 'baseline' FROM model_activations
                   WHERE model_id = %s AND action = 'activated'
                   ORDER BY created_at DESC, activation_id DESC LIMIT 1""",
                (model_id,),
            ).fetchone()
        return row[0] if row and row[0] else None

    def activated_at(self, model_id: str) -> str | None:
        """When ``model_id`` was last activated: the last bar the decision saw (``as_of``) for
        an automatic activation, the wall-clock time for an operator's; None when never."""
        with self.transaction() as conn:
            row = conn.execute(
                """SELECT coalesce(details ->> 'as_of', created_at::text) FROM model_activations
                   WHERE model_id = %s AND action = 'activated'
                   ORDER BY activation_id DESC LIMIT 1""",
                (check.text(model_id, "model_id"),),
            ).fetchone()
        return None if row is None else str(row[0])

    def last_automatic_change(self, symbol: str) -> str | None:
        """The ``as_of`` (last bar seen) of the symbol's latest activation change that recorded
        one: the automatic decisions do, an operator's do not."""
        with self.transaction() as conn:
            row = conn.execute(
                """SELECT details ->> 'as_of' FROM model_activations
                   WHERE symbol = %s AND action IN ('activated', 'deactivated')
                     AND details ->> 'as_of' IS NOT NULL
                   ORDER BY activation_id DESC LIMIT 1""",
                (symbol,),
            ).fetchone()
        return None if row is None else str(row[0])

    def previously_active(
        self, symbol: str, *, excluding: str | None, limit: int
    ) -> list[ModelVersion]:
        """Up to ``limit`` versions of ``symbol`` that were active before, other than
        ``excluding`` and not withdrawn since (see :func:`withdrawn`), most recently active
        first: the candidates of a rollback."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT a.model_id, max(a.activation_id) AS last FROM model_activations a"  # noqa: S608
                " WHERE a.symbol = %(symbol)s AND a.action = 'activated'"
                " AND a.model_id IS DISTINCT FROM %(current)s"
                f" AND NOT {withdrawn('a')}"
                " GROUP BY a.model_id ORDER BY last DESC LIMIT %(limit)s",
                {"symbol": symbol, "current": excluding, "limit": limit},
            ).fetchall()
            return [self._require_model(conn, str(row[0])) for row in rows]

    @staticmethod
    def _model_with_fingerprint(
        conn: psycopg.Connection, symbol: str, fingerprint: str
    ) -> str | None:
        row = conn.execute(
            "SELECT model_id FROM model_registry WHERE symbol = %s AND fingerprint = %s",
            (symbol, fingerprint),
        ).fetchone()
        return None if row is None else str(row[0])

    def find_model_by_fingerprint(self, symbol: str, fingerprint: str) -> str | None:
        """The model_id of the symbol's version with this fingerprint, or None."""
        with self.transaction() as conn:
            return self._model_with_fingerprint(
                conn, check.symbol(symbol), check.text(fingerprint, "fingerprint")
            )

    def _require_model(self, conn: psycopg.Connection, model_id: str) -> ModelVersion:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(_SELECT_MODEL + " WHERE model_id = %s", (model_id,)).fetchone()
        if row is None:
            raise UnknownModelError(f"unknown model_id {model_id!r}: no such model in the registry")
        return ModelVersion.from_row(row)

    def _one_model(self, where: str, params: Sequence[Any]) -> ModelVersion | None:
        rows = self._rows(_SELECT_MODEL + " WHERE " + where, params)
        return ModelVersion.from_row(rows[0]) if rows else None

    def require_model(self, model_id: str) -> ModelVersion:
        """``model_id``'s registry row; UnknownModelError when there is none."""
        with self.transaction() as conn:
            return self._require_model(conn, model_id)

    def get_model_version(self, symbol: str, version: int) -> ModelVersion | None:
        """``symbol``'s ``version``, or None."""
        return self._one_model(
            "symbol = %s AND version = %s",
            (check.symbol(symbol), check.positive_int(version, "version")),
        )

    def get_model(self, model_id: str) -> ModelVersion | None:
        return self._one_model("model_id = %s", (check.text(model_id, "model_id"),))

    def get_active_model(self, symbol: str) -> ModelVersion | None:
        return self._one_model("symbol = %s AND is_active", (check.symbol(symbol),))

    def get_best_model(
        self, symbol: str, *, horizon: int | None = None, synthetic_allowed: bool | None = None
    ) -> ModelVersion | None:
        """The symbol's tradable version with the highest composite score (newest among equals).

        "Best" ranks the composite score each version earned on its own retrain's out-of-sample
        test segment (the numbers on its registry row), among the versions that may trade:
        not below the activation floor (``credible`` is not false), not withdrawn since their
        latest activation (rolled back for a metric regression, or an artifact that cannot be
        loaded), and of one horizon (``horizon``; by default the active version's, else the
        newest version's), since versions predicting different horizons do not compete, and
        trained on real bars unless synthetic ones are allowed (see apply_transition). None
        when no version qualifies: the engine stands aside.
        """
        symbol = check.symbol(symbol)
        synthetic = synthetic_bars_allowed() if synthetic_allowed is None else synthetic_allowed
        with self.transaction() as conn:
            if horizon is None:
                row = conn.execute(
                    """SELECT horizon FROM model_registry WHERE symbol = %s
                       ORDER BY is_active DESC, version DESC LIMIT 1""",
                    (symbol,),
                ).fetchone()
                if row is None:
                    return None
                chosen = row[0]
            else:
                chosen = check.positive_int(horizon, "horizon")
            with conn.cursor(row_factory=dict_row) as cur:
                found = cur.execute(
                    _SELECT_MODEL
                    + f""" m WHERE symbol = %s AND horizon IS NOT DISTINCT FROM %s
                        AND credible IS NOT FALSE AND NOT {withdrawn("m")}
                        AND (%s OR synthetic_bars IS NOT TRUE)
                        ORDER BY composite_score DESC NULLS LAST, version DESC LIMIT 1""",
                    (symbol, chosen, synthetic),
                ).fetchone()
        return None if found is None else ModelVersion.from_row(found)

    def tradable_model_ids(
        self, symbol: str, *, horizon: int | None = None, synthetic_allowed: bool | None = None
    ) -> list[str]:
        """The versions get_best_model ranks (same filters), best first."""
        symbol = check.symbol(symbol)
        synthetic = synthetic_bars_allowed() if synthetic_allowed is None else synthetic_allowed
        best = self.get_best_model(symbol, horizon=horizon, synthetic_allowed=synthetic)
        if best is None:
            return []
        rows = self._rows(
            "SELECT m.model_id FROM model_registry m"  # noqa: S608 (fixed SQL only)
            " WHERE symbol = %s AND horizon IS NOT DISTINCT FROM %s AND credible IS NOT FALSE"
            f" AND NOT {withdrawn('m')} AND (%s OR synthetic_bars IS NOT TRUE)"
            " ORDER BY composite_score DESC NULLS LAST, version DESC",
            (symbol, best.horizon, synthetic),
        )
        return [str(row["model_id"]) for row in rows]

    def trading_status(self, symbol: str) -> TradingStatus:
        """What the engine should do for ``symbol``: trade the active version, or stand aside;
        the reason comes from the latest activation decision (why nothing is active, or why
        this is)."""
        symbol = check.symbol(symbol)
        active = self.get_active_model(symbol)
        history = self._rows(
            """SELECT action, reason, details, version FROM model_activations
               WHERE symbol = %s ORDER BY activation_id DESC LIMIT 1""",
            (symbol,),
        )
        last = history[0] if history else None
        if active is not None and refused_here(active):
            reason = refused_synthetic(active.version, symbol) + ": stand aside"
            return TradingStatus(symbol, None, reason)
        if active is not None:
            reason = f"{active.label} is active"
            if last is not None and last["action"] == "activated":
                reason += f" ({last['reason']})"
            return TradingStatus(symbol, active, reason)
        if last is None:
            reason = "no model has been registered for this symbol"
        elif last["action"] == "deactivated":
            reason = (
                f"v{last['version']} was taken out ({last['reason']}, "
                f"{(last['details'] or {}).get('trigger', 'operator')}) and no earlier version "
                "qualified; stand aside until a retrain registers a credible one"
            )
        else:
            rule = str((last["details"] or {}).get("rule", last["reason"]))
            rule = rule.removeprefix("below the activation floor: ")
            reason = f"no version has passed the activation floor (latest: {rule})"
        return TradingStatus(symbol, None, reason)

    def list_models(self, symbol: str) -> pd.DataFrame:
        rows = self._rows(
            _SELECT_MODEL + " WHERE symbol = %s ORDER BY version", (check.symbol(symbol),)
        )
        return self._frame(rows, MODEL_COLUMNS)

    def count_versions(self, symbol: str) -> int:
        """How many versions were ever registered for ``symbol``: every one was a try at
        finding skill on its bars, and the activation floor deflates by all of them."""
        rows = self._rows(
            "SELECT count(*) AS n FROM model_registry WHERE symbol = %s", (check.symbol(symbol),)
        )
        return int(rows[0]["n"])

    def list_symbols(self) -> list[str]:
        """Symbols with at least one registered model."""
        return [
            row["symbol"]
            for row in self._rows("SELECT DISTINCT symbol FROM model_registry ORDER BY symbol")
        ]

    def load_model_artifact(self, model_id: str) -> bytes:
        """The stored artifact, after checking it against the sha256 recorded at registration."""
        model_id = check.text(model_id, "model_id")
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT artifact, artifact_sha256 FROM model_registry WHERE model_id = %s",
                (model_id,),
            ).fetchone()
        if row is None:
            raise UnknownModelError(f"unknown model_id {model_id!r}: no such model in the registry")
        return integrity_checked(bytes(row[0]), row[1], f"artifact of model {model_id}")

    def load_one_row(self, model_id: str) -> bytes | None:
        """The version's one-row model (see register_model), checked against its sha256; None
        when it has none.

        Raises:
            ArtifactIntegrityError: the bytes do not match the sha256 recorded with them.
        """
        model_id = check.text(model_id, "model_id")
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT one_row, one_row_sha256 FROM model_registry WHERE model_id = %s",
                (model_id,),
            ).fetchone()
        if row is None:
            raise UnknownModelError(f"unknown model_id {model_id!r}: no such model in the registry")
        if row[0] is None:
            return None
        return integrity_checked(bytes(row[0]), row[1], f"one-row model of {model_id}")

    def get_activation_history(self, symbol: str) -> pd.DataFrame:
        """Which version became active or inactive, when and why (oldest first)."""
        rows = self._rows(
            f"SELECT {', '.join(ACTIVATION_COLUMNS)} FROM model_activations "  # noqa: S608
            "WHERE symbol = %s ORDER BY created_at, activation_id",
            (check.symbol(symbol),),
        )
        return self._frame(rows, ACTIVATION_COLUMNS)
