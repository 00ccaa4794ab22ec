"""Progress reporting for long steps: a rich bar in terminals, nothing in tests."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class NullProgress:
    def start(self, description: str, total: int) -> None: ...

    def advance(self, info: str = "") -> None: ...

    def stop(self) -> None: ...

    def log(self, message: str) -> None: ...


class RichProgress(NullProgress):
    """One live bar at a time, erased when its step ends; lines logged meanwhile stay above it.

    Every start after a stop gets a fresh rich ``Progress``: re-starting a stopped one would keep its
    finished tasks (bars piling up) and its old height, so that erasing the bar took lines printed in
    between with it (the student's epochs, the cache line).
    """

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task = None

    def _new(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=True,
        )

    def start(self, description: str, total: int) -> None:
        if self._progress is None:
            self._progress = self._new()
            self._progress.start()
            self._task = self._progress.add_task(description, total=total, info="")
        else:
            self._progress.reset(self._task, total=total, description=description, info="")

    def advance(self, info: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, info=info)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress, self._task = None, None

    def log(self, message: str) -> None:
        self.console.print(message, highlight=False)
