"""Model artifacts as skops bytes, never pickle.

Unpickling runs arbitrary code chosen by whoever wrote the bytes, and artifacts live in a database
that more than one process writes to. skops stores a model as a zip of JSON plus numpy arrays and
refuses, on load, to construct any type it was not told to trust. We trust exactly the types of
scikit-learn, numpy and scipy (the only libraries our estimators are made of) and refuse anything
else by name, so a tampered artifact fails loudly instead of running code.
"""

from __future__ import annotations

import hashlib
import zipfile
from typing import Any

SKOPS_FORMAT = "skops"
SUPPORTED_FORMATS: tuple[str, ...] = (SKOPS_FORMAT,)

# Top-level packages whose types a stored artifact may contain. Matching is on the first dotted
# component, so "sklearn.tree._tree.Tree" passes while "sklearn_evil.X" or "os.system" do not.
TRUSTED_MODULE_PREFIXES: tuple[str, ...] = ("sklearn", "numpy", "scipy")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``, recorded at registration to detect a changed artifact."""
    return hashlib.sha256(data).hexdigest()


def serialize_model(estimator: Any) -> tuple[bytes, str]:
    """``(bytes, format)`` for ``estimator``; the format is always ``'skops'``."""
    import skops.io as sio

    return sio.dumps(estimator), SKOPS_FORMAT


def _is_trusted(type_name: str) -> bool:
    return type_name.split(".", 1)[0] in TRUSTED_MODULE_PREFIXES


def deserialize_model(data: bytes, fmt: str) -> Any:
    """Load an estimator written by ``serialize_model``.

    Raises ``ValueError`` for an unknown format, bytes that are not a skops archive, or an artifact
    that contains any type outside ``TRUSTED_MODULE_PREFIXES`` (the message names them).
    """
    if fmt not in SUPPORTED_FORMATS:
        raise ValueError(
            f"unknown model format {fmt!r}; supported formats: {', '.join(SUPPORTED_FORMATS)}"
        )
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
