"""Plan one host's deploy bundle (pure): loaded Repo + host name -> every file, where it installs.

Layout of a bundle (everything relative to the bundle directory):

    install.sh                      idempotent installer (--dry-run, --root DIR / $DESTDIR)
    MANIFEST.txt, MANIFEST.json     what is here, for which host, and where each file goes
    SHA256SUMS                      install.sh refuses a bundle whose files were changed
    systemd/<unit>                  -> /etc/systemd/system/<unit>           (replaced)
    env/<name>.example              -> the env file the contract names      (only when absent)
    config/router.yaml              -> the gateway's router.yaml            (gateway host only)
    mesh/view.json                  -> <install_dir>/mesh/view.json         (HOMELAB_MESH_VIEW)
    scripts/healthcheck.sh          -> /usr/local/lib/homelab-llm/          (this host's probes)
    scripts/restart-all.sh          -> /usr/local/lib/homelab-llm/          (this host's units)
"""

from __future__ import annotations

import hashlib
from graphlib import CycleError
from pathlib import PurePosixPath

from homelab.deploy import install_script, manifest
from homelab.deploy.model import (
    INSTALL_SH,
    MANIFEST_JSON,
    MANIFEST_TXT,
    SCRIPT_DIR,
    SUMS,
    UNIT_DIR,
    Entry,
    Plan,
    SharedSecret,
)
from homelab.deploy.scope import host_view, require_host
from homelab.errors import InputError
from homelab.load.repo import Repo, Service
from homelab.ordering import start_order
from homelab.render import env_templates, router, scripts, systemd, view as mesh_view


def _units(repo: Repo, host: str) -> list[Entry]:
    by_unit = {s.spec.systemd.unit: s for s in repo.services.values() if s.spec.systemd}
    out = []
    for rel, text in sorted(systemd.render_units(repo, host).items()):
        name = PurePosixPath(rel).name
        out.append(Entry(f"systemd/{name}", text, "unit", f"{UNIT_DIR}/{name}", 0o644,
                         source=f"{by_unit[name].rel_dir}/SERVICE_SPEC.md"))
    return out


def _installed_env_path(repo: Repo, svc: Service, file: str) -> str:
    if file.startswith("/"):
        return file
    return str(PurePosixPath(repo.mesh.install_dir) / svc.rel_dir / file)


def _env(repo: Repo, view: Repo) -> list[Entry]:
    """Env templates listing only this host's variables, installed where the units read them."""
    where: dict[str, tuple[str, str]] = {}  # template rel -> (installed path, owning user)
    for svc in sorted(view.services.values(), key=lambda s: s.name):
        user = svc.spec.systemd.user if svc.spec.systemd else ""
        for var in svc.spec.env:
            where.setdefault(env_templates.template_path(svc, var.file),
                             (_installed_env_path(repo, svc, var.file), user))
    out = []
    for rel, text in sorted(env_templates.render_env_templates(view).items()):
        dest, user = where[rel]
        name = (PurePosixPath(rel).name if rel.startswith(env_templates.OPS_ENV_DIR + "/")
                else rel)  # a service-relative template keeps its folder: env/layer-x/svc/...
        out.append(Entry(f"env/{name}", text, "env-template", dest, 0o640, "keep", user,
                         source="env vars of this host's SERVICE_SPEC.md files"))
    return out


def _router(repo: Repo, host: str, router_current: str | None) -> list[Entry]:
    gateway = repo.services.get(repo.mesh.gateway.service)
    if gateway is None or gateway.spec.host != host:
        return []
    rel = router.router_path(repo)
    dest = str(PurePosixPath(repo.mesh.install_dir) / rel)
    return [Entry("config/router.yaml", router.render_router(repo, router_current), "router", dest,
                  0o644, source=f"{rel} (model_list from every backend/optimizer contract)")]


def _view(repo: Repo) -> list[Entry]:
    """The mesh view every unit points HOMELAB_MESH_VIEW at (the whole mesh: clients on this host
    must know the addresses on every host they must never call)."""
    return [Entry(mesh_view.VIEW, mesh_view.render_view(repo), "view",
                  systemd.view_path(repo), 0o644, source=f"{mesh_view.VIEW} (every contract)")]


def _scripts(view: Repo) -> list[Entry]:
    return [
        Entry("scripts/healthcheck.sh", scripts.render_healthcheck(view), "script",
              f"{SCRIPT_DIR}/healthcheck.sh", 0o755, source=scripts.HEALTHCHECK),
        Entry("scripts/restart-all.sh", scripts.render_restart_all(view), "script",
              f"{SCRIPT_DIR}/restart-all.sh", 0o755, source=scripts.RESTART_ALL),
    ]


def _shared_secrets(repo: Repo, host: str) -> list[SharedSecret]:
    """Same secret name on two hosts = one value: e.g. the gateway's OV_SERVER_API_KEY is the
    key the ov-server on the inference host expects."""
    out: list[SharedSecret] = []
    mine = [(s, v) for s in repo.services.values() if s.spec.host == host for v in s.spec.env if v.secret]
    for svc, var in sorted(mine, key=lambda sv: (sv[1].name, sv[0].name)):
        for peer in sorted(repo.services.values(), key=lambda s: s.name):
            if peer.spec.host == host:
                continue
            for pvar in peer.spec.env:
                if pvar.secret and pvar.name == var.name:
                    found = SharedSecret(var.name, _installed_env_path(repo, svc, var.file),
                                         peer.spec.host, peer.name,
                                         _installed_env_path(repo, peer, pvar.file))
                    if found not in out:
                        out.append(found)
    return out


def plan_bundle(repo: Repo, host: str, router_current: str | None = None) -> Plan:
    """Everything one host needs. `router_current` is the gateway's router.yaml as it is now
    (its hand-tuned keys are preserved), or None for the default skeleton."""
    require_host(repo, host)
    view = host_view(repo, host)
    try:  # before anything else: the restart script needs the same order
        ordered = start_order(list(view.services.values()))
    except CycleError as exc:
        raise InputError.one("run.after", "services start after each other in a loop: "
                                          f"{' -> '.join(exc.args[1])}") from None
    entries = [*_units(repo, host), *_env(repo, view), *_router(repo, host, router_current),
               *_view(repo), *_scripts(view)]
    host_obj = next(h for h in repo.mesh.hosts if h.name == host)
    return Plan(host_obj, repo.mesh.name, repo.mesh.install_dir, ordered, entries,
                _shared_secrets(repo, host))


def bundle_files(plan: Plan) -> tuple[dict[str, str], set[str]]:
    """The bundle as {relative path: content} plus the paths to mark executable."""
    files = {e.path: e.content for e in plan.entries}
    files[INSTALL_SH] = install_script.render_install(plan)
    files[SUMS] = "".join(f"{hashlib.sha256(files[p].encode()).hexdigest()}  {p}\n"
                          for p in sorted(files))
    files[MANIFEST_TXT] = manifest.render_text(plan, files)
    files[MANIFEST_JSON] = manifest.render_json(plan, files)
    executable = {e.path for e in plan.entries if e.mode & 0o111} | {INSTALL_SH}
    return files, executable
