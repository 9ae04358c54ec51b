"""Model artifacts as skops or native Keras bytes, never pickle, loaded from exact allowlists.

Unpickling runs arbitrary code chosen by whoever wrote the bytes, and artifacts live in a database
that more than one process writes to. Both formats we use are zips of JSON that *name* the classes
to rebuild, and both libraries have had published ways to make such a name run code (Keras
``safe_mode`` bypasses CVE-2025-1550, CVE-2025-8747, CVE-2025-9906, CVE-2026-1462; skops
OperatorFuncNode/MethodNode bypasses CVE-2025-54412, CVE-2025-54413). Trusting whole packages
("anything under ``sklearn``", "anything under ``keras``") leaves every such gadget in reach, so
before either library reads an artifact we walk its JSON ourselves and refuse, by name, anything
outside the few classes our own models are made of:

* **skops** (the scikit-learn models): every node of ``schema.json`` must be one of
  :data:`TRUSTED_SKOPS_TYPES`, read with the skops loader listed for it. Only that list is then
  passed to ``skops.io.loads(trusted=...)``, which checks again.
* **keras** (a ``StandardizedLSTM``): the archive must hold exactly the files Keras writes for it;
  every object reference in ``config.json`` (any dict with ``class_name``, ``module``,
  ``registered_name`` or ``shared_object_id``) must be one of :data:`TRUSTED_KERAS_CLASSES`, so
  functions, lambdas, ``__numpy__`` values and classes from any other module are refused; the
  strings Keras would resolve to a function (activations, initializers, regularizers,
  constraints, dtypes) must come from fixed small sets; and a ``shared_object_id`` may not stand
  for two different classes. Keras then loads it with ``safe_mode`` on. TensorFlow is imported only
  when an artifact passes these checks.

The lists were enumerated from real artifacts: every model type of
:mod:`brain_assets.training.models` serialised by skops (float64 and float32 features), and a
two-layer ``StandardizedLSTM`` saved with and without ``Bidirectional``; the tests in
``test_artifact_safety.py`` re-derive them and fail when they drift. A new layer, estimator or
library version that writes a new class fails to load loudly until it is added here, deliberately.

What the sha256 recorded next to an artifact is for: it detects accidental corruption, a truncated
or half-written row, and an artifact that does not belong to the registry row it is read from. It
is integrity, not authenticity: anyone who can rewrite the artifact column can rewrite the hash
column too, so the hash says nothing about *who* wrote the bytes; that protection comes from the
allowlists above. Authenticity would need a secret the database does not hold, e.g. an HMAC of the
artifact under a key kept in the deployment's secret store and checked before loading.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from brain_assets.errors import ArtifactIntegrityError, BrainError
from brain_assets.lstm.model import StandardizedLSTM
from brain_assets.lstm.network import LSTMExtraMissingError, lstm_extra_missing
from brain_assets.records import ModelVersion

if TYPE_CHECKING:
    from brain_assets.store.library import BrainStore

SKOPS_FORMAT = "skops"
KERAS_FORMAT = "keras"
SUPPORTED_FORMATS: tuple[str, ...] = (SKOPS_FORMAT, KERAS_FORMAT)

# Fully qualified type -> the skops loaders it may be read with. These are the types skops writes
# for Pipeline(StandardScaler, Ridge), RandomForestRegressor and HistGradientBoostingRegressor.
# The loader matters as much as the type: it decides what skops does with the name (NdArrayNode
# calls the type on an array, FunctionNode returns a callable, OperatorFuncNode builds one).
TRUSTED_SKOPS_TYPES: Mapping[str, frozenset[str]] = {
    "builtins.dict": frozenset({"DictNode"}),
    "builtins.list": frozenset({"ListNode"}),
    "builtins.tuple": frozenset({"TupleNode"}),
    "builtins.str": frozenset({"JsonNode", "TypeNode"}),
    "numpy.ndarray": frozenset({"NdArrayNode"}),
    # Numeric scalars: Ridge's intercept (float32 when the feature table is float32) and
    # HistGradientBoosting's seed.
    "numpy.float64": frozenset({"NdArrayNode"}),
    "numpy.float32": frozenset({"NdArrayNode"}),
    "numpy.uint64": frozenset({"NdArrayNode"}),
    "numpy.random._generator.Generator": frozenset({"RandomGeneratorNode"}),
    "sklearn.pipeline.Pipeline": frozenset({"ObjectNode"}),
    "sklearn.preprocessing._data.StandardScaler": frozenset({"ObjectNode"}),
    "sklearn.linear_model._ridge.Ridge": frozenset({"ObjectNode"}),
    "sklearn.ensemble._forest.RandomForestRegressor": frozenset({"ObjectNode"}),
    "sklearn.tree._classes.DecisionTreeRegressor": frozenset({"ObjectNode"}),
    "sklearn.tree._tree.Tree": frozenset({"TreeNode"}),
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor": (
        frozenset({"ObjectNode"})
    ),
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper": frozenset({"ObjectNode"}),
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": frozenset({"ObjectNode"}),
    "sklearn._loss.loss.HalfSquaredError": frozenset({"ObjectNode"}),
    "sklearn._loss.link.IdentityLink": frozenset({"ObjectNode"}),
    "sklearn._loss.link.Interval": frozenset({"ObjectNode"}),
    "sklearn._loss._loss.CyHalfSquaredError": frozenset({"LossNode"}),
}

# (module, class_name, registered_name) of every object a StandardizedLSTM's config.json names.
# registered_name is None for Keras built-ins; Keras looks our own layers up by it.
TRUSTED_KERAS_CLASSES: frozenset[tuple[str | None, str, str | None]] = frozenset(
    {
        ("keras.src.models.functional", "Functional", "Functional"),
        ("keras.layers", "InputLayer", None),
        ("keras.layers", "LSTM", None),
        ("keras.layers", "Bidirectional", None),
        ("keras.layers", "Dropout", None),
        ("keras.layers", "Dense", None),
        ("keras.layers", "Identity", None),
        ("brain_assets.lstm.network", "WindowStandardize", "brain_assets>WindowStandardize"),
        ("brain_assets.lstm.network", "TargetDestandardize", "brain_assets>TargetDestandardize"),
        ("brain_assets.lstm.network", "LagAttention", "brain_assets>LagAttention"),
        ("keras", "DTypePolicy", None),
        ("keras.initializers", "GlorotUniform", None),
        ("keras.initializers", "Orthogonal", None),
        ("keras.initializers", "Zeros", None),
        # Symbolic inputs between layers of a functional model; Keras writes no module for them.
        (None, "__keras_tensor__", None),
    }
)

# The files of a .keras archive; anything else (e.g. an assets/ folder) has no business in ours.
KERAS_ARCHIVE_MEMBERS: frozenset[str] = frozenset(
    {"config.json", "metadata.json", "model.weights.h5"}
)

# Config keys whose plain string value Keras resolves to a function or object, by key suffix, and
# the strings our models write there. An empty set means our artifacts only ever hold a dict (class
# checked above) or null there.
_KERAS_IDENTIFIER_STRINGS: tuple[tuple[str, frozenset[str]], ...] = (
    ("activation", frozenset({"linear", "sigmoid", "tanh"})),
    ("_initializer", frozenset()),
    ("_regularizer", frozenset()),
    ("_constraint", frozenset()),
    ("dtype", frozenset({"float32", "float64"})),
)

# Keys that make a config dict an object reference for Keras.
_KERAS_REFERENCE_KEYS = ("class_name", "module", "registered_name", "shared_object_id")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``: detects a changed or mismatched artifact, not a forged one."""
    return hashlib.sha256(data).hexdigest()


