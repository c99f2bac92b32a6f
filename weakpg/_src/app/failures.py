"""How a command fails: one line on stderr, exit status 2, and signals handled as Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import Any

import typer

from weakpg._src.errors import NonFiniteError


def fail(message: str) -> typer.Exit:
    """Print one line to stderr and return the exit to raise (status 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


_SIGNALLED: list[str] = []  # the signals received, for check_interrupted


def _interrupt(signum: int, _frame: Any) -> None:
    """SIGINT and SIGTERM: an exception, so every clean-up runs.

    Python may run a handler inside a callback that swallows exceptions (the garbage
    collector's); the signal is recorded, ``_unraisable`` keeps quiet about it, and the
    next ``check_interrupted`` raises it again.
    """
    _SIGNALLED.append(signal.Signals(signum).name)
    raise KeyboardInterrupt(_SIGNALLED[-1])


def _unraisable(hook: Any) -> None:
    if not (isinstance(hook.exc_value, KeyboardInterrupt) and _SIGNALLED):
        sys.__unraisablehook__(hook)


def check_interrupted() -> None:
    """Raise the interrupt of a signal that an exception-swallowing callback received."""
    if _SIGNALLED:
        raise KeyboardInterrupt(_SIGNALLED[0])


def progress(line: str) -> None:
    """A progress line to stderr; also where a swallowed interrupt surfaces."""
    check_interrupted()
    typer.echo(line, err=True)


EXPECTED = (KeyboardInterrupt, ValueError, OSError, NonFiniteError)  # what a command reports in one line


def message(error: BaseException, interrupted: str) -> str:
    """The line of a failure; for an interrupt, which signal and ``interrupted`` (what was kept)."""
    if isinstance(error, KeyboardInterrupt):
        return f"interrupted by {error or 'SIGINT'}; {interrupted}"
    return str(error)


@contextlib.contextmanager
def one_line_errors(interrupted: str = "nothing was written") -> Iterator[None]:
    """Every failure a command expects, and an interrupt, as one line and exit status 2."""
    try:
        yield
    except EXPECTED as error:
        raise fail(message(error, interrupted)) from None


def handle_signals() -> None:
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` (see ``_interrupt``) from now on."""
    _SIGNALLED.clear()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    sys.unraisablehook = _unraisable
