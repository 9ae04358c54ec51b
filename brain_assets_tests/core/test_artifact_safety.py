"""Model artifacts load only from the exact allowlists in ``brain_assets.training.serialization``.

Each hostile artifact below is a real artifact with one published gadget spliced in (a Lambda
layer, the CVE-2025-9906 / CVE-2025-8747 / CVE-2026-1462 Keras chains, skops function, operator
and method nodes, a scikit-learn type we never train). Every one must be refused, by name, before
skops or Keras is asked to build anything: the loaders are replaced by tripwires while they run.

The tests on real Keras artifacts fit two tiny networks (one epoch on 80 rows) once per module,
hence ``slow``, as in test_lstm.py.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import FunctionTransformer

from brain_assets.lstm.model import StandardizedLSTM
from brain_assets.training.models import MODEL_TYPES, train_model
from brain_assets.training.serialization import (
    TRUSTED_KERAS_CLASSES,
    TRUSTED_SKOPS_TYPES,
    deserialize_model,
    serialize_model,
)

# Small enough that every model fits in well under a second on 2 cores.
FAST: dict[str, dict[str, Any]] = {
    "ridge": {},
    "random_forest": {"n_estimators": 5},
    "hist_gradient_boosting": {"max_iter": 10},
}


def make_data(n: int = 200) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["x0", "x1", "x2", "x3"])
    return X, pd.Series(0.5 * X["x0"] + rng.normal(scale=0.2, size=n), name="target")


def rewrite_archive(
    data: bytes,
    member: str,
    edit: Callable[[Any], None],
    extra_members: dict[str, bytes] | None = None,
) -> bytes:
    """``data`` with the JSON ``member`` edited in place by ``edit``, as an attacker would."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == member:
                document = json.loads(content)
                edit(document)
                content = json.dumps(document).encode()
            target.writestr(name, content)
        for name, content in (extra_members or {}).items():
            target.writestr(name, content)
    return out.getvalue()


def schema_types(data: bytes) -> set[tuple[str, str]]:
    """``(type, loader)`` of every node of a skops archive."""
    found: set[tuple[str, str]] = set()
    pending: list[Any] = [json.loads(zipfile.ZipFile(io.BytesIO(data)).read("schema.json"))]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "__loader__" in node:
                found.add((f"{node['__module__']}.{node['__class__']}", node["__loader__"]))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