def serialize_model(estimator: Any) -> tuple[bytes, str]:
    """``(bytes, format)`` for ``estimator``: ``'keras'`` for a ``StandardizedLSTM``, else
    ``'skops'``."""
    if isinstance(estimator, StandardizedLSTM):
        return estimator.to_bytes(), KERAS_FORMAT
    import skops.io as sio

    return sio.dumps(estimator), SKOPS_FORMAT


def _json_nodes(tree: Any) -> Iterator[tuple[str | None, Any]]:
    """Every value in a parsed JSON tree with the dict key it sits under (lists pass theirs on).

    Iterative, so a hostile, deeply nested document cannot exhaust the stack.
    """
    pending: list[tuple[str | None, Any]] = [(None, tree)]
    while pending:
        key, node = pending.pop()
        yield key, node
        if isinstance(node, dict):
            pending.extend((str(child_key), child) for child_key, child in node.items())
        elif isinstance(node, list):
            pending.extend((key, child) for child in node)


def _read_archive_json(data: bytes, member: str, kind: str) -> tuple[list[str], Any]:
    """``(member names, parsed member)``; ``ValueError`` naming ``kind`` for unreadable bytes."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist(), json.loads(archive.read(member))
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError) as error:
        raise ValueError(f"data is not a readable {kind} archive: {error}") from error


# -- skops ----------------------------------------------------------------------------------


def _untrusted_skops_nodes(schema: Any) -> list[str]:
    """``"type [loader]"`` of every schema node outside :data:`TRUSTED_SKOPS_TYPES`."""
    refused: set[str] = set()
    for _, node in _json_nodes(schema):
        if not isinstance(node, dict):
            continue
        if not {"__class__", "__module__", "__loader__"} & node.keys():
            continue
        type_name = f"{node.get('__module__')}.{node.get('__class__')}"
        loader = node.get("__loader__")
        if not isinstance(loader, str) or loader not in TRUSTED_SKOPS_TYPES.get(
            type_name, frozenset()
        ):
            refused.add(f"{type_name} [{loader}]")
    return sorted(refused)


def screen_skops(data: bytes) -> None:
    """The checks a skops artifact passes before it is read, without importing skops or
    scikit-learn: a readable archive naming only :data:`TRUSTED_SKOPS_TYPES` (ValueError)."""
    _, schema = _read_archive_json(data, "schema.json", "skops")
    refused = _untrusted_skops_nodes(schema)
    if refused:
        raise ValueError(
            f"model artifact contains untrusted type(s): {', '.join(refused)}; only the "
            f"{len(TRUSTED_SKOPS_TYPES)} types our scikit-learn models are made of are loaded"
        )


def _deserialize_skops(data: bytes) -> Any:
    screen_skops(data)
    import skops.io as sio

    # skops checks again while building the tree; it is told to trust nothing beyond our list.
    return sio.loads(data, trusted=sorted(TRUSTED_SKOPS_TYPES))


# -- keras ----------------------------------------------------------------------------------


def _describe_reference(node: dict[str, Any]) -> str:
    module, class_name = node.get("module"), node.get("class_name")
    if class_name == "function" and isinstance(node.get("config"), str):
        return f"{module}.{node['config']} (function)"
    name = f"{module}.{class_name}" if module is not None else str(class_name)
    registered = node.get("registered_name")
    return f"{name} (registered as {registered!r})" if registered is not None else name


def _reference_key(node: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (node.get("module"), node.get("class_name"), node.get("registered_name"))


def _is_trusted_reference(node: dict[str, Any]) -> bool:
    key = _reference_key(node)
    # A list or dict where a name belongs is unhashable, and never one of ours anyway.
    if not all(part is None or isinstance(part, str) for part in key):
        return False
    return key in TRUSTED_KERAS_CLASSES


def _refused_identifier(key: str | None, value: str) -> bool:
    if key is None:
        return False
    for suffix, allowed in _KERAS_IDENTIFIER_STRINGS:
        if key.endswith(suffix):
            return value not in allowed
    return False


def _untrusted_keras_entries(members: list[str], config: Any) -> list[str]:
    """Everything in a ``.keras`` archive that a ``StandardizedLSTM`` would not have written."""
    refused = {f"archive member {name!r}" for name in members if name not in KERAS_ARCHIVE_MEMBERS}
    if not isinstance(config, dict) or _reference_key(config)[1] != "Functional":
        refused.add("a config whose root is not a Functional model")
    shared: dict[Any, str] = {}
    for key, node in _json_nodes(config):
        if isinstance(node, str) and _refused_identifier(key, node):
            refused.add(f"{key}={node!r}")
        if not isinstance(node, dict):
            continue
        if node.get("compile_config"):
            # Compiling would deserialise an optimizer, a loss and metrics, none of which we save.
            refused.add("compile_config")
        if not any(reference_key in node for reference_key in _KERAS_REFERENCE_KEYS):
            continue
        described = _describe_reference(node)
        if not _is_trusted_reference(node):
            refused.add(described)
        if "shared_object_id" in node:
            # Keras hands back whatever object was first loaded under an id, so one id naming two
            # classes would swap an object for another of a type nobody checked in that place.
            object_id = node["shared_object_id"]
            if not isinstance(object_id, int) or isinstance(object_id, bool):
                refused.add(f"shared_object_id {object_id!r}")
            elif shared.setdefault(object_id, described) != described:
                refused.add(f"shared_object_id {object_id} ({shared[object_id]} and {described})")
    return sorted(refused)


def screen_keras(data: bytes) -> Any:
    """A ``.keras`` artifact's ``config.json``, once the archive passed the checks loading it
    would make (without importing TensorFlow): a ValueError for an archive that is not ours or
    names anything untrusted, LSTMExtraMissingError where the ``lstm`` extra is missing."""
    members, config = _read_archive_json(data, "config.json", ".keras")
    refused = _untrusted_keras_entries(members, config)
    if refused:
        raise ValueError(
            f"model artifact names untrusted module, class or function: {', '.join(refused)}; "
            "only the layers and objects a StandardizedLSTM saves are loaded"
        )
    # A core install (no `lstm` extra) reads the registry too: say what to install.
    if (missing := lstm_extra_missing()) is not None:
        raise LSTMExtraMissingError(missing, "loading an lstm model version")
    return config


def _deserialize_keras(data: bytes) -> StandardizedLSTM:
    screen_keras(data)
    return StandardizedLSTM.from_bytes(data)


def deserialize_model(data: bytes, fmt: str) -> Any:
    """Load an estimator written by ``serialize_model``.

    Raises ``ValueError`` for an unknown format, bytes that are not a skops or ``.keras`` archive,
    an artifact that names anything outside :data:`TRUSTED_SKOPS_TYPES` (skops) or
    :data:`TRUSTED_KERAS_CLASSES` and the identifier sets (keras; the message names each offending
    entry), or a ``.keras`` file that is not a ``StandardizedLSTM``. Nothing is deserialised by
    skops or Keras before these checks pass. A ``.keras`` artifact on an install without the
    ``lstm`` extra raises ``LSTMExtraMissingError`` (an ImportError naming the extra).
    """
    if fmt not in SUPPORTED_FORMATS:
        raise ValueError(
            f"unknown model format {fmt!r}; supported formats: {', '.join(SUPPORTED_FORMATS)}"
        )
    if fmt == KERAS_FORMAT:
        return _deserialize_keras(data)
    return _deserialize_skops(data)


# -- registered versions --------------------------------------------------------------------


class _ArtifactLoadError(BrainError):
    """A registered version that could not be loaded: which one (``symbol``, ``model_id``,
    ``version``) and what failed (``error``, the cause's type and message)."""

    def __init__(self, model: ModelVersion, cause: BaseException) -> None:
        self.symbol = model.symbol
        self.model_id = model.model_id
        self.version = model.version
        self.error = f"{type(cause).__name__}: {cause}"
        super().__init__(self.describe(model.model_type))

    def describe(self, model_type: str) -> str:
        raise NotImplementedError


class UnloadableArtifactError(_ArtifactLoadError, ValueError):
    """A registered version's artifact cannot be made into a model in this process.

    A ValueError, as the integrity and allowlist errors it wraps were before it existed, so
    callers that refused a bad artifact by catching ValueError still do.

    ``__cause__`` is what failed: an ArtifactIntegrityError (the bytes no longer match their
    sha256), a ValueError (the allowlists refused the artifact, or it is not a readable
    archive). A fault of this host (a library that does not import, a disk that refuses a
    temporary file) is an ArtifactEnvironmentError instead: it says nothing about the version.
    """

    def describe(self, model_type: str) -> str:
        return (
            f"{self.symbol} {model_type} v{self.version} ({self.model_id}) cannot be loaded: "
            f"{self.error}"
        )


class ArtifactEnvironmentError(_ArtifactLoadError, RuntimeError):
    """This process cannot read a registered version's artifact for a reason of its own: the
    library that reads it does not import (TensorFlow for an ``lstm`` version, on a client
    without it), or the operating system refuses (a full temporary disk).

    Not a ValueError and not an UnloadableArtifactError: the version is sound (its bytes matched
    their sha256), so no caller withdraws it, falls back or stands aside on this error; it is
    raised with nothing written. ``__cause__`` is the ImportError or OSError.
    """

    def describe(self, model_type: str) -> str:
        return (
            f"this process cannot load {self.symbol} {model_type} v{self.version} "
            f"({self.model_id}): {self.error}. The artifact verified; the registry is left as "
            "it was. Fix this host (install the missing library, free disk space) and retry."
        )


def verified_artifact(brain: BrainStore, model: ModelVersion) -> bytes:
    """The artifact's bytes, checked against the recorded sha256 (UnloadableArtifactError
    otherwise)."""
    try:
        return brain.load_model_artifact(model.model_id)
    except ArtifactIntegrityError as exc:
        raise UnloadableArtifactError(model, exc) from exc


def screened_artifact(brain: BrainStore, model: ModelVersion) -> bytes:
    """A skops artifact's bytes, verified and screened as loading it would screen them, but
    not read (no skops, no scikit-learn): UnloadableArtifactError for bytes loading would refuse."""
    data = verified_artifact(brain, model)
    try:
        screen_skops(data)
    except ValueError as exc:
        raise UnloadableArtifactError(model, exc) from exc
    return data


def load_registered_model(brain: BrainStore, model: ModelVersion) -> Any:
    """The estimator of a registered version, its artifact verified against the recorded sha256.

    Raises:
        UnloadableArtifactError: the artifact fails its integrity check, or is refused or
            cannot be read.
        ArtifactEnvironmentError: it verified, but this process cannot read it (an ImportError
            or OSError while deserialising). A database error or an unknown model_id is raised
            as it is: neither says anything about the artifact, and taking them for a broken
            version would take a good model out of trading.
    """
    data = verified_artifact(brain, model)
    # Only the reading of the bytes is wrapped: a database error (BrainConnectionError is an
    # OSError too) or an unknown model_id raised by the fetch above says nothing about them.
    try:
        return deserialize_model(data, model.artifact_format)
    except ValueError as exc:  # refused by the allowlists, or not a readable archive
        raise UnloadableArtifactError(model, exc) from exc
    except (ImportError, OSError) as exc:
        # keras failing to load TensorFlow, a temporary file that cannot be written: the bytes
        # verified above, so the fault is this host's, and a version withdrawn for it would be
        # withdrawn for every consumer.
        raise ArtifactEnvironmentError(model, exc) from exc
