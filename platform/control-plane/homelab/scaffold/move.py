"""`homelab port move NAME`: the one way a service's port changes. The old port is retired (it
stays reserved forever) and a new one allocated from the ledger's layout, in one change that
`check` accepts: the contract, the ledger, and everything derived from them."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from ruamel.yaml.comments import CommentedMap

from homelab.errors import InputError
from homelab.load.repo import MESH_FILE, PORTS_FILE, SPEC_FILE, Repo
from homelab.render.plan import render_all
from homelab.rules.topology import source_files
from homelab.scaffold import edits, staging
from homelab.scaffold.allocation import next_free_port

ARG = "homelab port move"


@dataclass
class Move:
    old: int
    new: int
    write: dict[str, str] = field(default_factory=dict)
    mentions: list[str] = field(default_factory=list)  # hand-written files naming the old address


def _replace_in_strings(node: object, old: str, new: str) -> None:
    """Rewrite `old` to `new` inside every string value of a YAML tree (in place)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in list(items):
        if isinstance(value, str) and old in value:
            node[key] = value.replace(old, new)  # type: ignore[index]
        else:
            _replace_in_strings(value, old, new)


def plan_move(repo: Repo, name: str, today: dt.date, port: int | None = None) -> Move:
    svc = repo.services.get(name)
    if svc is None:
        raise InputError.one(ARG, f"NAME: no service named {name!r} (known: "
                                  f"{', '.join(sorted(repo.services))})")
    if svc.spec.port is None:
        raise InputError.one(ARG, f"NAME: {name} declares no port (it has no socket to move)")
    host, old = svc.spec.host, svc.spec.port
    taken = {p.port for p in repo.ports.ports if p.host == host}
    if port is not None and port in taken:
        raise InputError.one(ARG, f"--port: {host}:{port} is already in the ledger (ports are never "
                                  "reused)")
    new = port or next_free_port(repo.ports, host, svc.spec.kind)
    move = Move(old, new)
    text = (repo.root / PORTS_FILE).read_text(encoding="utf-8")
    src = repo.sources[PORTS_FILE]
    for i, p in enumerate(repo.ports.ports):
        if p.service == name and p.host == host and p.status == "active":
            text = edits.ledger_retire(text, src.line("ports", i) or 0, PORTS_FILE, today)
    move.write[PORTS_FILE] = edits.ledger_append(text, host, new, name, today)

    def set_port(node: CommentedMap) -> None:
        node["port"] = new
    spec_rel = f"{svc.rel_dir}/{SPEC_FILE}"
    move.write[spec_rel] = edits.edit_contract((repo.root / spec_rel).read_text(encoding="utf-8"),
                                               spec_rel, set_port)
    # The gateway's public URL is mesh data: contracts that default to it follow it.
    old_url = repo.mesh.gateway.public_base_url
    new_url = re.sub(rf":{old}(?=/|$)", f":{new}", old_url)
    if name == repo.mesh.gateway.service and new_url != old_url:
        mesh_text = (repo.root / MESH_FILE).read_text(encoding="utf-8")
        move.write[MESH_FILE] = mesh_text.replace(old_url, new_url)
        for other in repo.services.values():
            rel = f"{other.rel_dir}/{SPEC_FILE}"
            current = move.write.get(rel) or (repo.root / rel).read_text(encoding="utf-8")
            if old_url in current.split("\n---", 1)[0] + "\n":
                move.write[rel] = edits.edit_contract(
                    current, rel, lambda node: _replace_in_strings(node, old_url, new_url))
    after = staging.staged(repo, move.write)
    move.write.update(render_all(after))
    needle = re.compile(rf"(?<![\w.])(127\.0\.0\.1|localhost|{re.escape(svc.spec.bind or '')}|"
                        rf"{re.escape(repo.host_address(host) or '')}):{old}\b")
    for other in repo.services.values():
        for rel in source_files(repo.root, other.rel_dir):
            if rel in move.write:
                continue
            try:
                if needle.search((repo.root / rel).read_text(encoding="utf-8", errors="replace")):
                    move.mentions.append(rel)
            except OSError:
                continue
    return move
