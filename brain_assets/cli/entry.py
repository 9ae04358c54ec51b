"""The ``brain`` console script around :func:`brain_assets.cli.main.main`: how a command starts
and how it ends, both cut to what the command needs.

It starts: a command that trains through run workers (``demo``, ``retrain``) has their
forkserver started before anything else is imported. The forkserver's own imports (about 4.5 s,
TensorFlow's 2.5 s of it) are what the first runs wait for, so the 0.3 s the command's modules
take to import would otherwise be added to them.

It ends: see :func:`leave`.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

RUN_WORKER_COMMANDS = frozenset({"demo", "retrain"})


def entry() -> NoReturn:
    """``brain``: the forkserver started early where the command needs it, :func:`main`, then
    :func:`leave` with its status."""
    if _starts_run_workers(sys.argv[1:]):
        from brain_assets.forkserver import warm_workers

        warm_workers()
    from brain_assets.cli.main import main

    leave(main())


def _starts_run_workers(argv: list[str]) -> bool:
    words = [word for word in argv if not word.startswith("-")]
    asks_for_help = any(word in ("-h", "--help", "--version") for word in argv)
    return bool(words) and words[0] in RUN_WORKER_COMMANDS and not asks_for_help


def leave(status: int) -> NoReturn:
    """End the process as ``sys.exit(status)`` would, without Python's teardown of its modules.

    With Dagster, pandas and SQLAlchemy imported, that teardown costs a command 0.3 to 1.1 s of
    one core after its work is done (1.1 s after `brain demo`), which the user waits through for
    nothing. What must happen at exit still happens, in the interpreter's order: threads that
    are not daemons are waited for, the exit handlers run (the embedded server's handle is given
    back, the logs flushed, multiprocessing's children joined), then the standard streams are
    flushed. Where the interpreter has no ``atexit._run_exitfuncs`` this is ``sys.exit``."""
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:
        sys.exit(status)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to deliver
            pass
    os._exit(status)
