"""`homelab new KIND NAME`: scaffold a working service that passes `homelab check` at once."""

from __future__ import annotations

from pathlib import Path

import click

from homelab.commands.exits import input_errors_exit_2
from homelab.errors import InputError
from homelab.load.repo import load_repo
from homelab.render.plan import EXECUTABLE
from homelab.render.writer import write_all
from homelab.scaffold.external import plan_external
from homelab.scaffold.new import KINDS, NewService, plan_new


def _model(value: str, *, external: bool = False) -> tuple[str, str]:
    public, sep, upstream = value.partition("=")
    if external and not sep:
        return value.strip(), value.strip()  # the server knows it by its public name
    if not sep or not public or not upstream:
        raise InputError.one("homelab new", f"--model: expected PUBLIC=UPSTREAM_ID, got {value!r}")
    return public.strip(), upstream.strip()


@click.command("new")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("name")
@click.option("--description", "-d", default="", help="One line: what the service does (required).")
@click.option("--host", help="Mesh host it runs on (default: the only host, else the gateway's).")
@click.option("--layer", help="Layer folder (default by kind: inference, orchestration, tools, gateway).")
@click.option("--bind", default="127.0.0.1", show_default=True,
              help="Bind address; anything but loopback is LAN exposure and needs an approval.")
@click.option("--port", type=int,
              help="Port (default: the next one of the kind's block the ledger never allocated).")
@click.option("--approval", help="Existing LAN approval id (LAN-NNNN) for a LAN bind.")
@click.option("--approved-by", help="Record a new LAN approval: who asks for it ...")
@click.option("--reviewer", help="... who reviewed it (not the requester, not you) ...")
@click.option("--reason", help="... and why.")
@click.option("--model", "models", multiple=True, metavar="PUBLIC=UPSTREAM_ID",
              help="backend: a public model name and the id the backend knows it by (repeatable).")
@click.option("--fallback", "fallbacks", multiple=True, metavar="NAME",
              help="backend: a public model name the gateway tries when this backend fails "
                   "(repeatable, in order).")
@click.option("--gateway-auth", is_flag=True,
              help="backend/optimizer: the gateway sends a key (a new secret, declared in both "
                   "contracts; `homelab up` generates it).")
@click.option("--approach", "approaches", multiple=True,
              help="optimizer: approach to expose for every backend model (repeatable; default moa).")
@click.option("--transport", type=click.Choice(["streamable-http", "stdio"]), default="streamable-http",
              show_default=True, help="mcp-tool: how the mesh reaches it (the server speaks both).")
@click.option("--tool", "tools", multiple=True, help="mcp-tool: tool name (repeatable).")
@click.option("--external", "external_url", metavar="URL",
              help="backend: a server the mesh does not run (Ollama, llama-server, vLLM, LM Studio, "
                   "MLX...) at http://ADDRESS:PORT[/v1], ADDRESS a host of mesh/mesh.yaml; writes "
                   "the contract and docs only. --model may then be PUBLIC (same upstream id).")
@click.option("--health-path", default="/health", show_default=True,
              help="external: the path that answers 200 when it is up (Ollama: /).")
@click.option("--health-body", default="",
              help="external: text its health answer must contain (e.g. 'Ollama is running').")
@click.option("--managed-by", default="",
              help="external: who or what runs it (shown when it is down), e.g. 'Ollama on the Mac'.")
@click.pass_obj
@input_errors_exit_2
def command(root: Path, kind: str, name: str, models: tuple[str, ...], external_url: str | None,
            health_path: str, health_body: str, managed_by: str, **opts: object) -> None:
    """Create layer-*/NAME: its contract, docs, a working server with its test and a locked uv
    project; allocate its port in the ledger; wire it into the contracts that depend on it; and
    re-render every derived file. Writes nothing on error.

    \b
    Examples:
      homelab new backend jerry-box -d "Qwen on the Intel box" --model jerry-qwen=qwen2.5-7b-instruct \\
          --fallback jerry-tiny --gateway-auth
      homelab new mcp-tool notes -d "Search my notes" --tool search_notes
      homelab new optimizer think-proxy -d "Best-of-n behind the gateway" --approach bon
      homelab new client my-agent -d "Answers questions from the terminal"
      homelab new backend lan-box -d "GPU box" --bind 0.0.0.0 --approved-by alice --reviewer bob \\
          --reason "serves the LAN"
      homelab new backend ollama-mac --external http://192.168.1.20:11434/v1 --health-path / \\
          --model jerry-llama=llama3.2:1b --managed-by "Ollama on the Mac" --approved-by alice \\
          --reviewer bob --reason "the Mac serves the LAN"
    """
    external = external_url is not None
    if not external:
        for option, value, default in (("--health-path", health_path, "/health"),
                                       ("--health-body", health_body, ""),
                                       ("--managed-by", managed_by, "")):
            if value != default:
                raise InputError.one("homelab new", f"{option}: only with --external URL")
    req = NewService(kind=kind, name=name, models=[_model(m, external=external) for m in models],
                     fallbacks=list(opts.pop("fallbacks")), approaches=list(opts.pop("approaches")),
                     tools=list(opts.pop("tools")), **opts)  # type: ignore[arg-type]
    if external:
        files = plan_external(load_repo(root), req, external_url, health_path=health_path,
                              health_body=health_body, managed_by=managed_by)
    else:
        files = plan_new(load_repo(root), req)
    written = write_all(root, files, EXECUTABLE)
    spec = next(p for p in written if p.endswith(f"/{name}/SERVICE_SPEC.md"))
    folder = spec.rsplit("/", 1)[0]
    others = sorted(p for p in written if not p.startswith(folder + "/"))
    click.echo(f"created {folder}/ ({len(written) - len(others)} files); updated {len(others)} "
               f"derived or dependent files")
    if external:
        click.echo("next: uv run homelab check && uv run homelab up (it waits for the server, "
                   "never starts it)")
    else:
        click.echo(f"next: uv run homelab check && ./homelab test {name} && uv run homelab up")
