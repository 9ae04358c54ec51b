"""Model artifacts as skops or native Keras bytes, never pickle.

Unpickling runs arbitrary code chosen by whoever wrote the bytes, and artifacts live in a database
that more than one process writes to. skops stores a model as a zip of JSON plus numpy arrays and
refuses, on load, to construct any type it was not told to trust. We trust exactly the types of
scikit-learn, numpy and scipy (the only libraries our estimators are made of) and refuse anything
else by name, so a tampered artifact fails loudly instead of running code.

A ``StandardizedLSTM`` is stored as its ``.keras`` file (a zip of a JSON config and HDF5 weights).
Before Keras reads one, every class its config names must come from ``keras`` itself or from
``brain_assets`` (our registered layers); Keras then loads it with ``safe_mode`` on, which refuses
lambda layers. TensorFlow is imported only when such an artifact is actually loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

from brain_assets.lstm.model import StandardizedLSTM

SKOPS_FORMAT = "skops"
KERAS_FORMAT = "keras"
SUPPORTED_FORMATS: tuple[str, ...] = (SKOPS_FORMAT, KERAS_FORMAT)

# Top-level packages whose types a stored artifact may contain. Matching is on the first dotted
# component, so "sklearn.tree._tree.Tree" passes while "sklearn_evil.X" or "os.system" do not.
TRUSTED_MODULE_PREFIXES: tuple[str, ...] = ("sklearn", "numpy", "scipy")

# The same rule for the classes a .keras config names: Keras' own and our registered layers.
TRUSTED_KERAS_MODULE_PREFIXES: tuple[str, ...] = ("keras", "brain_assets")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``, recorded at registration to detect a changed artifact."""
    return hashlib.sha256(data).hexdigest()


def serialize_model(estimator: Any) -> tuple[bytes, str]:
    """``(bytes, format)`` for ``estimator``: ``'keras'`` for a ``StandardizedLSTM``, else
    ``'skops'``."""
    if isinstance(estimator, StandardizedLSTM):
        return estimator.to_bytes(), KERAS_FORMAT
    import skops.io as sio

    return sio.dumps(estimator), SKOPS_FORMAT


def _is_trusted(type_name: str) -> bool:
    return type_name.split(".", 1)[0] in TRUSTED_MODULE_PREFIXES


def _keras_config_modules(data: bytes) -> set[str]:
    """Every ``module`` named in the config of a ``.keras`` archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ValueError(f"data is not a readable .keras archive: {error}") from error
    modules: set[str] = set()
    pending: list[Any] = [config]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "module" in node:
                modules.add(str(node["module"]))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return modules


def _deserialize_keras(data: bytes) -> StandardizedLSTM:
    refused = sorted(
        module
        for module in _keras_config_modules(data)
        if module.split(".", 1)[0] not in TRUSTED_KERAS_MODULE_PREFIXES
    )
    if refused:
        raise ValueError(
            f"model artifact names untrusted module(s): {', '.join(refused)}; only classes from "
            f"{', '.join(TRUSTED_KERAS_MODULE_PREFIXES)} are loaded"
        )
    return StandardizedLSTM.from_bytes(data)


def deserialize_model(data: bytes, fmt: str) -> Any:
    """Load an estimator written by ``serialize_model``.

    Raises ``ValueError`` for an unknown format, bytes that are not a skops or ``.keras`` archive,
    an artifact that contains any type outside ``TRUSTED_MODULE_PREFIXES`` (skops) or
    ``TRUSTED_KERAS_MODULE_PREFIXES`` (keras; the message names them), or a ``.keras`` file that
    is not a ``StandardizedLSTM``.
    """
    if fmt not in SUPPORTED_FORMATS:
        raise ValueError(
            f"unknown model format {fmt!r}; supported formats: {', '.join(SUPPORTED_FORMATS)}"
        )
    if fmt == KERAS_FORMAT:
        return _deserialize_keras(data)
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ValueError(f"data is not a readable skops archive: {error}") from error
    refused = sorted(name for name in untrusted if not _is_trusted(name))
    if refused:
        raise ValueError(
            f"model artifact contains untrusted type(s): {', '.join(refused)}; only types from "
            f"{', '.join(TRUSTED_MODULE_PREFIXES)} are loaded"
        )
    # skops checks again on load: only the names just vetted are passed as trusted.
    return sio.loads(data, trusted=list(untrusted))
