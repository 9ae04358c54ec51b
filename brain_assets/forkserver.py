"""The warm forkserver that run workers are forked from: what it imports, and its start.

Both ways runs are launched use it: ``brain retrain``/``brain demo`` (``cli.worker_pool``) and
the ``brain dev`` daemon's launcher (``defs.run_launcher``). It is Dagster-free and cheap to import
so that a command can start the forkserver before it imports anything else: the forkserver's
imports (about 4.5 s, TensorFlow's 2.5 s of it) are what a command's first run waits for, and
the command's own start (the embedded server, migrations, the Dagster instance) runs beside them.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
from pathlib import Path

from brain_assets.logs import log_dir_from_env
from brain_assets.lstm.network import lstm_extra_missing

PRELOAD = (
    "dagster",
    "brain_assets.pipeline.training",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "skops.io",
)
"""Imported once in the forkserver; TensorFlow joins them where the ``lstm`` extra is installed
(a core install has no TensorFlow to preload, see ``preload_modules``). Nothing here reads the
environment when imported (``brain_assets.definitions`` does, and costs 0.1 s a run): the
forkserver keeps the environment it started with, and `brain retrain`'s workers come from the same
forkserver when a process launches both."""
OPTIONAL_PRELOAD = ("tensorflow",)


def preload_modules() -> list[str]:
    """What the forkserver imports: ``PRELOAD``, and ``OPTIONAL_PRELOAD`` when TensorFlow and
    Keras are installed (looked up, not imported, in this process)."""
    return [*PRELOAD, *(OPTIONAL_PRELOAD if lstm_extra_missing() is None else ())]


def warm_context() -> multiprocessing.context.ForkServerContext:
    """The forkserver context, its preload set (it takes effect when the server starts)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload_modules())
    return context


def start_forkserver(stderr_to: str | os.PathLike[str] | None = None) -> None:
    """Start the forkserver now, unless it runs, with its stderr going to ``stderr_to``: the
    libraries it imports (TensorFlow's start-up lines) write to the native log, as a worker
    does, and not to the terminal."""
    from multiprocessing import forkserver

    warm_context()
    atexit.unregister(end_forkserver)
    atexit.register(end_forkserver)
    if stderr_to is None:
        forkserver.ensure_running()
        return
    saved = os.dup(2)
    sink = os.open(stderr_to, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        sys.stderr.flush()
        os.dup2(sink, 2)
        forkserver.ensure_running()  # the server copies this stderr when it starts
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(sink)


def warm_workers() -> Path:
    """Start the run workers' forkserver (it imports Dagster, scikit-learn and TensorFlow for a
    few seconds) while the command gets the database and the instance ready; returns the
    native log, where that import writes its messages."""
    native_log = log_dir_from_env() / "native-stderr.log"
    native_log.parent.mkdir(parents=True, exist_ok=True)
    start_forkserver(stderr_to=native_log)
    return native_log


def end_forkserver() -> None:
    """End the forkserver this process started, if it runs; at this process's exit.

    Left to itself the forkserver would leave once this process has, through Python's teardown
    of everything it imported: about 1.5 s of a core with TensorFlow, after the command is done,
    and holding the command's standard output open until then (a pipe reading it, as in
    ``brain demo | tee``, waited). It holds no state (its workers are processes of their own,
    ended by then), so SIGTERM ends it at once. It is not reaped here: multiprocessing reaps it,
    and starts another, should this process ask for a forkserver again."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if pid is None or multiprocessing.active_children():
        # Processes of this one still run: multiprocessing's own exit handler, after this one,
        # waits for them through the forkserver, which must outlive them.
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # already gone
        pass
