"""Shared CLI plumbing: one-line errors with exit status 2, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


class InputError(Exception):
    """Bad user input: a file, a field, an option.  The message names where."""


def fail(message: str, code: int = 2) -> None:
    """Print ``lsfsim: error: <message>`` on one line to stderr and exit."""
    first_line = " ".join(str(message).split())
    print(f"lsfsim: error: {first_line}", file=sys.stderr)
    raise typer.Exit(code)


def one_line_errors(func: F) -> F:
    """Turn the project's input errors into one-line messages and exit 2."""
    from lsfsim.bpf.errors import CompileError, FilterError, ParseError

    expected = (InputError, ParseError, CompileError, FilterError, OSError, ValueError)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except BrokenPipeError:
            # the reader of our output went away (``... | head``): stop quietly
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except expected as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]
