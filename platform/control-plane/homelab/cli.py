"""`homelab`: the control plane's command line. Thin: parsing, printing, exit codes.

Exit codes: 0 clean, 1 violations / something down, 2 unusable input.
"""

from __future__ import annotations

from pathlib import Path

import click


def repo_root() -> Path:
    """The checkout: $HOMELAB_REPO, else the nearest parent holding mesh/mesh.yaml."""
    import os

    if env := os.environ.get("HOMELAB_REPO"):
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for cand in (here, *here.parents):
        if (cand / "mesh" / "mesh.yaml").is_file():
            return cand
    return here


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Mesh checkout (default: $HOMELAB_REPO or the nearest parent with mesh/mesh.yaml).")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None) -> None:
    """homelab-llm control plane.

    \b
    Examples:
      homelab check                 # every rule; exit 1 on violations
      homelab render                # rewrite every derived file from the contracts
      homelab new backend jerry-box -d "Qwen box" --model jerry-qwen=qwen2.5-7b
      homelab rm jerry-box          # folder, derived files, wiring; ports retired
      homelab port move ov-server   # retire a port, allocate a new one
      homelab up / status / down    # run the mesh on this machine
      homelab restart NAME          # also start / stop NAME
      homelab top                   # live view: health, req/s, tok/s, latency, queue, KV
      homelab bundle --host gpu-box --out /tmp/gpu-box   # deploy bundle for one host
      homelab models add jerry-smol --from ./model.gguf  # land, check, register, route a model
    """
    ctx.obj = (repo or repo_root()).resolve()


def _register() -> None:
    from homelab.commands import (bundle_cmd, check_cmd, models_cmd, new_cmd, port_cmd, render_cmd,
                                  rm_cmd, run_cmd, test_cmd, top_cmd)

    for mod in (check_cmd, render_cmd, new_cmd, rm_cmd, port_cmd, bundle_cmd, test_cmd, models_cmd):
        cli.add_command(mod.command)
    for command in run_cmd.COMMANDS:
        cli.add_command(command)
    cli.add_command(top_cmd.command, name="top")


def main() -> None:
    _register()
    cli(prog_name="homelab")