@pytest.fixture
def skops_tripwire(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("skops was asked to load an artifact that should have been refused")

    monkeypatch.setattr(sio, "loads", refuse)


@pytest.fixture
def keras_tripwire(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes) -> None:
        raise AssertionError("Keras was asked to load an artifact that should have been refused")

    monkeypatch.setattr(StandardizedLSTM, "from_bytes", refuse)


# -- skops: every real model type loads, and its allowlist is exactly what they write -------------


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("table", ["frame", "array", "float32"])
def test_every_model_type_round_trips(model_type: str, table: str) -> None:
    X, y = make_data()
    features = {"frame": X, "array": X.to_numpy(), "float32": X.astype("float32")}[table]
    estimator = train_model(model_type, features, y, hyperparameters=FAST[model_type]).estimator
    data, fmt = serialize_model(estimator)
    restored = deserialize_model(data, fmt)
    assert type(restored) is type(estimator)
    np.testing.assert_array_equal(restored.predict(features), estimator.predict(features))


def test_skops_allowlist_is_exactly_what_the_models_write() -> None:
    X, y = make_data()
    written: set[tuple[str, str]] = set()
    # float32 features change the scalar types a fitted model holds, so both tables are covered.
    for features in (X, X.astype("float32")):
        for model_type in MODEL_TYPES:
            model = train_model(model_type, features, y, hyperparameters=FAST[model_type])
            written |= schema_types(serialize_model(model.estimator)[0])
    allowed = {
        (name, loader) for name, loaders in TRUSTED_SKOPS_TYPES.items() for loader in loaders
    }
    assert allowed == written


# -- skops: hostile nodes ---------------------------------------------------------------------

HOSTILE_SKOPS_NODES: dict[str, tuple[dict[str, Any], str]] = {
    "builtins.eval function": (
        {"__class__": "eval", "__module__": "builtins", "__loader__": "FunctionNode"},
        r"builtins\.eval \[FunctionNode\]",
    ),
    "os.system function": (
        {"__class__": "system", "__module__": "os", "__loader__": "FunctionNode"},
        r"os\.system \[FunctionNode\]",
    ),
    "operator.attrgetter (CVE-2025-54412)": (
        {
            "__class__": "attrgetter",
            "__module__": "operator",
            "__loader__": "OperatorFuncNode",
            "attrs": {
                "__class__": "tuple",
                "__module__": "builtins",
                "__loader__": "TupleNode",
                "content": [
                    {
                        "__class__": "str",
                        "__module__": "builtins",
                        "__loader__": "JsonNode",
                        "content": '"__globals__"',
                        "is_json": True,
                    }
                ],
            },
        },
        r"operator\.attrgetter \[OperatorFuncNode\]",
    ),
    "method of a trusted type (CVE-2025-54413)": (
        {
            "__class__": "Ridge",
            "__module__": "sklearn.linear_model._ridge",
            "__loader__": "MethodNode",
            "content": {
                "func": "__reduce_ex__",
                "obj": {
                    "__class__": "Ridge",
                    "__module__": "sklearn.linear_model._ridge",
                    "__loader__": "ObjectNode",
                    "content": {
                        "__class__": "dict",
                        "__module__": "builtins",
                        "__loader__": "DictNode",
                        "content": {},
                    },
                },
            },
        },
        r"sklearn\.linear_model\._ridge\.Ridge \[MethodNode\]",
    ),
    "trusted type read by another loader": (
        {"__class__": "ndarray", "__module__": "numpy", "__loader__": "FunctionNode"},
        r"numpy\.ndarray \[FunctionNode\]",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SKOPS_NODES))
@pytest.mark.usefixtures("skops_tripwire")
def test_hostile_skops_node_is_refused_before_skops_loads(case: str) -> None:
    node, named = HOSTILE_SKOPS_NODES[case]
    X, y = make_data(50)
    data, fmt = serialize_model(train_model("ridge", X, y).estimator)

    def inject(schema: dict[str, Any]) -> None:
        # An extra attribute of the root Pipeline: skops would build it while restoring the state.
        schema["content"]["content"]["injected"] = copy.deepcopy(node)

    with pytest.raises(ValueError, match=f"untrusted type.*{named}"):
        deserialize_model(rewrite_archive(data, "schema.json", inject), fmt)


@pytest.mark.usefixtures("skops_tripwire")
def test_function_transformer_that_skops_trusts_by_default_is_refused() -> None:
    data = sio.dumps(FunctionTransformer(func=np.log1p))
    # skops on its own would load this: every scikit-learn estimator and numpy ufunc is trusted.
    assert sio.get_untrusted_types(data=data) == []
    with pytest.raises(
        ValueError, match=r"numpy\.log1p \[FunctionNode\].*FunctionTransformer"
    ) as refused:
        deserialize_model(data, "skops")
    assert "sklearn.preprocessing._function_transformer.FunctionTransformer" in str(refused.value)


@pytest.mark.usefixtures("skops_tripwire")
def test_sklearn_estimator_the_project_never_trains_is_refused() -> None:
    X, y = make_data(50)
    data = sio.dumps(LinearRegression().fit(X, y))
    with pytest.raises(ValueError, match=r"sklearn\.linear_model\._base\.LinearRegression"):
        deserialize_model(data, "skops")


# -- keras: refused before TensorFlow is even imported ----------------------------------------


def minimal_keras_archive(layers: list[dict[str, Any]]) -> bytes:
    config = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "registered_name": "Functional",
        "config": {"name": "m", "layers": layers},
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("model.weights.h5", b"")
    return out.getvalue()


def test_lambda_archive_is_refused_without_importing_keras(tmp_path: Path) -> None:
    lambda_layer = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "registered_name": None,
        "config": {"function": {"class_name": "__lambda__", "config": {"code": "AA=="}}},
    }
    path = tmp_path / "lambda.keras"
    path.write_bytes(minimal_keras_archive([lambda_layer]))
    code = (
        "import sys; from pathlib import Path; "
        "from brain_assets.training.serialization import deserialize_model\n"
        "try:\n"
        f"    deserialize_model(Path({str(path)!r}).read_bytes(), 'keras')\n"
        "except ValueError as error:\n"
        "    print(error)\n"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert "untrusted module, class or function" in completed.stdout
    assert "keras.layers.Lambda" in completed.stdout
    assert "__lambda__" in completed.stdout


# -- keras: real artifacts --------------------------------------------------------------------


def fit_tiny(use_bidirectional: bool) -> StandardizedLSTM:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 2)), rng.normal(size=80)
    model = StandardizedLSTM(
        input_dim=2,
        lstm_units=4,
        num_layers=2,
        sequence_length=4,
        dropout_rate=0.1,
        use_bidirectional=use_bidirectional,
        seed=1,
    )
    model.fit(X[:60], y[:60], X[60:], y[60:], epochs=1)
    return model


