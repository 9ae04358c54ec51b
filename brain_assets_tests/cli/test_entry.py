"""The ``brain`` console script's start and end (cli.entry): the forkserver started first for
the commands that train, and an exit that skips the modules' teardown but nothing else."""

from __future__ import annotations

import subprocess
import sys

import pytest

from brain_assets.cli.entry import _starts_run_workers
from brain_assets_tests.store.test_embedded_server import wait_until_gone

LEAVES = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from brain_assets.cli.entry import leave

# An executor never shut down: its idle worker is told to stop at exit, as sys.exit would.
ThreadPoolExecutor(1).submit(time.sleep, 0).result()

def late():
    time.sleep(0.3)
    print("thread finished", flush=True)

atexit.register(lambda: print("exit handler ran"))
threading.Thread(target=late).start()
sys.stdout.write("written without a newline; ")
leave(3)
"""


def test_leave_waits_for_threads_runs_exit_handlers_and_flushes() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LEAVES], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.index("thread finished") < done.stdout.index("exit handler ran")
    assert "written without a newline; " in done.stdout


@pytest.mark.parametrize(
    ("argv", "starts"),
    [
        (["demo"], True),
        (["-v", "retrain", "BTC/USDT"], True),
        (["demo", "--help"], False),
        (["--version"], False),
        (["status"], False),
        (["models", "demo"], False),
        ([], False),
    ],
)
def test_the_forkserver_starts_first_only_for_commands_that_train(
    argv: list[str], starts: bool
) -> None:
    assert _starts_run_workers(argv) is starts


STARTS_A_FORKSERVER = """
from multiprocessing import forkserver
from brain_assets.forkserver import start_forkserver
start_forkserver()
print(forkserver._forkserver._forkserver_pid, flush=True)
"""


def test_a_command_ends_its_forkserver_as_it_ends() -> None:
    # Left to itself the forkserver would outlive the command by the rest of its import
    # (seconds: Dagster, scikit-learn, TensorFlow) and its teardown, holding stdout open. The
    # output is read only up to the pid: reading to its end would wait for the forkserver.
    command = subprocess.Popen(
        [sys.executable, "-c", STARTS_A_FORKSERVER], stdout=subprocess.PIPE, text=True
    )
    assert command.stdout is not None
    with command:
        pid = int(command.stdout.readline())
        assert command.wait(timeout=120) == 0
        assert wait_until_gone(pid, timeout=1.0), "the forkserver outlived the command"
