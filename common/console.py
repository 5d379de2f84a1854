"""Progress bars, warnings and the one-line summaries every long step ends with.

Everything goes to stderr so that stdout stays machine-readable (``evaluate`` prints JSON there).
"""
from __future__ import annotations

import contextlib
import logging
import time
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class ConsoleHandler(logging.Handler):
    """Shows log records on stderr the command line's way: warnings (and worse) as
    ``warning: …`` in yellow, the rest as plain lines. Library code only logs; the command line
    attaches this handler."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not stop the run
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING:
            stderr.print(f"[yellow]warning:[/yellow] {escape(message)}")
        else:
            stderr.print(message, markup=False)


def show_logs(names: Iterable[str], level: int = logging.INFO) -> None:
    """Show the records of the named loggers (and their children) on stderr through
    :class:`ConsoleHandler`; calling it again adds no second handler."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(h, ConsoleHandler) for h in logger.handlers):
            logger.addHandler(ConsoleHandler())
        logger.setLevel(level)


def summary(message: str) -> None:
    stderr.print(f"[bold]{message}[/bold]")


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """A progress bar over ``items`` that stays quiet when stderr is not a terminal."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=stderr, transient=True,
                        disable=not stderr.is_terminal)
    with progress:
        yield from progress.track(items, total=total, description=description)


class Timer:
    """Collects wall-clock seconds per named step, for the ``seconds`` entries of the reports."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)

    @property
    def total(self) -> float:
        return round(sum(self.seconds.values()), 3)
