"""systemd units, one per service that declares `systemd`, for its host's install directory."""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath

from homelab.contract.service import expand
from homelab.load.repo import Repo, Service
from homelab.render.header import banner

SYSTEMD_DIR = "platform/ops/systemd"
STATE_DIR = "/var/lib/homelab-llm"


def view_path(repo: Repo) -> str:
    """Where an installed host keeps the mesh view (its checkout's mesh/view.json)."""
    return f"{repo.mesh.install_dir}/mesh/view.json"


def unit_path(svc: Service) -> str:
    assert svc.spec.systemd is not None
    return f"{SYSTEMD_DIR}/{svc.spec.systemd.unit}"


def placeholders(repo: Repo, svc: Service, service_dir: str, repo_dir: str) -> dict[str, str]:
    """Values of the contract's placeholders for an install whose checkout is `repo_dir`."""
    spec = svc.spec
    return {"bind": spec.bind or "", "port": str(spec.port or ""), "service_dir": service_dir,
            "repo": repo_dir, "host_address": repo.host_address(spec.host) or ""}


def command_args(repo: Repo, svc: Service, service_dir: str, repo_dir: str,
                 command: list[str] | None = None) -> list[str]:
    """`command` (default: the run command) with the contract's placeholders filled in."""
    values = placeholders(repo, svc, service_dir, repo_dir)
    return [expand(arg, values) for arg in (command or svc.spec.run.command)]


def _env_files(svc: Service, service_dir: str) -> list[str]:
    files: list[str] = []
    for file in [svc.spec.env_file, *(v.file for v in svc.spec.env)]:
        if file:
            path = file if file.startswith("/") else str(PurePosixPath(service_dir) / file)
            if path not in files:
                files.append(path)
    return files


def render_unit(repo: Repo, svc: Service) -> str:
    spec = svc.spec
    assert spec.systemd is not None
    install = repo.mesh.install_dir
    service_dir = f"{install}/{svc.rel_dir}"
    workdir = str(PurePosixPath(service_dir) / spec.run.workdir) if spec.run.workdir != "." else service_dir
    after_units = [repo.services[d].spec.systemd.unit for d in spec.run.after
                   if d in repo.services and repo.services[d].spec.systemd
                   and repo.services[d].spec.host == spec.host]
    args = command_args(repo, svc, service_dir, install)
    lines = [
        banner(f"{svc.rel_dir}/SERVICE_SPEC.md").rstrip("\n"),
        "[Unit]",
        f"Description=homelab-llm {spec.name} ({spec.kind}): {spec.description}",
        f"Documentation=file://{service_dir}/SERVICE_SPEC.md",
        "After=network-online.target" + "".join(f" {u}" for u in after_units),
        "Wants=network-online.target" + "".join(f" {u}" for u in after_units),
        "StartLimitIntervalSec=300",
        "StartLimitBurst=10",
        "",
        "[Service]",
        "Type=exec",
        f"User={spec.systemd.user}",
        f"Group={spec.systemd.user}",
        f"WorkingDirectory={workdir}",
        *[f"EnvironmentFile=-{f}" for f in _env_files(svc, service_dir)],
        *([f"UnsetEnvironment={' '.join(spec.systemd.unset_env)}"] if spec.systemd.unset_env else []),
        # Environments are synced at install time; a deployed service never reaches for the network.
        "Environment=UV_PYTHON_DOWNLOADS=never UV_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True DO_NOT_TRACK=1",
        f"Environment=HOME={STATE_DIR}/{spec.name} XDG_CACHE_HOME={STATE_DIR}/{spec.name}/cache",
        # The one reading of the mesh (meshkit.view), installed by the bundle.
        f"Environment=HOMELAB_MESH_VIEW={view_path(repo)}",
        # `env` resolves uv on PATH and relative scripts against WorkingDirectory.
        *["ExecStartPre=/usr/bin/env " + shlex.join(command_args(repo, svc, service_dir, install, cmd))
          for cmd in spec.run.prepare],
        "ExecStart=/usr/bin/env " + shlex.join(args),
        "Restart=on-failure",
        "RestartSec=2",
        "TimeoutStopSec=20",
        "KillMode=control-group",
        f"StateDirectory=homelab-llm/{spec.name}",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectSystem=full",
        "ProtectKernelTunables=yes",
        "ProtectControlGroups=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        # An optimizer is loopback-only by policy (HL302); the kernel enforces it too.
        *(["IPAddressDeny=any", "IPAddressAllow=localhost"] if spec.kind == "optimizer" else []),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def render_units(repo: Repo, host: str | None = None) -> dict[str, str]:
    return {unit_path(s): render_unit(repo, s) for s in repo.services.values()
            if s.spec.systemd and (host is None or s.spec.host == host)}
