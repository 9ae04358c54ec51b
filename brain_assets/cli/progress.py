"""Progress of long work: a rich progress bar on stderr when it is a terminal, else nothing here
(the commands print their plain progress lines, which logs, CI and tests read)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def stderr_is_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()


class Bar:
    """A running bar (see progress_bar); safe to drive from another thread."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, note: str = "", *, total: int | None = None) -> None:
        """One more unit done; ``note`` says which (``total``: a new count of units)."""
        self._progress.update(self._task, advance=1, note=note, total=total)

    def note(self, note: str) -> None:
        """What the work is doing now, without a unit done."""
        self._progress.update(self._task, note=note)

    def finish(self) -> None:
        """Every unit done (some may have ended without saying so, as a run whose worker died)."""
        task = next(task for task in self._progress.tasks if task.id == self._task)
        self._progress.update(self._task, completed=task.total)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Bar | None]:
    """A bar of ``total`` units on stderr while the block runs when stderr is a terminal, else
    None: then the caller's plain lines are the progress. What the block prints to stdout shows
    above the bar when stdout is that terminal too, and goes where stdout goes otherwise."""
    if not stderr_is_terminal():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}", markup=False),
        console=Console(stderr=True),
        redirect_stdout=sys.stdout is not None and sys.stdout.isatty(),
    )
    task = progress.add_task(description, total=total, note="")
    with progress:
        yield Bar(progress, task)
