"""`homelab new KIND NAME`: scaffold a service that passes `homelab check` immediately."""

from __future__ import annotations

from pathlib import Path

import click

from homelab.cli import input_errors_exit_2
from homelab.errors import InputError
from homelab.load.repo import load_repo
from homelab.render.plan import EXECUTABLE
from homelab.render.writer import write_all
from homelab.scaffold.plan import KINDS, NewService, plan_new


def _model(value: str) -> tuple[str, str]:
    public, sep, upstream = value.partition("=")
    if not sep or not public or not upstream:
        raise InputError.one("homelab new", f"--model: expected PUBLIC=UPSTREAM_ID, got {value!r}")
    return public.strip(), upstream.strip()


@click.command("new")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("name")
@click.option("--description", "-d", default="", help="One line: what the service is for.")
@click.option("--host", help="Mesh host it runs on (default: the only host, else the gateway's).")
@click.option("--layer", help="Layer folder (default by kind: inference, orchestration, tools, gateway).")
@click.option("--bind", default="127.0.0.1", show_default=True,
              help="Bind address; anything but loopback is LAN exposure and needs an approval.")
@click.option("--port", type=int, help="Port (default: the next one the ledger never allocated).")
@click.option("--approval", help="Existing LAN approval id (LAN-NNNN) for a LAN bind.")
@click.option("--approved-by", help="Record a new LAN approval: who approved it ...")
@click.option("--reason", help="... and why.")
@click.option("--model", "models", multiple=True, metavar="PUBLIC=UPSTREAM_ID",
              help="backend: a public model name and the id the backend knows it by (repeatable).")
@click.option("--approach", "approaches", multiple=True,
              help="optimizer: approach to expose for every backend model (repeatable; default moa).")
@click.option("--transport", type=click.Choice(["streamable-http", "stdio"]), default="streamable-http",
              show_default=True, help="mcp-tool: MCP transport.")
@click.option("--tool", "tools", multiple=True, help="mcp-tool: tool name (repeatable).")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, kind: str, name: str, models: tuple[str, ...], **opts: object) -> None:
    """Create layer-*/NAME with its contract, docs and uv project, allocate its port in the
    ledger, add its routing, and re-render every derived file. Writes nothing on error.

    \b
    Examples:
      homelab new backend jerry-box --model jerry-qwen=qwen2.5-7b-instruct
      homelab new mcp-tool notes --tool search_notes
      homelab new backend lan-box --bind 0.0.0.0 --approved-by alice --reason "GPU box"
    """
    req = NewService(kind=kind, name=name, models=[_model(m) for m in models],
                     approaches=list(opts.pop("approaches")), tools=list(opts.pop("tools")),
                     **opts)  # type: ignore[arg-type]
    files = plan_new(load_repo(root), req)
    written = write_all(root, files, EXECUTABLE)
    spec = next(p for p in written if p.endswith("SERVICE_SPEC.md"))
    click.echo(f"created {spec.rsplit('/', 1)[0]}/ ({len(written)} files written)")
    click.echo("next: fill in the TODOs, then `uv run homelab check`")
