"""Shared CLI plumbing: one-line errors with exit status 2 for bad input; a bug says so.

Bad input (the domain errors listed in ``one_line_errors``) gives one line,
``lsfsim: error: ...``, and exit status 2, no traceback.  Any other exception
is a bug in lsfsim, not the user's fault: it is reported as one, with its
traceback, and exit status 70 (EX_SOFTWARE).
"""

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


EX_SOFTWARE = 70   # sysexits.h: internal software error


def domain_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input: lsfsim's own, a scenario's validation,
    and OSError (a user's file that cannot be read or written)."""
    from pydantic import ValidationError

    from lsfsim.bpf.errors import CompileError, FilterError, ParseError
    from lsfsim.config.model import ModelError
    from lsfsim.errors import ScenarioError
    from lsfsim.pcapio import PcapError

    return (InputError, ParseError, CompileError, FilterError, ModelError, PcapError,
            ScenarioError, ValidationError, OSError)


def internal_error(exc: BaseException) -> None:
    """Report an unexpected exception as the bug it is (traceback, then one line), exit 70."""
    import traceback

    traceback.print_exception(exc, file=sys.stderr)
    first_line = " ".join(str(exc).split())
    print(f"lsfsim: internal error (this is a bug in lsfsim, please report it): "
          f"{type(exc).__name__}: {first_line}", file=sys.stderr)
    raise typer.Exit(EX_SOFTWARE)


def one_line_errors(func: F) -> F:
    """Bad input: one line and exit 2.  Anything else: reported as a bug, exit 70."""
    expected = domain_errors()

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
        except Exception as exc:
            internal_error(exc)

    return wrapper  # type: ignore[return-value]
