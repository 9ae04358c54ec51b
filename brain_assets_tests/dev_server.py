"""Helpers for tests and benches that start `brain dev` and talk to its UI server over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def graphql(
    port: int, query: str, variables: dict[str, Any] | None = None, timeout: float = 60
) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    data: dict[str, Any] = answer["data"]
    return data


def server_answers(port: int) -> bool:
    """Whether the Dagster webserver on ``port`` answers yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
            return True
    except OSError:
        return False


def wait_for(predicate: Any, timeout: float, what: str, every: float = 1.0) -> Any:
    """``predicate()``'s first truthy value, asked every ``every`` seconds for ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def running_brain_dev(folder: Path, symbols: list[str]) -> Iterator[int]:
    """`brain dev` as a user starts it, on a new Brain under ``folder`` (embedded PostgreSQL, no
    DATABASE_DSN) with ``symbols`` added; yields the UI server's port once it answers. On exit it
    sends SIGTERM and checks that `brain dev` exited and left none of its processes running."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_DSN"}
    # The runs it launches train on generated bars: a deployment that chose them.
    env.update(
        BRAIN_HOME=str(folder / "home"),
        BRAIN_LOG_DIR=str(folder / "logs"),
        BRAIN_MARKET_SOURCE="synthetic",
    )
    brain = [sys.executable, "-m", "brain_assets.cli"]
    added = subprocess.run(
        [*brain, "symbols", "add", *symbols],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    port = free_port()
    server = subprocess.Popen(
        [*brain, "dev", "--port", str(port)],
        env=env,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    children: list[psutil.Process] = []
    try:
        wait_for(lambda: server_answers(port), 120, "the UI server")
        yield port
        children = psutil.Process(server.pid).children(recursive=True)
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert server.returncode is not None, output
    gone = psutil.wait_procs(children, timeout=30)[1]
    assert gone == [], f"left running: {[p.pid for p in gone]}"
    # The embedded server is no child of brain dev: it stops when the last process holding it
    # leaves, run workers included.
    postmaster = folder / "home" / "pgdata" / "postmaster.pid"
    wait_for(lambda: not postmaster.exists(), 30, "the embedded PostgreSQL to stop")
