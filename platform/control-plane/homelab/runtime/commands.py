"""Runtime commands (up, down, status, logs, health): being written; see issue 6."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