@pytest.fixture(scope="module")
def lstm_models() -> dict[bool, StandardizedLSTM]:
    """A fitted network keyed by ``use_bidirectional``; ``to_bytes()`` is its artifact."""
    return {bidirectional: fit_tiny(bidirectional) for bidirectional in (True, False)}


def keras_config(data: bytes) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("config.json"))
    return config


def references(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        if "class_name" in tree:
            yield tree
        for value in tree.values():
            yield from references(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from references(value)


def layer(config: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        item for item in config["config"]["layers"] if item["name"] == name
    )
    return found


def first_lstm(config: dict[str, Any]) -> dict[str, Any]:
    inner: dict[str, Any] = layer(config, "bidirectional_lstm_0")["config"]["layer"]["config"]
    return inner


@pytest.mark.slow
@pytest.mark.parametrize("bidirectional", [True, False])
def test_real_lstm_models_round_trip(
    lstm_models: dict[bool, StandardizedLSTM], bidirectional: bool
) -> None:
    original = lstm_models[bidirectional]
    data, fmt = serialize_model(original)
    restored = deserialize_model(data, fmt)
    assert fmt == "keras"
    assert isinstance(restored, StandardizedLSTM)
    assert restored.get_config() == original.get_config()
    windows = np.random.default_rng(5).normal(size=(3, 4, 2))
    np.testing.assert_array_equal(restored.predict(windows), original.predict(windows))


@pytest.mark.slow
def test_keras_allowlist_is_exactly_what_the_network_writes(
    lstm_models: dict[bool, StandardizedLSTM],
) -> None:
    written = {
        (node.get("module"), node["class_name"], node.get("registered_name"))
        for model in lstm_models.values()
        for node in references(keras_config(model.to_bytes()))
    }
    assert written == TRUSTED_KERAS_CLASSES


def splice_layers(*hostile: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        # Ahead of the real layers: Keras builds layers in list order, so a chain that flips
        # global state (CVE-2025-9906) goes first and its payload comes after it.
        config["config"]["layers"][:0] = [copy.deepcopy(item) for item in hostile]

    return edit


def set_in_first_lstm(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        first_lstm(config)[key] = copy.deepcopy(value)

    return edit


def hostile_layer(module: str, class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "module": module,
        "class_name": class_name,
        "config": config,
        "registered_name": None,
        "name": "hostile",
        "inbound_nodes": [],
    }


def keras_function(module: str, name: str) -> dict[str, Any]:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


# Per gadget: the edit of a genuine config.json and the regex its refusal must match.
HOSTILE_KERAS_EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "CVE-2025-9906 enable_unsafe_deserialization then Lambda": (
        splice_layers(
            hostile_layer("keras.config", "enable_unsafe_deserialization", {}),
            hostile_layer(
                "keras.layers",
                "Lambda",
                {"function": {"class_name": "__lambda__", "config": {"code": "AA=="}}},
            ),
        ),
        r"keras\.config\.enable_unsafe_deserialization.*keras\.layers\.Lambda",
    ),
    "CVE-2026-1462 TFSMLayer": (
        splice_layers(hostile_layer("keras.layers", "TFSMLayer", {"filepath": "/tmp/model"})),
        r"keras\.layers\.TFSMLayer",
    ),
    "function reference as an LSTM activation": (
        set_in_first_lstm("activation", keras_function("keras.utils", "get_file")),
        r"keras\.utils\.get_file \(function\)",
    ),
    "builtins function as an LSTM activation": (
        set_in_first_lstm("recurrent_activation", keras_function("builtins", "eval")),
        r"builtins\.eval \(function\)",
    ),
    "os module class as an initializer": (
        set_in_first_lstm(
            "kernel_initializer",
            {"module": "os", "class_name": "system", "config": {}, "registered_name": None},
        ),
        r"os\.system",
    ),
    "lambda as an LSTM activation": (
        set_in_first_lstm("activation", {"class_name": "__lambda__", "config": {"code": "AA=="}}),
        r"__lambda__",
    ),
    "initializer Keras knows but we never save": (
        set_in_first_lstm(
            "bias_initializer",
            {
                "module": "keras.initializers",
                "class_name": "Constant",
                "config": {"value": 1.0},
                "registered_name": None,
            },
        ),
        r"keras\.initializers\.Constant",
    ),
    "activation name outside the fixed set": (
        set_in_first_lstm("activation", "get_file"),
        r"activation='get_file'",
    ),
    "initializer given as a plain string": (
        set_in_first_lstm("kernel_initializer", "glorot_uniform"),
        r"kernel_initializer='glorot_uniform'",
    ),
    "numpy value smuggled into a scaler": (
        lambda config: layer(config, "feature_scaler")["config"].update(
            mean={"class_name": "__numpy__", "config": {"value": [0.0], "dtype": "float64"}}
        ),
        r"__numpy__",
    ),
    "one shared_object_id for two classes": (
        lambda config: first_lstm(config)["dtype"].update(
            shared_object_id=first_lstm(config)["kernel_initializer"]["shared_object_id"]
        ),
        r"shared_object_id \d+ \(keras\S*(DTypePolicy|GlorotUniform) and keras\S*"
        r"(DTypePolicy|GlorotUniform)\)",
    ),
    "registered name pointing elsewhere": (
        lambda config: layer(config, "feature_scaler").update(
            registered_name="brain_assets>LagAttention"
        ),
        r"WindowStandardize \(registered as 'brain_assets>LagAttention'\)",
    ),
    "compile config": (
        lambda config: config.update(compile_config={"loss": "mse", "optimizer": "adam"}),
        r"compile_config",
    ),
}


@pytest.fixture(scope="module")
def bidirectional_artifact(lstm_models: dict[bool, StandardizedLSTM]) -> bytes:
    return lstm_models[True].to_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(HOSTILE_KERAS_EDITS))
@pytest.mark.usefixtures("keras_tripwire")
def test_hostile_keras_config_is_refused_before_keras_loads(
    bidirectional_artifact: bytes, case: str
) -> None:
    edit, named = HOSTILE_KERAS_EDITS[case]
    hostile = rewrite_archive(bidirectional_artifact, "config.json", edit)
    with pytest.raises(ValueError, match=f"untrusted module, class or function: .*{named}"):
        deserialize_model(hostile, "keras")


@pytest.mark.slow
@pytest.mark.usefixtures("keras_tripwire")
def test_get_file_chain_is_refused_and_leaves_no_file(
    bidirectional_artifact: bytes, tmp_path: Path
) -> None:
    # CVE-2025-8747: a "layer" that is keras.utils.get_file would copy this local file:// URL
    # into cache_dir/datasets/, so the chain needs no network to leave its mark.
    source = tmp_path / "source.txt"
    source.write_text("payload")
    get_file = {"fname": "pwned", "origin": source.as_uri(), "cache_dir": str(tmp_path)}
    edit = splice_layers(hostile_layer("keras.utils", "get_file", get_file))
    hostile = rewrite_archive(bidirectional_artifact, "config.json", edit)
    with pytest.raises(
        ValueError, match=r"untrusted module, class or function: .*keras\.utils\.get_file"
    ):
        deserialize_model(hostile, "keras")
    assert not (tmp_path / "datasets" / "pwned").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("keras_tripwire")
def test_extra_archive_member_is_refused(lstm_models: dict[bool, StandardizedLSTM]) -> None:
    data = rewrite_archive(
        lstm_models[False].to_bytes(),
        "config.json",
        lambda config: None,
        {"assets/payload.py": b"x"},
    )
    with pytest.raises(ValueError, match=r"archive member 'assets/payload\.py'"):
        deserialize_model(data, "keras")
