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
    nothing. What must happen at exit still happens, in the interpreter's own order: its
    shutdown of threads (idle thread pools told to stop, then every thread that is not a daemon
    waited for), the exit handlers (the embedded server's handle given back, the logs flushed,
    the forkserver ended), then the standard streams flushed; a flush that fails, other than on
    a closed pipe, is reported and turns a success into status 120, as the interpreter does.
    Where the interpreter lacks the two functions used here this is ``sys.exit``."""
    shut_threads_down = getattr(threading, "_shutdown", None)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if shut_threads_down is None or run_exit_handlers is None:
        sys.exit(status)
    shut_threads_down()
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader gone, or a closed stream
            pass
        except OSError as error:  # a full disk under `brain ... --json > file`
            os.write(2, f"brain: the output could not be written: {error}\n".encode())
            status = status or 120
    os._exit(status)
