"""HL1xx: every service carries its contract files and is wired into ops scripts and docs."""

from __future__ import annotations

import re
from collections.abc import Iterator

from homelab.load.repo import SPEC_FILE
from homelab.render import docs, scripts, systemd
from homelab.rules.base import Context, Violation

REQUIRED_FILES = (SPEC_FILE, "ARCHITECTURE.md", "AGENTS.md")


CELL_NAME = re.compile(r"^\[?([a-z0-9-]+)\]?(\([^)]*\))?$")


def table_names(text: str | None) -> set[str]:
    """Every name that stands alone in a markdown table cell (`| ov-server |`, `| [ov](...) |`)."""
    names: set[str] = set()
    for line in (text or "").splitlines():
        if line.lstrip().startswith("|"):
            for cell in line.strip().strip("|").split("|"):
                if m := CELL_NAME.match(cell.strip()):
                    names.add(m.group(1))
    return names


PLACEHOLDER = re.compile(r"\bTODO\b")


def _line_of(text: str | None, needle: str) -> int:
    """1-based line of the first line containing `needle` (1 when absent)."""
    for n, line in enumerate((text or "").splitlines(), 1):
        if needle in line:
            return n
    return 1


def placeholders(path: str, text: str | None) -> Iterator[Violation]:
    for n, line in enumerate((text or "").splitlines(), 1):
        if PLACEHOLDER.search(line):
            yield Violation(path, n, "HL109", "placeholder-left",
                            f"placeholder left: {line.strip()[:160]!r}")


def check(ctx: Context) -> Iterator[Violation]:
    repo = ctx.repo
    for folder in repo.folders_without_spec:
        yield Violation(f"{folder}/{SPEC_FILE}", 1, "HL101", "missing-contract-file",
                        f"service folder {folder} has no {SPEC_FILE}")
    health = ctx.read(scripts.HEALTHCHECK)
    probed = scripts.probed_services(health or "")
    restart_units = set(re.findall(r"[\w@.-]+\.service", ctx.read(scripts.RESTART_ALL) or ""))
    topology_text, dossier_text = ctx.read(docs.TOPOLOGY), ctx.read(docs.DOSSIER)
    topology, dossier = table_names(topology_text), table_names(dossier_text)
    for svc in repo.services.values():
        src, spec = svc.source, svc.spec
        yield from placeholders(src.path, ctx.read(src.path))
        for fname in REQUIRED_FILES[1:]:
            rel = f"{svc.rel_dir}/{fname}"
            text = ctx.read(rel)
            if text is None or not text.strip():
                state = "missing" if text is None else "empty"
                yield Violation(rel, 1, "HL101", "missing-contract-file",
                                f"{fname} of {spec.name} is {state}")
            yield from placeholders(rel, text)
        folder_name = svc.rel_dir.split("/")[1]
        if spec.name != folder_name:
            yield Violation(src.path, src.line("name"), "HL102", "folder-mismatch",
                            f"name {spec.name!r} differs from its folder {folder_name!r}")
        if spec.layer != svc.folder_layer:
            yield Violation(src.path, src.line("layer"), "HL102", "folder-mismatch",
                            f"layer {spec.layer!r} differs from its folder layer-{svc.folder_layer}")
        if repo.host_address(spec.host) is None:
            yield Violation(src.path, src.line("host"), "HL108", "unknown-host",
                            f"host {spec.host!r} is not declared in mesh/mesh.yaml")
        if spec.has_http and spec.health is not None and spec.name not in probed:
            yield Violation(src.path, src.line("health"), "HL103", "not-health-checked",
                            f"{spec.name} declares `health` but {scripts.HEALTHCHECK} has no probe for it")
        if spec.has_http and spec.health is None:
            yield Violation(src.path, src.line("endpoints"), "HL103", "not-health-checked",
                            f"{spec.name} has HTTP endpoints but declares no `health` probe")
        if spec.systemd:
            unit = spec.systemd.unit
            if not (ctx.root / systemd.unit_path(svc)).is_file():
                yield Violation(src.path, src.line("systemd", "unit"), "HL104", "unit-missing",
                                f"systemd unit {unit} is not under {systemd.SYSTEMD_DIR}")
            if unit not in restart_units:
                yield Violation(src.path, src.line("systemd", "unit"), "HL105", "not-in-restart-all",
                                f"{unit} ({spec.name}) is not restarted by {scripts.RESTART_ALL}")
        if spec.name not in topology:
            yield Violation(docs.TOPOLOGY, _line_of(topology_text, docs.begin("services")), "HL106",
                            "not-in-topology", f"{spec.name} does not appear in the topology tables")
        if spec.name not in dossier:
            yield Violation(docs.DOSSIER, _line_of(dossier_text, docs.begin("services")), "HL107",
                            "not-in-dossier", f"{spec.name} does not appear in the platform dossier")
