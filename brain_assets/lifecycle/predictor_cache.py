"""What lets the engine keep trading through a Brain outage: a local cache of the last decision the
Brain gave for each symbol, and the bundles ``brain export`` writes.

Every time :func:`~brain_assets.lifecycle.predictor.load_predictor` hears from the Brain it records
the decision in the cache folder (``$BRAIN_PREDICTOR_CACHE``, default
``<BRAIN_HOME>/predictor-cache``; ``off`` turns the cache off):

``<symbol>.<key>.json``
    One decision: stand aside (with the Brain's reason), or a version to trade, described by the
    fields of an export's sidecar (:data:`BUNDLE_FIELDS`), with why the Brain recommends it, when
    it was activated and when the Brain last confirmed it (``cached_at``). ``symbol`` is
    percent-encoded; ``key`` is ``active``, or ``regime-<name>`` for a regime's pick.
``artifacts/<sha256>.<ext>``
    The artifacts, named by their sha256: a version shared by two decisions is stored once, and
    a decision never names a file that another version's bytes could replace. The name is derived
    from the decision's recorded sha256, never read from the file, and the bytes are checked
    against it before anything deserialises them.

Every file is written to a temporary file beside it (mode 0600) and renamed into place, so a
reader sees the old file or the new one, never part of one. The artifact is written before the
decision that names it. An artifact no decision names any more is deleted once it is
:data:`PRUNE_AFTER_S` old: a writer in another process touches the artifact it is about to name,
so the grace period keeps a concurrent prune from taking it away in between.

Importing this module loads no scikit-learn, skops or TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from brain_assets.errors import ArtifactIntegrityError, BrainError, integrity_checked
from brain_assets.records import ModelVersion

__all__ = [
    "BUNDLE_FIELDS",
    "BUNDLE_FORMAT",
    "CACHE_ENV",
    "Bundle",
    "CachedDecision",
    "PredictorCache",
    "PredictorCacheError",
    "read_bundle",
    "write_atomically",
]

CACHE_ENV = "BRAIN_PREDICTOR_CACHE"
CACHE_OFF = "off"
CACHE_FOLDER = "predictor-cache"
CACHE_FORMAT = 1
BUNDLE_FORMAT = 1
"""Version of the sidecar ``brain export`` writes; a loader refuses a newer one."""
FILE_MODE = 0o600
FOLDER_MODE = 0o700
PRUNE_AFTER_S = 3600.0

# The registry row's metadata that travels next to an exported or cached artifact: everything a
# Predictor needs (identity, features, horizon, the bar spacing and the position band in
# ``metrics``, the artifact's format and sha256) and what an operator wants to see with it.
BUNDLE_FIELDS = (
    "model_id",
    "symbol",
    "version",
    "model_type",
    "horizon",
    "feature_names",
    "artifact_sha256",
    "artifact_format",
    "training_start",
    "training_end",
    "data_start",
    "data_end",
    "composite_score",
    "credible",
    "created_at",
    "run_id",
    "hyperparameters",
    "metrics",
    "bar_source",
    "bar_timeframe",
    "synthetic_bars",
)
EXTENSIONS = {"skops": ".skops", "keras": ".keras"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PredictorCacheError(BrainError):
    """The Brain did not answer and the cache cannot stand in for it: no decision was cached for
    the symbol, the cache is off, or the cached files are unreadable or fail their sha256. The
    message names the symbol and the file; nothing was loaded. ``__cause__`` is the connection
    error, or what was wrong with the cached files."""

    def __init__(self, symbol: str, message: str) -> None:
        super().__init__(message)
        self.symbol = symbol


@dataclass(frozen=True)
class CachedDecision:
    """One decision read back from the cache."""

    symbol: str
    regime: str | None
    cached_at: datetime
    """When the Brain last gave this decision (UTC)."""
    stand_aside: bool
    reason: str
    activated_at: str | None
    model: ModelVersion | None
    """The version (its :data:`BUNDLE_FIELDS`); None for a stand-aside decision."""
    path: Path

    def age_s(self, now: datetime | None = None) -> float:
        """Seconds since the Brain last gave this decision."""
        return ((now or datetime.now(UTC)) - self.cached_at).total_seconds()


@dataclass(frozen=True)
class Bundle:
    """What ``brain export`` wrote: the verified artifact and its sidecar's metadata."""

    artifact_path: Path
    sidecar_path: Path
    model: ModelVersion
    data: bytes
    exported_at: datetime | None
    """When it was exported; None for a sidecar written before exports recorded it."""


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file (mode 0600) next to ``path``, then rename it there."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            os.fchmod(out.fileno(), FILE_MODE)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        return value.item()  # numpy and pandas scalars
    raise TypeError(f"cannot write a {type(value).__name__} to the predictor cache")


