"""The wheel works anywhere: built from the project, installed into a new virtual environment in a
folder with no checkout, where `brain verify`, a one-symbol retrain and `brain dev` run.

The new environment gets the wheel alone (``--no-deps``) and finds the dependencies through a
``.pth`` line naming this environment's site-packages: downloading TensorFlow and Dagster again
would take minutes and prove nothing about the wheel. What this test proves is what the wheel
carries: the package, its migrations, its Dagster YAML files and its entry point. A second
environment sees the same site-packages with TensorFlow and Keras hidden: the core install,
without the ``lstm`` extra, whose markers the wheel's metadata carries.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from brain_assets_tests.dev_server import free_port, graphql, server_answers, wait_for
from brain_assets_tests.paths import REPO, TEST_DATA
from brain_assets_tests.without_lstm import site_without_lstm

pytestmark = pytest.mark.slow

REPO = REPO
SKIP = {".venv", ".git", "build", "dist", ".brain", "logs", ".mypy_cache", ".ruff_cache"}


def build_wheel(out: Path) -> Path:
    # A copy of the project, so that the build leaves nothing in the checkout.
    source = out / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=lambda folder, names: [
            n for n in names if n in SKIP or n.endswith((".egg-info", "__pycache__"))
        ],
    )
    dist = out / "dist"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = dist.glob("brain_assets-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def install(wheel: Path, venv: Path, site: Path | None = None) -> Path:
    """The wheel alone in a new environment that sees ``site`` (default: this environment's
    site-packages) for its dependencies; the environment's bin folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    subprocess.run(
        [*pip, "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(target, "dependencies.pth").write_text(f"{site or sysconfig.get_paths()['purelib']}\n")
    return venv / "bin"


def test_the_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    migrations = sorted(n for n in names if n.startswith("brain_assets/_bundled/sql/"))
    assert [Path(n).name for n in migrations] == sorted(
        p.name for p in (REPO / "sql").glob("*.sql")
    )
    assert "brain_assets/_bundled/dagster.yaml" in names
    assert "brain_assets/_bundled/workspace.yaml" in names

    bin_dir = install(wheel, tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path / "user"),
        "BRAIN_LOG_DIR": str(tmp_path / "logs"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }

    def brain(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / "brain"), *argv],
            env=env,
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import brain_assets; print(brain_assets.__file__)"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(tmp_path / "venv")), where  # the wheel, not the checkout
    verified = brain("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    demo = brain("demo", "--symbols", "BTC/USDT")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert " BTC/USDT succeeded" in demo.stdout
    # The default home, not the current directory: the same Brain from any folder.
    assert (tmp_path / "user" / ".local" / "share" / "brain-assets" / "pgdata").is_dir()
    assert not (elsewhere / ".brain").exists()

    port = free_port()
    server = subprocess.Popen(
        [str(bin_dir / "brain"), "dev", "--port", str(port)],
        env=env,
        cwd=elsewhere,
        stdout=(tmp_path / "dev.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            wait_for(lambda: server_answers(port), 240, "the Dagster UI of the installed wheel")
        except AssertionError:
            raise AssertionError((tmp_path / "dev.log").read_text()[-3000:]) from None
        query = (
            "{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } } } } }"
        )
        nodes = wait_for(
            lambda: graphql(port, query)["repositoriesOrError"].get("nodes"),
            120,
            "the code location of the installed wheel",
        )
        found = {job["name"] for node in nodes for job in node["jobs"]}
        assert {"daily_retrain", "fetch_bars", "monitoring_job"} <= found
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=90)


LSTM_PACKAGES = {"tensorflow", "tensorflow-cpu", "keras"}


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(name).decode()
    return [
        Requirement(line.split(":", 1)[1].strip())
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]


def marker_env(machine: str, system: str = "linux", extra: str = "lstm") -> dict[str, str]:
    return {"sys_platform": system, "platform_machine": machine, "extra": extra}


def test_the_wheel_installs_and_runs_without_tensorflow(wheel: Path, tmp_path: Path) -> None:
    requirements = wheel_requirements(wheel)
    lstm = {r.name: r for r in requirements if r.name in LSTM_PACKAGES}
    assert set(lstm) == LSTM_PACKAGES
    for requirement in lstm.values():
        # Only through the extra: no environment without extra == "lstm" installs it.
        assert requirement.marker is not None, requirement
        assert not requirement.marker.evaluate(marker_env("x86_64", extra="")), requirement
        assert requirement.marker.evaluate(marker_env("x86_64")) or requirement.name == "tensorflow"
    cpu, full = lstm["tensorflow-cpu"].marker, lstm["tensorflow"].marker
    assert cpu is not None and full is not None
    # tensorflow-cpu has wheels for Linux x86_64 only (of the Linux machines): aarch64 and the
    # other systems get tensorflow, and no platform gets both.
    for environment, wants_cpu in [
        (marker_env("x86_64"), True),
        (marker_env("AMD64"), True),
        (marker_env("aarch64"), False),
        (marker_env("arm64", "darwin"), False),
        (marker_env("AMD64", "win32"), False),
    ]:
        assert cpu.evaluate(environment) is wants_cpu, environment
        assert full.evaluate(environment) is not wants_cpu, environment
    assert any(r.name == "apprise" and r.marker for r in requirements)  # the alerts extra

    bin_dir = install(wheel, tmp_path / "venv", site_without_lstm(tmp_path / "site"))
    bars = tmp_path / "bars"
    bars.mkdir()
    shutil.copy(TEST_DATA / "ETH-USD.csv", bars / "ETH-USD.csv")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path / "user"),
        "BRAIN_LOG_DIR": str(tmp_path / "logs"),
    }

    def brain(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / "brain"), *argv],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    found = subprocess.run(
        [str(bin_dir / "python"), "-c", "import importlib.util as u; print(u.find_spec('keras'))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "None"
    demo = brain("demo", "--no-lstm", "--source", "files", "--folder", str(bars))
    assert demo.returncode == 0, demo.stdout + demo.stderr[-3000:]
    assert " ETH/USD succeeded" in demo.stdout
    assert "LSTM skipped" not in demo.stdout  # asked for: nothing to explain
    verified = brain("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    [lstm_line] = [line for line in verified.stdout.splitlines() if "LSTM availability" in line]
    assert "pip install 'brain-assets[lstm]'" in lstm_line


DOCKER_INSTRUCTIONS = {
    "FROM",
    "ENV",
    "COPY",
    "RUN",
    "USER",
    "WORKDIR",
    "EXPOSE",
    "CMD",
    "ARG",
    "LABEL",
    "ENTRYPOINT",
}


def test_the_dockerfile_installs_the_wheel_the_test_builds() -> None:
    """No Docker daemon here: the Dockerfile parses, and the commands it documents and runs are
    the ones this module runs (pip wheel --no-deps, then pip install of that wheel)."""
    text = (REPO / "Dockerfile").read_text()
    lines = [
        line.strip()
        for line in text.replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    instructions = [line.split()[0] for line in lines]
    assert set(instructions) <= DOCKER_INSTRUCTIONS, instructions
    assert instructions[0] == "FROM" and lines[0].startswith("FROM python:3.11")
    assert "python -m pip wheel --no-deps -w dist ." in text
    copies = [line.split()[1] for line in lines if line.startswith("COPY")]
    assert copies == ["dist/brain_assets-*.whl", "constraints.txt"]
    [install] = [line for line in lines if line.startswith("RUN") and "pip install" in line]
    assert "/tmp/wheels/brain_assets-*.whl)[exchange,lstm]" in install
    # The versions the test suite passed with (brain_assets_tests/test_constraints.py).
    assert "pip install -c /tmp/constraints.txt" in install
    values = (REPO / "deploy" / "k8s" / "values.yaml").read_text()
    assert 'repository: "registry.example.com/brain-assets"' in values
