"""Shared CLI plumbing: one-line errors with exit status 2, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


class InputError(Exception):
    """Bad user input: a file, a field, an option.  The message names where."""


def check_input_file(path: str, option: str, regular: bool = True) -> None:
    """An input file must exist, not be a directory and, when ``regular``, be a regular
    file: a capture is read twice (counting records, then replaying them), which a
    FIFO or a device cannot do."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{option}: {path}: no such file")
    if p.is_dir():
        raise InputError(f"{option}: {path}: is a directory")
    if regular and not p.is_file():
        raise InputError(f"{option}: {path}: not a regular file")


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