def bundle_metadata(model: ModelVersion) -> dict[str, Any]:
    """The :data:`BUNDLE_FIELDS` of a version, as JSON values."""
    record = model.to_dict()
    values: dict[str, Any] = json.loads(
        json.dumps({k: record[k] for k in BUNDLE_FIELDS}, default=_plain)
    )
    return values


def _timestamp(raw: object, field: str, where: str) -> datetime:
    if not isinstance(raw, str):
        raise ValueError(f"{where}: field {field!r} must be an ISO-8601 time, got {raw!r}")
    try:
        stamp = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"{where}: field {field!r} is not an ISO-8601 time: {raw!r}") from exc
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _version(raw: object, where: str) -> ModelVersion:
    try:
        return ModelVersion.from_json(checked_model(raw, where))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def checked_model(raw: object, where: str) -> dict[str, Any]:
    """The metadata of a bundle or cached decision, after checking every field a Predictor reads;
    a ValueError names ``where`` and the field."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: the model metadata must be a JSON object")
    for name in ("model_id", "symbol", "model_type"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise ValueError(f"{where}: field {name!r} must be a non-empty string")
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{where}: field 'version' must be a positive integer, got {version!r}")
    horizon = raw.get("horizon")
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int)):
        raise ValueError(f"{where}: field 'horizon' must be an integer or null, got {horizon!r}")
    sha = raw.get("artifact_sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise ValueError(f"{where}: field 'artifact_sha256' must be 64 lowercase hex digits")
    if raw.get("artifact_format") not in EXTENSIONS:
        raise ValueError(
            f"{where}: field 'artifact_format' must be one of {', '.join(EXTENSIONS)}, got "
            f"{raw.get('artifact_format')!r}"
        )
    names = raw.get("feature_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where}: field 'feature_names' must be a list of feature names")
    if raw.get("metrics") is not None and not isinstance(raw["metrics"], dict):
        raise ValueError(f"{where}: field 'metrics' must be an object or null")
    if raw.get("synthetic_bars") not in (None, True, False):
        raise ValueError(f"{where}: field 'synthetic_bars' must be true, false or null")
    return raw


def read_bundle(path: Path) -> Bundle:
    """The artifact ``brain export`` wrote at ``path`` (or the one whose sidecar ``path`` is) and
    its ``.json`` sidecar, the artifact checked against the sidecar's sha256.

    Raises:
        ValueError: a missing or unreadable file, or a sidecar without a field a Predictor
            needs (both named).
        ArtifactIntegrityError: the artifact does not match the sidecar's sha256.
    """
    path = path.expanduser()
    if path.suffix == ".json":
        sidecar, artifact = path, path.with_suffix("")
    else:
        artifact, sidecar = path, path.with_name(path.name + ".json")
    try:
        raw = json.loads(sidecar.read_bytes())
    except FileNotFoundError:
        raise ValueError(
            f"{sidecar}: no metadata sidecar next to the bundle {artifact} (brain export writes "
            "the two together)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{sidecar}: cannot read the bundle's metadata: {exc}") from exc
    model = _version(raw, str(sidecar))
    declared = raw.get("bundle_format", BUNDLE_FORMAT)
    if declared != BUNDLE_FORMAT:
        raise ValueError(
            f"{sidecar}: bundle_format {declared!r}; this version of brain_assets reads "
            f"format {BUNDLE_FORMAT}"
        )
    if artifact.suffix != EXTENSIONS[model.artifact_format]:
        raise ValueError(
            f"{artifact}: the sidecar describes a {model.artifact_format} artifact, which is "
            f"written to a {EXTENSIONS[model.artifact_format]} file"
        )
    try:
        data = artifact.read_bytes()
    except OSError as exc:
        raise ValueError(f"{artifact}: cannot read the bundle's artifact: {exc}") from exc
    exported = raw.get("exported_at")
    return Bundle(
        artifact_path=artifact,
        sidecar_path=sidecar,
        model=model,
        data=integrity_checked(data, model.artifact_sha256, f"bundle {artifact}"),
        exported_at=None if exported is None else _timestamp(exported, "exported_at", str(sidecar)),
    )


def configured_folder(cache_dir: str | os.PathLike[str] | None) -> Path | None:
    """The cache folder: ``cache_dir`` when given, else ``$BRAIN_PREDICTOR_CACHE`` (``off``: no
    cache), else ``<BRAIN_HOME>/predictor-cache``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    raw = os.environ.get(CACHE_ENV, "").strip()
    if raw.lower() == CACHE_OFF:
        return None
    if raw:
        return Path(raw).expanduser()
    from brain_assets.environment import brain_home

    return brain_home() / CACHE_FOLDER


