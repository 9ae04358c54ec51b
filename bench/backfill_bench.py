"""A UI backfill of the daily retrain over 16 symbols under `brain dev`, and one in-process run
over the same symbols for comparison.

    .venv/bin/python bench/backfill_bench.py [--symbols 16] [--repeats 1] [--bars 2000]

Backfill: `brain dev` in a subprocess with a temporary BRAIN_HOME (its own embedded PostgreSQL),
the symbols added with `brain symbols add`, then GraphQL `launchPartitionBackfill` with the
parameters the UI's "Materialize all" dialog sends from the daily_retrain job page (partition set
selector, the job's assets, the partition names) plus run config for the fast settings. The
assets' BackfillPolicy.multi_run(1) makes that one run per symbol, and dagster.yaml's
QueuedRunCoordinator runs two at a time. Measured: runs launched, wall time from the launch to
the last run's end, the most runs at once, how long the daemons took to start the first run, each
run's time outside its steps, and busy cores (from /proc/stat, every second, whole machine).

In process: dagster.materialize of the same assets over the same symbols as ONE run
(dagster/asset_partition_range_start/_end tags), same settings, fresh embedded PostgreSQL.

Both sample the whole machine's CPU, so other work on it counts too: the idle baseline measured
just before each is reported next to it. Results go to bench/results/backfill_bench.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).parent / "results" / "backfill_bench.json"
REPO = Path(__file__).resolve().parents[1]


def _dev_server_helpers() -> Any:
    # This checkout's helpers by file, not by import: under retrain_throughput.py's baseline,
    # PYTHONPATH puts an older tree (with older helpers) first.
    spec = importlib.util.spec_from_file_location(
        "bench_dev_server", REPO / "brain_assets_tests" / "dev_server.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_helpers = _dev_server_helpers()
free_port, graphql, wait_for = _helpers.free_port, _helpers.graphql, _helpers.wait_for

JOB = "daily_retrain"
MODEL_TYPES = ["ridge", "hist_gradient_boosting"]
TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
# A job backfill is COMPLETED once its runs are submitted, not finished; only these mean that
# the daemon is still working on it.
ACTIVE_BACKFILL = {"REQUESTED", "CANCELING", "FAILING"}
# Bounds on every wait, so that a stuck daemon fails the bench instead of hanging it.
UI_START_TIMEOUT_S = 240.0
LOCATION_TIMEOUT_S = 240.0
DAEMON_TIMEOUT_S = 180.0
BACKFILL_TIMEOUT_S = 3600.0
STOP_TIMEOUT_S = 90.0
CLI_TIMEOUT_S = 300.0

LOCATIONS = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } }
} } } }"""
DAEMONS = """{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"""
PARTITION_SETS = """
query Sets($repo: RepositorySelector!, $job: String!) {
  partitionSetsOrError(repositorySelector: $repo, pipelineName: $job) {
    __typename ... on PartitionSets { results { name } } ... on PythonError { message }
  }
}"""
JOB_ASSETS = """
query Assets($job: PipelineSelector!) { assetNodes(pipeline: $job) { assetKey { path } } }"""
LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename ... on PartitionBackfill { status numPartitions } ... on PythonError { message }
  }
}"""
BACKFILL_RUNS = """
query Runs($id: String!, $details: Boolean!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    __typename
    ... on Runs { results {
      runId status creationTime startTime endTime
      tags { key value }
      stepStats @include(if: $details) { stepKey status startTime endTime }
    } }
    ... on PythonError { message }
  }
}"""

RUN_EVENTS = """
query Events($id: ID!) {
  logsForRun(runId: $id, limit: 60) {
    __typename ... on EventConnection { events { ... on MessageEvent { eventType timestamp } } }
  }
}"""
LIFECYCLE = ("RUN_ENQUEUED", "RUN_STARTING", "RUN_START")


# "fast": the settings that keep 16 retrains to minutes; "demo": the definitions' own retrain
# settings (four model types, LSTM included) on the demo's bar count.
SETTINGS = {"name": "fast"}


def fast_run_config(bars: int) -> dict[str, Any]:
    """The run config of ``SETTINGS`` (field names of defs/resources.py)."""
    if SETTINGS["name"] == "demo":
        return {"resources": {"market": {"config": {"n_bars": bars, "source": "synthetic"}}}}
    return {
        "resources": {
            "retrain": {
                "config": {
                    "include_lstm": False,
                    "importance_sample": 250,
                    "model_types": MODEL_TYPES,
                }
            },
            "market": {"config": {"n_bars": bars, "source": "synthetic"}},
        }
    }


def bench_symbols(n: int) -> list[str]:
    return [f"BF{i:02d}/USDT" for i in range(n)]


# ----------------------------------------------------------------------------- CPU sampling


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot; iowait counts as idle."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is already inside user and nice).
    total = sum(fields[:8])
    return total - fields[3] - fields[4], total


def descends_from(pid: int, roots: set[int], parents: dict[int, int]) -> bool:
    while pid > 1:
        if pid in roots:
            return True
        pid = parents.get(pid, 0)
    return False


class CpuSampler:
    """Busy cores of the whole machine, one sample a second, in a background thread.

    It also estimates the share of other users (the machine is shared): CPU time of processes
    that descend neither from this bench nor from a PostgreSQL postmaster of ours (``roots``
    gives those pids; the postmaster is detached, so it is not our descendant). That figure is a
    lower bound: a process's CPU in its last second before exiting is not seen.
    """

    def __init__(
        self, interval_s: float = 1.0, roots: Callable[[], set[int]] | None = None
    ) -> None:
        self.interval_s = interval_s
        self.cores = os.cpu_count() or 1
        self.samples: list[tuple[float, float]] = []
        self.others_cpu_s = 0.0
        self._roots = roots or (lambda: set())
        self._seen: dict[tuple[int, float], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._first = cpu_ticks()
        self._last = self._first
        self._started = time.monotonic()

    def _others(self, record: bool) -> None:
        """Add the CPU seconds that foreign processes used since the last call."""
        roots = {os.getpid(), *self._roots()}
        table = []
        for proc in psutil.process_iter(["pid", "ppid", "create_time", "cpu_times"]):
            info = proc.info
            if info["cpu_times"] is None:
                continue
            table.append(info)
        parents = {info["pid"]: info["ppid"] for info in table}
        for info in table:
            key = (info["pid"], info["create_time"])
            used = info["cpu_times"].user + info["cpu_times"].system
            before = self._seen.get(key)
            self._seen[key] = used
            if not record or descends_from(info["pid"], roots, parents):
                continue
            # A process born since the last sample counts from its start.
            self.others_cpu_s += used - (before if before is not None else 0.0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = cpu_ticks()
            busy, total = now[0] - self._last[0], now[1] - self._last[1]
            self._last = now
            if total > 0:
                self.samples.append((time.time(), self.cores * busy / total))
            self._others(record=True)

    def start(self) -> CpuSampler:
        self._others(record=False)
        self._first = self._last = cpu_ticks()
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=5)
        self._others(record=True)  # the last, partial interval
        end = cpu_ticks()
        elapsed = time.monotonic() - self._started
        busy, total = end[0] - self._first[0], end[1] - self._first[1]
        per_second = [cores for _, cores in self.samples]
        return {
            # Over the whole interval (exact, not an average of the samples).
            "mean_busy_cores": self.cores * busy / total if total else 0.0,
            "others_busy_cores_lower_bound": self.others_cpu_s / elapsed if elapsed else 0.0,
            "cores": self.cores,
            "samples": len(per_second),
            "median_sample": statistics.median(per_second) if per_second else None,
            "share_of_seconds_below_1_5_cores": (
                sum(c < 1.5 for c in per_second) / len(per_second) if per_second else None
            ),
            "per_second": [round(c, 2) for c in per_second],
        }


def postmaster(pgdata: Path) -> set[int]:
    """The pid of the embedded server's postmaster in ``pgdata``, if it runs."""
    try:
        return {int((pgdata / "postmaster.pid").read_text().split()[0])}
    except (OSError, ValueError, IndexError):
        return set()


