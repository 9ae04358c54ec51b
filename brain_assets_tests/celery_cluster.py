"""The deploy/celery layout on one machine (Redis, the embedded PostgreSQL, a code server, the
webserver, the daemon and Celery workers), started and stopped as an operator would: what
e2e/test_celery_scale_out.py checks and bench/celery_scale_out.py times."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

from brain_assets_tests.dev_server import free_port, graphql, server_answers, wait_for
from brain_assets_tests.paths import REPO

ROOT = REPO
DEPLOY = ROOT / "deploy" / "celery"
BIN = Path(sys.executable).parent  # dagster, dagster-webserver, dagster-celery, celery
REQUIRE_ENV = "BRAIN_REQUIRE_CELERY"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT")
# The steps of one daily_retrain run (one per asset of the job).
RETRAIN_STEPS = {
    "market_data",
    "volatility_regime",
    "features",
    "trained_models",
    "model_evaluation",
    "registry_entries",
    "feature_importance",
}
LOCATION = "brain_assets"  # location_name in deploy/celery/workspace.yaml

LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries {
  name locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN = """query Run($id: ID!) { runOrError(runId: $id) { ... on Run {
  status startTime endTime } } }"""
EVENTS = """query Events($id: ID!, $after: String) { runOrError(runId: $id) { ... on Run {
  eventConnection(afterCursor: $after) { cursor hasMore events {
    __typename
    ... on EngineEvent { metadataEntries { label ... on TextMetadataEntry { text } } }
  } } } } }"""
TASK_SUCCEEDED = re.compile(r"Task execute_plan\[[0-9a-f-]+\] succeeded in ([0-9.]+)s")
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def celery_unavailable() -> str | None:
    """Why the Celery layout cannot run here, or None when it can."""
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server (Debian package redis-server)")
    if importlib.util.find_spec("dagster_celery") is None or (
        importlib.util.find_spec("redis") is None
    ):
        missing.append('dagster-celery with redis (pip install "dagster-celery[redis]==0.29.*")')
    return f"needs {' and '.join(missing)}" if missing else None


@dataclass
class RetrainOutcome:
    """What one retrain through the cluster did."""

    runs: dict[str, dict[str, Any]]
    """symbol -> run_id, status, start_time, end_time"""
    steps_by_worker: dict[str, list[str]]
    """Celery worker hostname -> "symbol:step" executed there (Dagster's engine events)"""
    tasks_succeeded: dict[str, int]
    """worker name -> execute_plan tasks its log reports as succeeded"""
    wall_s: float
    """from the first launch until the last run was seen finished"""
    runs_s: float
    """from the first run's start to the last run's end (Dagster's timestamps)"""
    worker_cpu_s: dict[str, float]
    """worker name -> CPU seconds (user + system) its processes used during the retrain"""
    machine_busy_s: float
    """CPU seconds the whole machine was busy during the retrain (every process, ours or not)"""


@dataclass
class CeleryCluster:
    """Redis, PostgreSQL, code server, webserver, daemon and ``workers`` Celery workers under
    ``root``, configured by the deploy/celery files; a context manager that stops them all."""

    root: Path
    workers: int = 2
    env: dict[str, str] = field(default_factory=dict)
    webserver_port: int = 0
    worker_names: list[str] = field(default_factory=list)
    leftovers: list[int] = field(default_factory=list)
    _processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _server: Any = None

    def __enter__(self) -> CeleryCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        sink = self.log(name).open("wb")
        self._logs.append(sink)
        # Each in its own session, so that stopping it stops what it started (the celery
        # process behind `dagster-celery worker start`, its pool process, run workers).
        process = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.root,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._processes.append((name, process))
        return process

    def start(self) -> None:
        from brain_assets.cli.instance import sqlalchemy_url
        from brain_assets.store.embedded import start_embedded

        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        redis_port, code_port = free_port(), free_port()
        self.webserver_port = free_port()

        self._spawn(
            "redis",
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
        )
        # The shared PostgreSQL: here the embedded server, reached by every process through the
        # two variables a deployment sets for its own server (deploy/README.md).
        self._server = start_embedded(self.root / "pgdata")
        dsn = self._server.ensure_database("brain")
        dagster_home = self.root / "dagster_home"
        dagster_home.mkdir()
        shutil.copyfile(DEPLOY / "dagster.yaml", dagster_home / "dagster.yaml")
        broker = f"redis://127.0.0.1:{redis_port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "BRAIN_"))},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DATABASE_DSN": dsn,
            "DAGSTER_PG_URL": sqlalchemy_url(dsn),
            "DAGSTER_HOME": str(dagster_home),
            "BRAIN_HOME": str(self.root / "home"),
            "BRAIN_LOG_DIR": str(self.root / "logs" / "brain"),
            "BRAIN_EXECUTOR": "celery",
            # The runs train on generated bars, a choice the deployment makes explicitly.
            "BRAIN_MARKET_SOURCE": "synthetic",
            "DAGSTER_CELERY_BROKER_URL": f"{broker}/0",
            "DAGSTER_CELERY_BACKEND_URL": f"{broker}/1",
            "BRAIN_CODE_SERVER_HOST": "127.0.0.1",
            "BRAIN_CODE_SERVER_PORT": str(code_port),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        wait_for(lambda: self._redis_answers(redis_port), 30, "redis-server")

        added = subprocess.run(
            [sys.executable, "-m", "brain_assets.cli", "symbols", "add", *SYMBOLS],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert added.returncode == 0, added.stderr

        workspace = str(DEPLOY / "workspace.yaml")
        self._spawn(
            "code-server",
            [
                str(BIN / "dagster"),
                "api",
                "grpc",
                "--module-name",
                "brain_assets.definitions",
                "--host",
                "127.0.0.1",
                "--port",
                str(code_port),
            ],
        )
        for index in range(1, self.workers + 1):
            name = f"worker{index}"
            self.worker_names.append(name)
            self._spawn(
                name,
                [
                    str(BIN / "dagster-celery"),
                    "worker",
                    "start",
                    "-A",
                    "dagster_celery.app",
                    "-y",
                    str(DEPLOY / "worker.yaml"),
                    "-q",
                    "dagster",
                    "-n",
                    name,
                    "--",
                    "--concurrency=1",
                ],
            )

        # The webserver and the daemon load the workspace once the code server answers.
        wait_for(lambda: self._alive() and self._code_server_serves(code_port), 180, "code server")
        self._spawn(
            "webserver",
            [
                str(BIN / "dagster-webserver"),
                "-w",
                workspace,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.webserver_port),
            ],
        )
        self._spawn("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace])
        wait_for(lambda: self._alive() and server_answers(self.webserver_port), 180, "webserver")
        wait_for(lambda: self._alive() and self._location_loaded(), 180, "the code location")
        for name in self.worker_names:
            wait_for(lambda n=name: self._alive() and self._worker_ready(n), 180, f"{name} ready")

    def _alive(self) -> bool:
        dead = [(name, p.returncode) for name, p in self._processes if p.poll() is not None]
        if dead:
            tails = {name: self.log(name).read_text(errors="replace")[-3000:] for name, _ in dead}
            raise AssertionError(f"exited early: {dead}\n{tails}")
        return True

    @staticmethod
    def _redis_answers(port: int) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping())
        except redis.exceptions.ConnectionError:
            return False

    def _code_server_serves(self, port: int) -> bool:
        check = subprocess.run(
            [str(BIN / "dagster"), "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(port)],
            env=self.env,
            capture_output=True,
            timeout=60,
        )
        return check.returncode == 0

    def _location_loaded(self) -> bool:
        entries = graphql(self.webserver_port, LOCATIONS)["workspaceOrError"]["locationEntries"]
        for entry in entries:
            loaded = entry["locationOrLoadError"]
            if entry["name"] == LOCATION and loaded is not None:
                assert loaded["__typename"] != "PythonError", loaded["message"]
                return True
        return False

    def _worker_ready(self, name: str) -> bool:
        # Celery prints "<name>@<host> ready." once it consumes from the queue.
        log = self.log(name).read_text(errors="replace")
        return re.search(rf"{name}@\S+ ready\.", log) is not None

    def retrain(self, symbols: tuple[str, ...] = SYMBOLS, timeout_s: float = 900) -> RetrainOutcome:
        """Launch one daily_retrain run per symbol, as the UI does, and wait for all of them."""
        cpu_before = self.worker_cpu_s()
        busy_before = _machine_busy_s()
        started = time.monotonic()
        run_ids: dict[str, str] = {}
        for symbol in symbols:
            params = {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": "__repository__",
                    "pipelineName": "daily_retrain",
                },
                "mode": "default",
                "runConfigData": {},
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": symbol}]},
            }
            answer = graphql(self.webserver_port, LAUNCH, {"params": params})
            launched = answer["launchPipelineExecution"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_ids[symbol] = launched["run"]["runId"]

        def statuses() -> dict[str, dict[str, Any]] | None:
            self._alive()
            runs = {
                symbol: graphql(self.webserver_port, RUN, {"id": run_id})["runOrError"]
                for symbol, run_id in run_ids.items()
            }
            return runs if all(run["status"] in FINISHED for run in runs.values()) else None

        runs = wait_for(statuses, timeout_s, "the retrain runs")
        wall_s = time.monotonic() - started
        busy_s = _machine_busy_s() - busy_before
        cpu_s = {name: t - cpu_before[name] for name, t in self.worker_cpu_s().items()}
        steps_by_worker: dict[str, list[str]] = {}
        for symbol, run_id in run_ids.items():
            for step, worker in self._celery_steps(run_id):
                steps_by_worker.setdefault(worker, []).append(f"{symbol}:{step}")
        tasks = {
            name: len(TASK_SUCCEEDED.findall(self.log(name).read_text(errors="replace")))
            for name in self.worker_names
        }
        return RetrainOutcome(
            runs={
                symbol: {
                    "run_id": run_ids[symbol],
                    "status": run["status"],
                    "start_time": run["startTime"],
                    "end_time": run["endTime"],
                }
                for symbol, run in runs.items()
            },
            steps_by_worker=steps_by_worker,
            tasks_succeeded=tasks,
            wall_s=wall_s,
            worker_cpu_s=cpu_s,
            machine_busy_s=busy_s,
            runs_s=_span([(run["startTime"], run["endTime"]) for run in runs.values()]),
        )

    def worker_cpu_s(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by each worker's live processes: the
        dagster-celery command, the celery main process and its pool process."""
        totals = {}
        for name, process in self._processes:
            if name not in self.worker_names:
                continue
            leader = psutil.Process(process.pid)
            times = [proc.cpu_times() for proc in (leader, *leader.children(recursive=True))]
            totals[name] = sum(t.user + t.system for t in times)
        return totals

    def _celery_steps(self, run_id: str) -> list[tuple[str, str]]:
        """(step key, worker hostname) of each "Executing steps ... in celery worker" event."""
        found: list[tuple[str, str]] = []
        after = None
        while True:
            answer = graphql(self.webserver_port, EVENTS, {"id": run_id, "after": after})
            connection = answer["runOrError"]["eventConnection"]
            for event in connection["events"]:
                if event["__typename"] != "EngineEvent":
                    continue
                # dagster_celery.tasks reports each task it starts with these two entries.
                entries = {e["label"]: e.get("text") for e in event["metadataEntries"]}
                if "Celery worker" in entries:
                    found.append((entries["step_keys"], entries["Celery worker"]))
            if not connection["hasMore"]:
                return found
            after = connection["cursor"]

    def stop(self) -> None:
        """Stop the workers, the Dagster processes and Redis (SIGTERM, then SIGKILL after a
        grace period), then PostgreSQL; ``leftovers`` holds any pid that outlived that."""
        tracked: list[psutil.Process] = []
        for _, process in self._processes:
            try:
                tracked += psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for _, process in reversed(self._processes):
            _stop_session(process)
        _, alive = psutil.wait_procs(tracked, timeout=15)
        self.leftovers = [proc.pid for proc in alive]
        for proc in alive:
            proc.kill()
        for sink in self._logs:
            sink.close()
        self._processes.clear()
        self._logs.clear()
        if self._server is not None:
            self._server.release()
            self._server = None


def _span(times: list[tuple[float | None, float | None]]) -> float:
    """From the earliest start to the latest end; a run that never started has no times."""
    starts = [start for start, _ in times if start is not None]
    ends = [end for _, end in times if end is not None]
    return max(ends) - min(starts) if starts and ends else float("nan")


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    busy = ("user", "nice", "system", "irq", "softirq", "steal")  # guest time is in user
    return float(sum(getattr(times, name, 0.0) for name in busy))


def _stop_session(process: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """SIGTERM the process group led by ``process``; SIGKILL it if still there after
    ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; give what it left in its group a moment, then try again.
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    process.wait(timeout=grace_s)
