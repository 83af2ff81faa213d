"""`homelab logs --request ID`: reads the logs of `homelab up` and prints `requestlog.trace`."""

from __future__ import annotations

from collections.abc import Iterator

import click

from homelab.errors import InputError
from homelab.load.repo import Repo
from homelab.runtime import requestlog
from homelab.runtime.paths import RuntimePaths


def print_trace(repo: Repo, paths: RuntimePaths, name: str | None, rid: str) -> int:
    """Print the request's lines (0), or say that none were found (1). `name` narrows to one service."""
    if not requestlog.valid_id(rid):
        raise InputError.one("command line", f"--request {rid!r}: not a request id (letters, digits, '-_.:', "
                                             "at most 128; the x-request-id response header shows it)")
    if name is not None and name not in repo.services:
        raise InputError.one("command line", f"NAME {name}: no such service "
                                             f"(known: {', '.join(sorted(repo.services))})")
    services = [name] if name is not None else sorted(repo.services)

    def read(service: str) -> Iterator[str]:
        for path in requestlog.log_files(paths.logs, service):
            with open(path, "rb") as fh:
                for raw in fh:
                    yield raw.decode(errors="replace").rstrip("\n")

    found = requestlog.trace(services, rid, read)
    if not found:
        click.echo(f"no log line names request {rid} in {paths.logs.relative_to(repo.root)}/ (services log it as "
                   f"rid={rid}; under systemd: journalctl -o cat -u 'homelab-*' --grep 'rid={rid}')", err=True)
        return 1
    for line in found:
        click.echo(line.render())
    return 0