def idle_baseline(seconds: float = 5.0) -> float:
    """Busy cores while nothing of ours computes: the other users of the machine."""
    sampler = CpuSampler().start()
    time.sleep(seconds)
    return float(sampler.stop()["mean_busy_cores"])


# ----------------------------------------------------------------------------- brain dev


def brain_command() -> list[str]:
    return [sys.executable, "-m", "brain_assets.cli"]


def log_tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no output)"


def stop_group(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """SIGTERM the process group of `brain dev` (it and every process it started in it), wait,
    then SIGKILL what is left. Returns what happened, with what had to be killed, for the
    report."""
    pgid = process.pid  # started with start_new_session: its pid is the group id
    members = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == pgid]
    started = time.monotonic()
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return {"stopped_s": 0.0, "killed": [], "members": 0}
    _, alive = psutil.wait_procs(members, timeout=STOP_TIMEOUT_S)
    killed = []
    for proc in alive:
        killed.append(describe(proc))
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        killed.append(f"{process.pid} brain dev (did not exit after SIGKILL)")
    return {
        "stopped_s": round(time.monotonic() - started, 1),
        "members": len(members),
        "member_commands": [describe(p) for p in members if p.is_running()] if killed else [],
        "killed": killed,
        "returncode": process.returncode,
    }


