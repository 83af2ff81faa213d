"""How a command's failures become exit codes: shared by every command module.

Its own module (not cli.py) so that cli.py can import the commands without the commands
importing cli.py back.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from homelab.errors import InputError


def input_errors_exit_2(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Unusable input is reported as file:line: message lines, exit 2, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(2)

    return wrapper
