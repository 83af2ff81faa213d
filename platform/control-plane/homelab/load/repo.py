"""Load a whole mesh checkout: mesh-level files plus every service contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from homelab.contract.mesh import Approvals, Mesh, PortLedger
from homelab.contract.service import ServiceSpec
from homelab.errors import InputError, Problem
from homelab.load import frontmatter, yamlio

MESH_FILE = "mesh/mesh.yaml"
PORTS_FILE = "mesh/ports.yaml"
APPROVALS_FILE = "mesh/approvals.yaml"
SPEC_FILE = "SERVICE_SPEC.md"

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Located:
    """A parsed YAML document and where it sits, to point violations at lines."""

    path: str  # relative to the repo root
    data: Any  # plain parsed data
    text: str  # the YAML text (positions are computed from it only when asked)
    line_offset: int = 0

    @cached_property
    def _positions(self) -> Any:
        return yamlio.position_tree(self.text)

    def line(self, *loc: str | int) -> int | None:
        return yamlio.line_of(self._positions, loc, self.line_offset, exact=True)


@dataclass(frozen=True)
class Service:
    spec: ServiceSpec
    rel_dir: str  # e.g. layer-inference/ov-server
    source: Located

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def folder_layer(self) -> str:
        return self.rel_dir.split("/")[0].removeprefix("layer-")


@dataclass(frozen=True)
class Repo:
    root: Path
    mesh: Mesh
    ports: PortLedger
    approvals: Approvals
    services: dict[str, Service]
    sources: dict[str, Located]  # mesh-level files by relative path
    folders_without_spec: list[str] = field(default_factory=list)

    def host_address(self, host: str) -> str | None:
        return next((h.address for h in self.mesh.hosts if h.name == host), None)

    def by_kind(self, *kinds: str) -> list[Service]:
        return [s for s in self.services.values() if s.spec.kind in kinds]


def ordered(services: dict[str, Service]) -> dict[str, Service]:
    """Canonical order (by folder), so rendering never depends on how a Repo was assembled."""
    return dict(sorted(services.items(), key=lambda kv: kv[1].rel_dir))


def _read(root: Path, rel: str) -> str:
    path = root / rel
    if not path.is_file():
        raise InputError.one(rel, "file is missing")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.one(rel, f"cannot read: {exc}") from None


def _validate(model: type[M], located: Located) -> M:
    if not isinstance(located.data, dict):
        raise InputError.one(located.path, "expected a YAML mapping at the top level",
                             located.line_offset + 1)
    try:
        return model.model_validate(located.data)
    except ValidationError as exc:
        raise InputError(yamlio.validation_problems(exc, located.text, located.path,
                                                    located.line_offset)) from None


def load_yaml_model(root: Path, rel: str, model: type[M]) -> tuple[M, Located]:
    return parse_yaml_model(_read(root, rel), rel, model)


def parse_yaml_model(text: str, rel: str, model: type[M]) -> tuple[M, Located]:
    located = Located(rel, yamlio.parse(text, rel), text)
    return _validate(model, located), located


def load_service(root: Path, rel_spec: str) -> Service:
    return parse_service(_read(root, rel_spec), rel_spec)


def parse_service(text: str, rel_spec: str) -> Service:
    fm = frontmatter.split(text, rel_spec)
    offset = fm.first_line - 1
    located = Located(rel_spec, yamlio.parse(fm.yaml_text, rel_spec, offset), fm.yaml_text, offset)
    spec = _validate(ServiceSpec, located)
    return Service(spec, str(Path(rel_spec).parent), located)


def service_folders(root: Path) -> list[str]:
    return sorted(
        f"{layer.name}/{svc.name}"
        for layer in root.glob("layer-*") if layer.is_dir()
        for svc in layer.iterdir() if svc.is_dir() and not svc.name.startswith((".", "_"))
    )


def load_repo(root: Path) -> Repo:
    """Load everything, collecting the problems of every file before failing (exit 2)."""
    problems: list[Problem] = []
    sources: dict[str, Located] = {}
    loaded: dict[str, Any] = {}
    for rel, model in ((MESH_FILE, Mesh), (PORTS_FILE, PortLedger), (APPROVALS_FILE, Approvals)):
        try:
            loaded[rel], sources[rel] = load_yaml_model(root, rel, model)
        except InputError as exc:
            problems += exc.problems

    services: dict[str, Service] = {}
    without_spec: list[str] = []
    for folder in service_folders(root):
        rel_spec = f"{folder}/{SPEC_FILE}"
        if not (root / rel_spec).exists():
            without_spec.append(folder)
            continue
        try:
            svc = load_service(root, rel_spec)
        except InputError as exc:
            problems += exc.problems
            continue
        if svc.name in services:
            problems.append(Problem(rel_spec, svc.source.line("name"),
                                    f"duplicate service name {svc.name!r} "
                                    f"(also in {services[svc.name].source.path})"))
            continue
        services[svc.name] = svc

    if PORTS_FILE in loaded:
        problems += _ledger_duplicates(loaded[PORTS_FILE], sources[PORTS_FILE])
    if APPROVALS_FILE in loaded:
        problems += _approval_duplicates(loaded[APPROVALS_FILE], sources[APPROVALS_FILE])
    if MESH_FILE in loaded:
        problems += _host_duplicates(loaded[MESH_FILE], sources[MESH_FILE])
    if problems:
        raise InputError(problems)
    return Repo(root, loaded[MESH_FILE], loaded[PORTS_FILE], loaded[APPROVALS_FILE],
                ordered(services), sources, without_spec)


def _dupes(keys: list[Any], located: Located, field_name: str, what: str) -> list[Problem]:
    seen: dict[Any, int] = {}
    out = []
    for i, key in enumerate(keys):
        if key in seen:
            out.append(Problem(located.path, located.line(field_name, i),
                               f"duplicate {what} {key} (first at {field_name}[{seen[key]}])"))
        else:
            seen[key] = i
    return out


def _ledger_duplicates(ledger: PortLedger, located: Located) -> list[Problem]:
    return _dupes([f"{p.host}:{p.port}" for p in ledger.ports], located, "ports", "ledger port")


def _approval_duplicates(approvals: Approvals, located: Located) -> list[Problem]:
    return _dupes([a.id for a in approvals.approvals], located, "approvals", "approval id")


def _host_duplicates(mesh: Mesh, located: Located) -> list[Problem]:
    return _dupes([h.name for h in mesh.hosts], located, "hosts", "host name")