def _entry_key(regime: str | None) -> str:
    return "active" if regime is None else f"regime-{regime}"


class PredictorCache:
    """The decisions and artifacts kept in one folder (see the module's description)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.artifacts = folder / "artifacts"

    @classmethod
    def configured(cls, cache_dir: str | os.PathLike[str] | None) -> PredictorCache | None:
        """The cache :func:`configured_folder` names, or None when it is off."""
        folder = configured_folder(cache_dir)
        return None if folder is None else cls(folder)

    def entry_path(self, symbol: str, regime: str | None) -> Path:
        # Percent-encoding is one-to-one and leaves no "/" in the name; the key has no ".", so
        # two (symbol, regime) pairs never share a file.
        return self.folder / f"{quote(symbol, safe='')}.{_entry_key(regime)}.json"

    def artifact_path(self, sha256: str, fmt: str) -> Path:
        return self.artifacts / f"{sha256}{EXTENSIONS[fmt]}"

    # -- writing ----------------------------------------------------------------------------

    def remember_version(
        self,
        symbol: str,
        regime: str | None,
        model: ModelVersion,
        *,
        reason: str,
        activated_at: str | None,
        fetch: Callable[[], bytes],
    ) -> Path:
        """Record that the Brain recommends ``model`` for (symbol, regime) now. ``fetch`` gives
        the verified artifact; it is called only when the cache does not hold it already."""
        metadata = checked_model(bundle_metadata(model), f"model {model.model_id}")
        self._make_folders()
        artifact = self.artifact_path(metadata["artifact_sha256"], metadata["artifact_format"])
        if self._holds(artifact, metadata["artifact_sha256"]):
            os.utime(artifact)  # fresh again, so that no concurrent prune takes it
        else:
            data = integrity_checked(
                fetch(), metadata["artifact_sha256"], f"artifact of {artifact.name}"
            )
            write_atomically(artifact, data)
        entry = self._write_entry(
            symbol,
            regime,
            stand_aside=False,
            reason=reason,
            activated_at=activated_at,
            model=metadata,
        )
        self.prune()
        return entry

    def remember_stand_aside(self, symbol: str, regime: str | None, reason: str) -> Path:
        """Record that the Brain says stand aside for (symbol, regime) now, and why."""
        self._make_folders()
        entry = self._write_entry(
            symbol, regime, stand_aside=True, reason=reason, activated_at=None, model=None
        )
        self.prune()
        return entry

    def _make_folders(self) -> None:
        self.folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        self.artifacts.mkdir(mode=FOLDER_MODE, exist_ok=True)

    @staticmethod
    def _holds(artifact: Path, sha256: str) -> bool:
        try:
            data = artifact.read_bytes()
        except FileNotFoundError:
            return False
        return hashlib.sha256(data).hexdigest() == sha256

    def _write_entry(
        self,
        symbol: str,
        regime: str | None,
        *,
        stand_aside: bool,
        reason: str,
        activated_at: str | None,
        model: dict[str, Any] | None,
    ) -> Path:
        entry = {
            "cache_format": CACHE_FORMAT,
            "symbol": symbol,
            "regime": regime,
            "cached_at": datetime.now(UTC).isoformat(),
            "stand_aside": stand_aside,
            "reason": reason,
            "activated_at": activated_at,
            "model": model,
        }
        path = self.entry_path(symbol, regime)
        write_atomically(path, (json.dumps(entry, indent=2, default=_plain) + "\n").encode())
        return path

    def prune(self, *, now: float | None = None) -> list[Path]:
        """Delete the artifacts no decision names any more, once :data:`PRUNE_AFTER_S` old;
        returns them. Nothing is deleted while any decision file cannot be read: what it names
        is unknown then."""
        named: set[str] = set()
        for entry in self.folder.glob("*.json"):
            try:
                raw = json.loads(entry.read_bytes())
                model = raw.get("model")
                if model is not None:
                    sha, fmt = model["artifact_sha256"], model["artifact_format"]
                    named.add(self.artifact_path(sha, fmt).name)
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                return []
        cutoff = (time.time() if now is None else now) - PRUNE_AFTER_S
        deleted = []
        for artifact in self.artifacts.glob("*"):
            if artifact.name in named or artifact.name.startswith("."):
                continue
            if artifact.stat().st_mtime < cutoff:
                artifact.unlink(missing_ok=True)
                deleted.append(artifact)
        return deleted

    # -- reading ----------------------------------------------------------------------------

    def recall(self, symbol: str, regime: str | None, *, why: str) -> CachedDecision:
        """The decision cached for (symbol, regime). ``why`` says why the cache is read (the
        Brain's connection error) and goes into every error's message.

        Raises:
            PredictorCacheError: no decision is cached, or its file is unreadable (named).
        """
        what = symbol if regime is None else f"{symbol} in the {regime} regime"
        path = self.entry_path(symbol, regime)
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise PredictorCacheError(
                symbol,
                f"{what}: the Brain is unreachable ({why}) and no decision of it is cached "
                f"({path} does not exist): nothing to trade with. Load the predictor once while "
                "the Brain answers, or ship a bundle written by brain export",
            ) from None
        except (OSError, ValueError) as exc:
            raise PredictorCacheError(
                symbol,
                f"{what}: the Brain is unreachable ({why}) and the cached decision {path} "
                f"cannot be read: {exc}",
            ) from exc
        try:
            return self._decision(raw, symbol, regime, path)
        except ValueError as exc:
            raise PredictorCacheError(
                symbol,
                f"{what}: the Brain is unreachable ({why}) and the cached decision is unusable: "
                f"{exc}",
            ) from exc

    def _decision(self, raw: object, symbol: str, regime: str | None, path: Path) -> CachedDecision:
        where = str(path)
        if not isinstance(raw, dict) or raw.get("cache_format") != CACHE_FORMAT:
            raise ValueError(f"{where}: not a predictor cache entry of format {CACHE_FORMAT}")
        if raw.get("symbol") != symbol or raw.get("regime") != regime:
            raise ValueError(
                f"{where}: holds {raw.get('symbol')!r} (regime {raw.get('regime')!r}), not "
                f"{symbol!r} (regime {regime!r})"
            )
        stand_aside = raw.get("stand_aside")
        if not isinstance(stand_aside, bool):
            raise ValueError(f"{where}: field 'stand_aside' must be true or false")
        reason = raw.get("reason")
        if not isinstance(reason, str):
            raise ValueError(f"{where}: field 'reason' must be a string")
        activated = raw.get("activated_at")
        model = None if stand_aside else _version(raw.get("model"), where)
        if model is not None and model.symbol != symbol:
            raise ValueError(f"{where}: its model belongs to {model.symbol!r}")
        return CachedDecision(
            symbol=symbol,
            regime=regime,
            cached_at=_timestamp(raw.get("cached_at"), "cached_at", where),
            stand_aside=stand_aside,
            reason=reason,
            activated_at=None if activated is None else str(activated),
            model=model,
            path=path,
        )

    def artifact(self, decision: CachedDecision, *, why: str) -> bytes:
        """The cached artifact of ``decision``, checked against the sha256 recorded with it.

        Raises:
            PredictorCacheError: the artifact is missing, unreadable or fails its sha256.
        """
        model = decision.model
        if model is None:
            raise ValueError(f"{decision.path}: a stand-aside decision has no artifact")
        path = self.artifact_path(model.artifact_sha256, model.artifact_format)
        what = f"{decision.symbol} {model.label} ({model.model_id})"
        try:
            return integrity_checked(
                path.read_bytes(), model.artifact_sha256, f"cached artifact {path}"
            )
        except OSError as exc:
            raise PredictorCacheError(
                decision.symbol,
                f"{what}: the Brain is unreachable ({why}) and the cached artifact cannot be "
                f"read: {exc}",
            ) from exc
        except ArtifactIntegrityError as exc:
            raise PredictorCacheError(
                decision.symbol, f"{what}: the Brain is unreachable ({why}) and the {exc}"
            ) from exc
