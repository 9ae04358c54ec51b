"""The core install, without the ``lstm`` extra: no TensorFlow, no Keras.

A retrain asked for the LSTM (the definitions' ``include_lstm=True``) trains the scikit-learn
models, registers them and says in one line that the LSTM was skipped and how to install it; a
registered LSTM version cannot be loaded, with an error naming the extra. The environment is this
one with TensorFlow and Keras hidden (brain_assets_tests.without_lstm), in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from brain_assets.lstm import network
from brain_assets.lstm.network import LSTM_EXTRA_INSTALL, LSTMExtraMissingError
from brain_assets.pipeline import settings as retrain_settings
from brain_assets.pipeline.settings import LSTM_SKIPPED, RetrainSettings
from brain_assets_tests.paths import REPO, TEST_DATA
from brain_assets_tests.without_lstm import site_without_lstm, venv_seeing

SYMBOL = "ETH/USD"


@pytest.fixture(scope="module")
def core_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python that imports brain_assets from the checkout and everything else from this
    environment, TensorFlow and Keras excepted."""
    folder = tmp_path_factory.mktemp("core_install")
    site = site_without_lstm(folder / "site")
    return venv_seeing(folder / "venv", REPO, site)


def run_core(
    python: Path, argv: list[str], home: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{python.parent}:/usr/bin:/bin",
        "HOME": str(home / "user"),
        "BRAIN_HOME": str(home / "brain"),
        "BRAIN_LOG_DIR": str(home / "logs"),
    }
    return subprocess.run(
        [str(python), *argv],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def events(log_dir: Path, name: str) -> list[dict[str, object]]:
    found = []
    for path in log_dir.glob("*.log"):
        for line in path.read_text().splitlines():
            if line.startswith("{") and (record := json.loads(line)).get("event") == name:
                found.append(record)
    return found


def test_the_environment_has_no_tensorflow(core_python: Path, tmp_path: Path) -> None:
    code = (
        "import importlib.util, brain_assets\n"
        "print(brain_assets.__file__)\n"
        "print(importlib.util.find_spec('tensorflow'), importlib.util.find_spec('keras'))\n"
    )
    done = run_core(core_python, ["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    where, specs = done.stdout.splitlines()
    assert where == str(REPO / "brain_assets" / "__init__.py")
    assert specs == "None None"


@pytest.mark.slow
def test_a_retrain_asked_for_the_lstm_skips_it_in_one_line(
    core_python: Path, tmp_path: Path
) -> None:
    bars = tmp_path / "bars"
    bars.mkdir()
    shutil.copy(TEST_DATA / "ETH-USD.csv", bars / "ETH-USD.csv")
    argv = ["-m", "brain_assets.cli", "retrain", SYMBOL, "--source", "files"]
    done = run_core(core_python, [*argv, "--folder", str(bars), "--json"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    [row] = json.loads(done.stdout)
    assert row["success"], row

    [skipped] = events(tmp_path / "logs", LSTM_SKIPPED)
    assert LSTM_EXTRA_INSTALL in str(skipped["message"])
    assert "`lstm` extra is not installed" in str(skipped["message"])
    # A choice of the deployment, not a fault: no per-symbol skip and no alert.
    assert not events(tmp_path / "logs", "model_type_skipped")

    listed = run_core(core_python, ["-m", "brain_assets.cli", "models", SYMBOL, "--json"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    types = {version["model_type"] for version in json.loads(listed.stdout)["versions"]}
    assert types == {"ridge", "random_forest", "hist_gradient_boosting"}


def minimal_keras_archive() -> bytes:
    """A ``.keras`` archive that the allowlists accept (a Functional model with nothing in it):
    what is refused below is the missing extra, not the artifact."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        config = {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "registered_name": "Functional",
            "config": {},
        }
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", "{}")
    return buffer.getvalue()


LOAD_WITHOUT_TF = """
import sys
from types import SimpleNamespace
from brain_assets.training.serialization import (
    ArtifactEnvironmentError, deserialize_model, load_registered_model,
)

data = open(sys.argv[1], "rb").read()
try:
    deserialize_model(data, "keras")
except ImportError as exc:
    print(type(exc).__name__, exc)

class Store:
    def load_model_artifact(self, model_id):
        return data

version = SimpleNamespace(
    symbol="ETH/USD", model_id="m-1", version=4, model_type="lstm", artifact_format="keras"
)
try:
    load_registered_model(Store(), version)
except ArtifactEnvironmentError as exc:
    print(type(exc).__name__, exc)
"""


def test_loading_an_lstm_version_names_the_extra(core_python: Path, tmp_path: Path) -> None:
    artifact = tmp_path / "model.keras"
    artifact.write_bytes(minimal_keras_archive())
    done = run_core(core_python, ["-c", LOAD_WITHOUT_TF, str(artifact)], tmp_path)
    assert done.returncode == 0, done.stderr
    direct, registered = done.stdout.splitlines()
    assert direct.startswith("LSTMExtraMissingError loading an lstm model version needs the")
    assert LSTM_EXTRA_INSTALL in direct
    assert registered.startswith("ArtifactEnvironmentError this process cannot load ETH/USD")
    assert LSTM_EXTRA_INSTALL in registered


# -- in process: the pieces the subprocess tests rely on ------------------------------------


def test_a_missing_keras_is_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` -> ModuleNotFoundError
    error = network.keras_import_error()
    assert isinstance(error, LSTMExtraMissingError) and isinstance(error, ModuleNotFoundError)
    assert str(error) == (
        "the lstm model type needs the `lstm` extra (keras is not installed): "
        "pip install 'brain-assets[lstm]'"
    )
    with pytest.raises(LSTMExtraMissingError, match=r"loading an lstm model needs"):
        network.load_network(Path("unused.keras"))


def test_a_broken_tensorflow_is_not_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed but failing to load (a shared library): reported as it is, for the alert."""

    def broken() -> None:
        raise ImportError("libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(network, "import_keras", broken)
    error = network.keras_import_error()
    assert type(error) is ImportError and "libcudnn" in str(error)


def test_include_lstm_without_the_extra_trains_the_others(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="brain_assets")
    monkeypatch.setattr(retrain_settings, "lstm_extra_missing", lambda: "tensorflow")
    retrain_settings._say_lstm_skipped.cache_clear()
    settings = RetrainSettings(model_types=("ridge",), include_lstm=True)
    assert settings.trained_model_types == ("ridge",)
    assert settings.trained_model_types == ("ridge",)
    # Named in model_types, the lstm stays: training skips it with its reason and an alert.
    assert RetrainSettings(model_types=("ridge", "lstm")).trained_model_types == ("ridge", "lstm")
    said = [r for r in caplog.records if getattr(r, "event", None) == LSTM_SKIPPED]
    assert len(said) == 1, "one line per process"
    assert LSTM_EXTRA_INSTALL in said[0].getMessage()
    retrain_settings._say_lstm_skipped.cache_clear()


def test_the_forkserver_preloads_tensorflow_only_where_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from brain_assets import forkserver

    if network.lstm_extra_missing() is None:
        assert "tensorflow" in forkserver.preload_modules()
    monkeypatch.setattr(forkserver, "lstm_extra_missing", lambda: "tensorflow")
    assert "tensorflow" not in forkserver.preload_modules()
    assert set(forkserver.PRELOAD) <= set(forkserver.preload_modules())


def test_demo_has_a_no_lstm_flag() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "brain_assets.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "--no-lstm" in done.stdout
