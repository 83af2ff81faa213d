"""Tables inside hand-written docs, between explicit markers; prose around them is preserved."""

from __future__ import annotations

import re

from homelab.contract.service import ServiceSpec
from homelab.errors import InputError
from homelab.load.repo import Repo, Service
from homelab.routing import Route, routes

TOPOLOGY = "docs/foundation/topology.md"
DOSSIER = "docs/PLATFORM_DOSSIER.md"


def begin(section: str) -> str:
    return f"<!-- BEGIN GENERATED: {section} (uv run homelab render; do not edit) -->"


def end(section: str) -> str:
    return f"<!-- END GENERATED: {section} -->"


def table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda c: c.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def hosts_table(repo: Repo) -> str:
    return table(["host", "address", "role"], [[h.name, h.address, h.role] for h in repo.mesh.hosts])


def kind_label(spec: ServiceSpec) -> str:
    """The kind as the tables show it: an external backend says so (the mesh does not run it)."""
    return f"{spec.kind} (external)" if spec.is_external else spec.kind


def services_table(repo: Repo) -> str:
    rows = []
    for s in sorted(repo.services.values(), key=lambda s: (s.spec.layer, s.name)):
        sp = s.spec
        rows.append([sp.name, kind_label(sp), s.rel_dir, sp.host, sp.bind or "-", str(sp.port or "-"),
                     sp.exposure + (f" ({sp.approval})" if sp.approval else ""),
                     sp.health.path if sp.health else "-", ", ".join(sp.upstreams) or "-"])
    return table(["service", "kind", "folder", "host", "bind", "port", "exposure", "health", "calls"],
                  rows)


def routes_table(repo: Repo) -> str:
    rows = []
    for r in routes(repo):
        via = f"{r.service.name} -> gateway -> {r.target}" if r.is_alias else r.service.name
        rows.append([r.name, "alias" if r.is_alias else "model", via, r.upstream_model,
                     ", ".join(r.fallbacks) or "-"])
    return table(["public name", "type", "served by", "upstream id", "fallbacks"], rows)


def ports_table(repo: Repo) -> str:
    rows = [[p.host, str(p.port), p.service, p.status, str(p.since)]
            for p in sorted(repo.ports.ports, key=lambda p: (p.host, p.port))]
    return table(["host", "port", "service", "status", "since"], rows)


def dossier_table(repo: Repo) -> str:
    rows = []
    for s in sorted(repo.services.values(), key=lambda s: (s.spec.layer, s.name)):
        sp = s.spec
        what = ", ".join(m.name for m in sp.models) or ", ".join(a.name for a in sp.aliases) \
            or (", ".join(t.name for t in sp.mcp.tools) if sp.mcp else "-")
        unit = sp.systemd.unit if sp.systemd else "-"
        if sp.external:
            unit = f"none: run by {sp.external.managed_by}"
        rows.append([f"[{sp.name}](../{s.rel_dir}/SERVICE_SPEC.md)", kind_label(sp), sp.description,
                     unit, sp.env_file or "-", what])
    return table(["service", "kind", "role", "systemd unit", "env file", "models / aliases / tools"],
                  rows)


def _where(svc: Service, gateway_host: str | None) -> str:
    sp = svc.spec
    at = f" {sp.bind}:{sp.port}" if sp.port else " (stdio)"
    host = f", host {sp.host}" if sp.host != gateway_host else ""
    return f"{sp.name}{at} ({kind_label(sp)}{host})"


def diagram(repo: Repo) -> str:
    """The mesh as a picture: who calls whom, through which public names (from the contracts)."""
    gateway = repo.services.get(repo.mesh.gateway.service)
    gw_host = gateway.spec.host if gateway else None
    clients = [s for s in repo.by_kind("client", "interface")]
    out = ["clients (" + ", ".join([*(s.name + (f" :{s.spec.port}" if s.spec.port else "")
                                      for s in clients), "any OpenAI client"]) + ")"]
    master = next((v.name for v in gateway.spec.env if v.secret and v.name.endswith("MASTER_KEY")),
                  None) if gateway else None
    out += [f"    │  Bearer {master}" if master else "    │", "    ▼"]
    out.append(_where(gateway, gw_host) if gateway else f"{repo.mesh.gateway.service} (missing)")
    by_service: dict[str, list[Route]] = {}
    for r in routes(repo):
        by_service.setdefault(r.service.name, []).append(r)
    items = list(by_service.items())
    for i, (name, rs) in enumerate(items):
        last = i == len(items) - 1
        svc = repo.services[name]
        fallbacks = sorted({f for r in rs for f in r.fallbacks})
        note = f"; falls back to {', '.join(fallbacks)}" if fallbacks else ""
        out.append(f"    {'└' if last else '├'}─ {', '.join(r.name for r in rs)} ─► "
                   f"{_where(svc, gw_host)}{note}")
        targets = sorted({r.target for r in rs if r.target})
        if targets:
            out.append(f"    {' ' if last else '│'}      └─ calls the gateway back with "
                       f"{', '.join(targets)}")
    for observer in sorted(repo.by_kind("observer"), key=lambda s: s.name):
        scraped = sorted(s.name for s in repo.services.values() if s.spec.metrics)
        out.append(f"{_where(observer, gw_host)} scrapes the /metrics of "
                   f"{', '.join(scraped) or 'no service'}")
    tools = sorted(repo.by_kind("mcp-tool"), key=lambda s: s.name)
    if tools:
        users = sorted(s.name for s in repo.services.values()
                       if any(t.name in s.spec.upstreams for t in tools))
        out.append("MCP tools (layer-tools/registry.yaml), separate from the gateway"
                   + (f", used by {', '.join(users)}:" if users else ":"))
        out += [f"    {_where(t, gw_host)}, {t.spec.mcp.transport if t.spec.mcp else '?'}" for t in tools]
    return "```text\n" + "\n".join(out) + "\n```"


def replace_section(text: str, section: str, content: str, path: str) -> str:
    pattern = re.compile(re.escape(begin(section)) + r".*?" + re.escape(end(section)), re.S)
    block = f"{begin(section)}\n{content}\n{end(section)}"
    if len(pattern.findall(text)) > 1:
        raise InputError.one(path, f"generated section '{section}' appears more than once")
    if not pattern.search(text):
        if begin(section) in text or end(section) in text:
            line = next(i for i, l in enumerate(text.splitlines(), 1) if section in l)
            raise InputError.one(path, f"generated section '{section}' has a begin marker without "
                                       "its end marker (or the reverse)", line)
        return text.rstrip("\n") + f"\n\n{block}\n"
    return pattern.sub(lambda _: block, text, count=1)


def render_topology(repo: Repo, current: str | None) -> str:
    text = current if current is not None else "# Mesh topology\n"
    for section, content in (("diagram", diagram(repo)), ("hosts", hosts_table(repo)),
                             ("services", services_table(repo)),
                             ("routes", routes_table(repo)), ("ports", ports_table(repo))):
        text = replace_section(text, section, content, TOPOLOGY)
    return text


def render_dossier(repo: Repo, current: str | None) -> str:
    text = current if current is not None else "# Platform dossier\n"
    return replace_section(text, "services", dossier_table(repo), DOSSIER)