def describe(proc: psutil.Process) -> str:
    """pid, state, parent and command line (shortened) of a process that would not stop."""
    try:
        with proc.oneshot():
            command = " ".join(proc.cmdline())[:160]
            return f"{proc.pid} [{proc.status()}, parent {proc.ppid()}] {command}"
    except psutil.Error as exc:
        return f"{proc.pid} ({type(exc).__name__})"


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


@contextmanager
def brain_dev(
    folder: Path, symbols: list[str], extra_env: dict[str, str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """`brain dev` on a fresh BRAIN_HOME with ``symbols`` added; yields (port, startup times).
    Always stops it, and the embedded PostgreSQL it started, on the way out."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_DSN", "DAGSTER_HOME")}
    home = folder / "home"
    env.update(BRAIN_HOME=str(home), BRAIN_LOG_DIR=str(folder / "logs"), **extra_env)
    startup: dict[str, Any] = {}
    started = time.monotonic()
    added = subprocess.run(
        [*brain_command(), "symbols", "add", *symbols],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    if added.returncode != 0:
        raise RuntimeError(f"brain symbols add failed: {added.stderr[-2000:]}")
    startup["symbols_add_s"] = round(time.monotonic() - started, 1)
    port = free_port()
    output = folder / "brain_dev.out"
    with output.open("wb") as sink:
        started = time.monotonic()
        # Its own session and process group, so that one killpg reaches the UI server, the
        # daemon, the code server and the run workers; output to a file, as a pipe nobody reads
        # would fill up and block the server.
        process = subprocess.Popen(
            [*brain_command(), "dev", "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: answers(port), UI_START_TIMEOUT_S, "the UI server")
        startup["ui_s"] = round(time.monotonic() - started, 1)
        wait_for(lambda: location_loaded(port), LOCATION_TIMEOUT_S, "the code location")
        startup["code_location_s"] = round(time.monotonic() - started, 1)
        wait_for(lambda: daemons_healthy(port), DAEMON_TIMEOUT_S, "healthy daemons", every=2.0)
        startup["daemons_healthy_s"] = round(time.monotonic() - started, 1)
        yield port, startup
    except BaseException:
        print(f"brain dev output (tail):\n{log_tail(output)}", file=sys.stderr)
        raise
    finally:
        startup["stop"] = stop_group(process)
        if startup["stop"]["killed"]:
            # Dagster's own account of its shutdown, to see which process hung and why.
            startup["stop"]["output_tail"] = log_tail(output, 6000)
        startup["embedded_stopped"] = stop_embedded(home / "pgdata")


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server if a killed process left it running: join it (pruning dead
    handles), then release the only handle left, ours."""
    if not (pgdata / "postmaster.pid").exists():
        return True
    from brain_assets.store.embedded import start_embedded

    try:
        start_embedded(pgdata).release()
    except Exception as exc:  # a leftover server is reported, not fatal to the results
        print(f"could not stop the embedded server in {pgdata}: {exc}", file=sys.stderr)
        return False
    return not (pgdata / "postmaster.pid").exists()


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
            return True
    except OSError:
        return False


def location_loaded(port: int) -> str | None:
    entries = graphql(port, LOCATIONS)["workspaceOrError"].get("locationEntries") or []
    for entry in entries:
        loaded = entry.get("locationOrLoadError") or {}
        if loaded.get("__typename") == "PythonError":
            raise RuntimeError(f"code location failed to load: {loaded.get('message')}")
        if entry.get("loadStatus") == "LOADED" and loaded.get("__typename"):
            return str(entry["name"])
    return None


def daemons_healthy(port: int) -> bool:
    statuses = graphql(port, DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
    needed = {"BACKFILL", "QUEUED_RUN_COORDINATOR"}
    healthy = {s["daemonType"] for s in statuses if s["healthy"]}
    return needed <= healthy


# ----------------------------------------------------------------------------- the backfill


def launch_params(port: int, symbols: list[str], bars: int) -> dict[str, Any]:
    """What the UI sends from the job page's partition dialog ("Launch backfill"), plus config."""
    location = location_loaded(port)
    assert location is not None
    repo = {"repositoryLocationName": location, "repositoryName": "__repository__"}
    sets = graphql(port, PARTITION_SETS, {"repo": repo, "job": JOB})["partitionSetsOrError"]
    if sets["__typename"] != "PartitionSets" or not sets["results"]:
        raise RuntimeError(f"no partition set for {JOB}: {sets}")
    job = {**repo, "pipelineName": JOB}
    nodes = graphql(port, JOB_ASSETS, {"job": job})["assetNodes"]
    return {
        "selector": {"partitionSetName": sets["results"][0]["name"], "repositorySelector": repo},
        "assetSelection": [{"path": node["assetKey"]["path"]} for node in nodes],
        "partitionNames": symbols,
        "fromFailure": False,
        "tags": [],
        "runConfigData": fast_run_config(bars),
    }


def backfill_runs(port: int, backfill_id: str, details: bool = False) -> list[dict[str, Any]]:
    answer = graphql(port, BACKFILL_RUNS, {"id": backfill_id, "details": details})["runsOrError"]
    if answer["__typename"] != "Runs":
        raise RuntimeError(f"runs of backfill {backfill_id}: {answer}")
    runs: list[dict[str, Any]] = answer["results"]
    return runs


def lifecycle(port: int, run_id: str) -> dict[str, float]:
    """When the run was queued, handed to the launcher by the run coordinator (RUN_STARTING)
    and began in its worker process (RUN_START), epoch seconds."""
    answer = graphql(port, RUN_EVENTS, {"id": run_id})["logsForRun"]
    times: dict[str, float] = {}
    for event in answer.get("events") or []:
        kind = event.get("eventType")
        if kind in LIFECYCLE and kind not in times:
            times[kind] = float(event["timestamp"]) / 1000.0
    return times


def backfill_done(port: int, backfill_id: str) -> tuple[str, list[dict[str, Any]]] | None:
    status = graphql(port, BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
    if status["__typename"] != "PartitionBackfill":
        raise RuntimeError(f"backfill {backfill_id}: {status}")
    runs = backfill_runs(port, backfill_id)
    if status["status"] in ACTIVE_BACKFILL or not runs:
        return None
    if any(run["status"] not in TERMINAL_RUN for run in runs):
        return None
    return str(status["status"]), runs


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a start at the same time)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    total = 0.0
    end = float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def handoff_gaps(intervals: list[tuple[float, float]]) -> list[float]:
    """For each run's end, the wait until the next run started after it: the time a freed slot of
    the queue stays empty (the daemons' polling, the new run's process start)."""
    starts = sorted(s for s, _ in intervals)
    gaps = []
    for _, end in intervals:
        later = [s for s in starts if s >= end]
        if later:
            gaps.append(later[0] - end)
    return gaps


def compute_from_log(log_dir: Path) -> dict[str, float]:
    """Seconds inside fit, predict and importance, summed over every run (the JSON log)."""
    seconds: dict[str, float] = defaultdict(float)
    for path in sorted(log_dir.glob("brain.log*")):
        for line in path.read_text(errors="replace").splitlines():
            if '"compute_timing"' not in line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            fields = record.get("fields") or {}
            seconds[str(fields.get("stage"))] += float(fields.get("seconds", 0.0))
    return dict(seconds)


def one_backfill(n_symbols: int, bars: int, extra_env: dict[str, str]) -> dict[str, Any]:
    symbols = bench_symbols(n_symbols)
    with tempfile.TemporaryDirectory(prefix="brain-backfill-bench-") as name:
        folder = Path(name)
        with brain_dev(folder, symbols, extra_env) as (port, startup):
            params = launch_params(port, symbols, bars)
            baseline = idle_baseline()
            pgdata = folder / "home" / "pgdata"
            sampler = CpuSampler(roots=lambda: postmaster(pgdata)).start()
            launched_at = time.time()
            answer = graphql(port, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
            if answer["__typename"] != "LaunchBackfillSuccess":
                sampler.stop()
                raise RuntimeError(f"launchPartitionBackfill: {answer}")
            backfill_id = str(answer["backfillId"])
            status, _ = wait_for(
                lambda: backfill_done(port, backfill_id), BACKFILL_TIMEOUT_S, "the backfill"
            )
            observed_done = time.time()
            cpu = sampler.stop()
            runs = backfill_runs(port, backfill_id, details=True)
            for run in runs:
                run["lifecycle"] = lifecycle(port, run["runId"])
        compute = compute_from_log(folder / "logs")
        coordinator = (folder / "home" / "dagster_home" / "dagster.yaml").read_text()
    return summarise_backfill(
        runs,
        status,
        launched_at,
        observed_done,
        cpu,
        baseline,
        startup,
        compute,
        params,
        coordinator,
    )


def launch_overheads(per_run: list[dict[str, Any]]) -> dict[str, float | None]:
    """Medians of where a run's launch goes: how long a freed queue slot waits until the
    coordinator launches the next run (RUN_STARTING; it polls, and with two slots run k+2 takes
    the slot of the k-th end), and the worker's boot before the run begins (RUN_STARTING ->
    RUN_START: a new process that imports the code location). Dagster 1.13 writes no
    RUN_DEQUEUED event, so the coordinator's own share is inside the first figure.
    """
    life = [r["lifecycle"] for r in per_run if {"RUN_STARTING", "RUN_START"} <= set(r["lifecycle"])]

    def median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    ends = sorted(float(r["end"]) for r in per_run)
    launched = sorted(x["RUN_STARTING"] for x in life)
    slot_wait = [launched[k + 2] - ends[k] for k in range(len(launched) - 2)]
    return {
        "median_slot_free_to_launch_s": median(slot_wait),
        "median_worker_boot_s": median([x["RUN_START"] - x["RUN_STARTING"] for x in life]),
    }


def summarise_backfill(
    runs: list[dict[str, Any]],
    status: str,
    launched_at: float,
    observed_done: float,
    cpu: dict[str, Any],
    baseline: float,
    startup: dict[str, Any],
    compute: dict[str, float],
    params: dict[str, Any],
    dagster_yaml: str,
) -> dict[str, Any]:
    started = [r for r in runs if r["startTime"] and r["endTime"]]
    intervals = [(float(r["startTime"]), float(r["endTime"])) for r in started]
    last_end = max(e for _, e in intervals)
    per_run = []
    for run in started:
        steps = [
            (float(s["startTime"]), float(s["endTime"]))
            for s in run["stepStats"]
            if s["startTime"] and s["endTime"]
        ]
        wall = float(run["endTime"]) - float(run["startTime"])
        in_steps = union_seconds(steps)
        per_run.append(
            {
                "run_id": run["runId"],
                "partition": next(
                    (t["value"] for t in run["tags"] if t["key"] == "dagster/partition"), None
                ),
                "status": run["status"],
                "queued_s": float(run["startTime"]) - float(run["creationTime"]),
                "lifecycle": run.get("lifecycle", {}),
                "wall_s": wall,
                "end": float(run["endTime"]),
                "in_steps_s": in_steps,
                "outside_steps_s": wall - in_steps,
                "to_first_step_s": (min(s for s, _ in steps) - float(run["startTime"]))
                if steps
                else None,
                "steps_s": {
                    s["stepKey"]: float(s["endTime"]) - float(s["startTime"])
                    for s in run["stepStats"]
                    if s["startTime"] and s["endTime"]
                },
            }
        )
    launch = launch_overheads(per_run)
    total_compute = sum(compute.get(k, 0.0) for k in ("fit", "predict", "importance"))
    run_wall_sum = sum(r["wall_s"] for r in per_run)
    step_names = sorted({k for r in per_run for k in r["steps_s"]})
    wall = last_end - launched_at
    return {
        "backfill_status": status,
        "runs_launched": len(runs),
        "runs_succeeded": sum(r["status"] == "SUCCESS" for r in runs),
        "wall_s": wall,
        "observed_done_after_s": observed_done - launched_at,
        "first_run_created_after_s": min(float(r["creationTime"]) for r in runs) - launched_at,
        "first_run_started_after_s": min(s for s, _ in intervals) - launched_at,
        "last_run_created_after_s": max(float(r["creationTime"]) for r in runs) - launched_at,
        "max_concurrent_runs": max_overlap(intervals),
        "mean_concurrent_runs": sum(e - s for s, e in intervals) / wall,
        "median_run_wall_s": statistics.median(r["wall_s"] for r in per_run),
        "median_run_outside_steps_s": statistics.median(r["outside_steps_s"] for r in per_run),
        "median_to_first_step_s": statistics.median(
            r["to_first_step_s"] for r in per_run if r["to_first_step_s"] is not None
        ),
        "median_handoff_gap_s": statistics.median(handoff_gaps(intervals) or [0.0]),
        "median_step_s": {
            name: statistics.median(r["steps_s"][name] for r in per_run if name in r["steps_s"])
            for name in step_names
        },
        **launch,
        "compute_s": compute,
        "compute_total_s": total_compute,
        "run_wall_sum_s": run_wall_sum,
        "overhead_per_run_s": (run_wall_sum - total_compute) / max(1, len(per_run)),
        "cpu": cpu,
        "idle_baseline_busy_cores": baseline,
        "brain_dev_startup": startup,
        "launch_params": params,
        "dagster_yaml": dagster_yaml,
        "runs": per_run,
    }


# ----------------------------------------------------------------------------- in process


class ComputeRecorder(logging.Handler):
    """Seconds inside fit, predict and importance (the retrain's compute_timing events)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: dict[str, float] = defaultdict(float)

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = getattr(record, "fields", {})
        if getattr(record, "event", None) == "compute_timing":
            self.seconds[fields["stage"]] += fields["seconds"]


def one_in_process(n_symbols: int, bars: int) -> dict[str, Any]:
    import dagster as dg

    from brain_assets.defs.io_manager import BrainIOManager
    from brain_assets.defs.monitoring.resources import MonitoringResource
    from brain_assets.defs.partitions import add_symbols
    from brain_assets.defs.resources import (
        BrainResource,
        DecisionResource,
        MarketDataResource,
        RetrainResource,
    )
    from brain_assets.defs.retrain.graph import DAILY_RETRAIN_ASSETS
    from brain_assets.store.embedded import start_embedded

    symbols = bench_symbols(n_symbols)
    with tempfile.TemporaryDirectory(prefix="brain-backfill-bench-inproc-") as folder:
        server = start_embedded(Path(folder) / "pgdata")
        try:
            brain = BrainResource(dsn=server.ensure_database(f"inproc_{uuid.uuid4().hex[:8]}"))
            instance = dg.DagsterInstance.ephemeral()
            add_symbols(instance, symbols)
            recorder = ComputeRecorder()
            logger = logging.getLogger("brain_assets")
            logger.addHandler(recorder)
            logger.setLevel(logging.DEBUG)
            baseline = idle_baseline()
            pgdata = Path(folder) / "pgdata"
            sampler = CpuSampler(roots=lambda: postmaster(pgdata)).start()
            started = time.perf_counter()
            try:
                result = dg.materialize(
                    DAILY_RETRAIN_ASSETS,
                    instance=instance,
                    resources={
                        "brain": brain,
                        "brain_io_manager": BrainIOManager(brain=brain),
                        "market": MarketDataResource(source="synthetic", n_bars=bars),
                        "retrain": RetrainResource(
                            include_lstm=False, importance_sample=250, model_types=MODEL_TYPES
                        ),
                        "monitoring": MonitoringResource(),
                        "decisions": DecisionResource(),
                    },
                    tags={
                        "dagster/asset_partition_range_start": symbols[0],
                        "dagster/asset_partition_range_end": symbols[-1],
                    },
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                )
            finally:
                wall = time.perf_counter() - started
                cpu = sampler.stop()
                logger.removeHandler(recorder)
            instance.dispose()
        finally:
            server.release()
    compute = dict(recorder.seconds)
    total_compute = sum(compute.get(k, 0.0) for k in ("fit", "predict", "importance"))
    return {
        "success": result.success,
        "wall_s": wall,
        "compute_s": compute,
        "compute_total_s": total_compute,
        "overhead_s": wall - total_compute,
        "cpu": cpu,
        "idle_baseline_busy_cores": baseline,
    }


# ----------------------------------------------------------------------------- report


def provenance() -> dict[str, Any]:
    """What was measured: the commit and the files changed since (the code under test moves; a
    result without these cannot be compared with another)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "changed_files": git("status", "--porcelain", "--untracked-files=no").splitlines(),
    }


def median_of(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in rows)


def print_report(data: dict[str, Any]) -> None:
    backfills: list[dict[str, Any]] = data["backfill"]
    in_process: list[dict[str, Any]] = data["in_process"]
    omp = data.get("omp_num_threads")
    print(
        f"\ndaily_retrain over {data['symbols']} symbols, {data['when']}, {data['bars']} bars, "
        + (
            "the code location's models (LSTM included) and importance, "
            if data.get("settings") == "demo"
            else f"models {'+'.join(MODEL_TYPES)}, no LSTM, importance sample 250, "
        )
        + f"{len(backfills)} repetition(s), medians; {data['machine']}"
        + (f"; brain dev with OMP_NUM_THREADS={omp}" if omp else "")
    )
    code = data.get("code")
    if code:
        changed = len(code["changed_files"])
        print(f"code: {code['commit']} (+{changed} changed files), executor {code['executor']}")
    print(f"{'':36} | {'UI backfill (brain dev)':>24} | {'one in-process run':>20}")
    print("-" * 86)

    def line(label: str, left: str, right: str = "") -> None:
        print(f"{label:36} | {left:>24} | {right:>20}")

    def both(key: str, digits: int = 1) -> tuple[str, str]:
        right = f"{median_of(in_process, key):.{digits}f}" if in_process else "-"
        return f"{median_of(backfills, key):.{digits}f}", right

    def each(rows: list[dict[str, Any]], key: str) -> str:
        return " ".join(f"{float(r[key]):.0f}" for r in rows) or "-"

    line(
        "runs launched / succeeded",
        f"{median_of(backfills, 'runs_launched'):.0f} / "
        f"{median_of(backfills, 'runs_succeeded'):.0f}",
        f"1 / {median_of(in_process, 'success'):.0f}" if in_process else "-",
    )
    line("wall time (s)", *both("wall_s"))
    line("  each repetition (s)", each(backfills, "wall_s"), each(in_process, "wall_s"))
    line("compute: fit+predict+importance (s)", *both("compute_total_s"))
    busy = [b["cpu"]["mean_busy_cores"] for b in backfills]
    busy_in = [r["cpu"]["mean_busy_cores"] for r in in_process]
    line(
        "mean busy cores (of 2)",
        f"{statistics.median(busy):.2f}",
        f"{statistics.median(busy_in):.2f}" if busy_in else "-",
    )
    line("idle baseline busy cores (others)", *both("idle_baseline_busy_cores", 2))
    others = [b["cpu"].get("others_busy_cores_lower_bound") for b in backfills]
    others_in = [r["cpu"].get("others_busy_cores_lower_bound") for r in in_process]
    line(
        "others' busy cores during (>=)",
        f"{statistics.median(others):.2f}" if all(o is not None for o in others) else "-",
        f"{statistics.median(others_in):.2f}"
        if others_in and all(o is not None for o in others_in)
        else "-",
    )
    line("max runs at once", f"{median_of(backfills, 'max_concurrent_runs'):.0f}", "1")
    line("mean runs at once", f"{median_of(backfills, 'mean_concurrent_runs'):.2f}", "1")
    for label, key in (
        ("launch -> first run created (s)", "first_run_created_after_s"),
        ("launch -> first run started (s)", "first_run_started_after_s"),
        ("launch -> last run created (s)", "last_run_created_after_s"),
        ("per run: wall (s)", "median_run_wall_s"),
        ("per run: start -> first step (s)", "median_to_first_step_s"),
        ("per run: outside steps (s)", "median_run_outside_steps_s"),
        ("per run: wall - compute (s)", "overhead_per_run_s"),
        ("run end -> next run start (s)", "median_handoff_gap_s"),
        ("slot free -> next run launched (s)", "median_slot_free_to_launch_s"),
        ("worker boot: launched -> began (s)", "median_worker_boot_s"),
    ):
        if all(b.get(key) is not None for b in backfills):
            line(label, f"{median_of(backfills, key):.1f}")
    names = sorted({name for b in backfills for name in b["median_step_s"]})
    steps = {
        name: statistics.median(b["median_step_s"][name] for b in backfills)
        for name in names
        if all(name in b["median_step_s"] for b in backfills)
    }
    print(
        "per-step median wall (s), backfill runs: "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in steps.items())
    )
    startups = [b["brain_dev_startup"] for b in backfills]
    killed = [k for s in startups for k in s["stop"]["killed"]]
    print(
        "brain dev startup (s, median): "
        + ", ".join(
            f"{label} {statistics.median(float(s[key]) for s in startups):.1f}"
            for label, key in (
                ("symbols add", "symbols_add_s"),
                ("UI", "ui_s"),
                ("code location", "code_location_s"),
                ("daemons healthy", "daemons_healthy_s"),
            )
        )
        + f"; SIGTERM to exit (s): {' '.join(str(s['stop']['stopped_s']) for s in startups)}"
        + f"; killed after SIGTERM: {killed or 'none'}"
        + f"; embedded server stopped: {all(s['embedded_stopped'] for s in startups)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--bars", type=int, default=2000)
    parser.add_argument(
        "--skip-in-process", action="store_true", help="only the backfill under brain dev"
    )
    parser.add_argument(
        "--omp-threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for brain dev and its runs (results go to "
        "backfill_bench_omp<N>.json); default: unset, as a user runs it",
    )
    parser.add_argument(
        "--executor",
        choices=("in_process", "multiprocess"),
        default="in_process",
        help="BRAIN_EXECUTOR for brain dev's runs (results go to backfill_bench_<executor>.json)",
    )
    parser.add_argument(
        "--settings",
        choices=("fast", "demo"),
        default="fast",
        help="fast: ridge and boosting, importance on 250 rows; demo: the retrain's defaults",
    )
    parser.add_argument("--report", type=Path, help="print the table of a saved JSON and exit")
    parser.add_argument("--out", type=Path, help="results file instead of the default")
    args = parser.parse_args()
    if args.report:
        print_report(json.loads(args.report.read_text()))
        return
    SETTINGS["name"] = args.settings
    when = time.strftime("%Y-%m-%d %H:%M")
    code = {**provenance(), "executor": args.executor}
    extra_env = {"BRAIN_EXECUTOR": args.executor}
    if args.omp_threads is not None:
        extra_env["OMP_NUM_THREADS"] = str(args.omp_threads)
    backfills: list[dict[str, Any]] = []
    in_process: list[dict[str, Any]] = []
    results = args.out or RESULTS.with_name(f"backfill_bench_{args.executor}.json")
    if args.out is None and args.omp_threads is not None:
        results = RESULTS.with_name(f"backfill_bench_{args.executor}_omp{args.omp_threads}.json")
    results.parent.mkdir(exist_ok=True)
    data = {
        "machine": f"{platform.machine()} {platform.python_version()}, {os.cpu_count()} cores",
        "when": when,
        "symbols": args.symbols,
        "bars": args.bars,
        "repeats": args.repeats,
        "omp_num_threads": args.omp_threads,
        "code": code,
        "settings": args.settings,
        "run_config": fast_run_config(args.bars),
        "backfill": backfills,
        "in_process": in_process,
    }

    def stop_on_sigterm(signum: int, _frame: object) -> None:
        # A SIGTERM (the machine is shared) unwinds like an error: brain dev and the embedded
        # servers are stopped and the temporary folders removed by the finally blocks.
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    for i in range(args.repeats):
        backfill = one_backfill(args.symbols, args.bars, extra_env)
        backfills.append(backfill)
        print(
            f"  backfill {i + 1}/{args.repeats}: {backfill['runs_launched']} runs, "
            f"{backfill['wall_s']:.0f} s",
            flush=True,
        )
        if not args.skip_in_process:
            single = one_in_process(args.symbols, args.bars)
            in_process.append(single)
            print(f"  in-process {i + 1}/{args.repeats}: {single['wall_s']:.0f} s", flush=True)
        # Written after every repetition, so that an interrupted bench keeps what it measured.
        data["repeats_done"] = i + 1
        results.write_text(json.dumps(data, indent=2, default=str))
    print_report(data)
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
