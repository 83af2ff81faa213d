"""The mesh view: what every service needs to know about the mesh, read from the one JSON file
`homelab render` writes from the contracts (mesh/view.json; schema mesh/view.schema.json).

Services never read the contracts or the checkout layout: they get HOMELAB_MESH_VIEW=<path>
(from `homelab up` or their systemd unit) and call load_view(). A missing, unreadable, invalid or
wrong-version view is a ViewError naming the file and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from meshkit.addresses import NeverCall, url_owner
from meshkit.probe import Target

FORMAT = 1
ENV = "HOMELAB_MESH_VIEW"
T = TypeVar("T")


class ViewError(Exception):
    """The view cannot be used; the message names the file (and the field)."""


@dataclass(frozen=True)
class Host:
    name: str
    address: str | None
    role: str | None


@dataclass(frozen=True)
class Health:
    url: str  # at the reach address (from another host)
    local_url: str  # on this service's own host (loopback for a wildcard bind)
    expect_status: int
    expect_body: str
    timeout_s: float
    required: bool
    auth_env: str | None

    def target(self, service: Service, *, local: bool = False,
               env: dict[str, str] | None = None, timeout_s: float | None = None) -> Target:
        """The probe for this health check; `env` supplies the auth_env bearer token."""
        token = (env or {}).get(self.auth_env) if self.auth_env else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return Target(service.name, self.local_url if local else self.url, self.expect_status,
                      self.expect_body, timeout_s or self.timeout_s, self.required, service.host,
                      headers)


@dataclass(frozen=True)
class Route:
    """One public name at the gateway: a backend model or an optimizer alias."""

    name: str
    kind: str  # "model" | "alias"
    service: str
    upstream_id: str
    fallbacks: tuple[str, ...]
    approach: str | None
    target: str | None


@dataclass(frozen=True)
class Service:
    name: str
    kind: str
    layer: str
    host: str
    bind: str | None
    port: int | None
    exposure: str
    address: str | None  # where peers reach it (the host's address for a wildcard bind)
    url: str | None  # http://address:port
    health: Health | None
    upstreams: tuple[str, ...]
    autostart: bool
    # "mesh": `homelab up` runs it; "external": a backend run elsewhere that the mesh only routes
    # to and probes (an older view without the field means "mesh").
    managed: str = "mesh"

    @property
    def is_external(self) -> bool:
        return self.managed == "external"


@dataclass(frozen=True)
class McpTool:
    name: str
    description: str
    inputs: dict[str, str]
    outputs: str
    failure_modes: tuple[str, ...]


@dataclass(frozen=True)
class McpServer:
    name: str
    purpose: str
    transport: str
    host: str
    url: str | None
    port: int | None
    stdio_command: str | None
    stdio_args: tuple[str, ...]
    tools: tuple[McpTool, ...]


@dataclass(frozen=True)
class View:
    path: Path
    mesh: str
    gateway_service: str
    gateway_url: str
    hosts: tuple[Host, ...]
    services: dict[str, Service]
    routes: tuple[Route, ...]
    mcp: dict[str, McpServer]
    never_call: tuple[NeverCall, ...]

    def never_call_owner(self, url: str) -> NeverCall | None:
        """The backend/optimizer `url` reaches, if any (the same answer as `homelab check`)."""
        return url_owner(url, self.never_call)


class _Fields:
    """Typed access to one JSON object; every error names the file and the field's path."""

    def __init__(self, file: Path, where: str, data: object) -> None:
        if not isinstance(data, dict):
            raise ViewError(f"{file}: {where or 'top level'}: expected an object, got {_kind(data)}")
        self.file, self.where, self.data = file, where, data

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise ViewError(f"{self.file}: {self._path(key)}: missing")
        value = self.data[key]
        if value is None and optional:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a JSON `true` is never a port or a status.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ViewError(f"{self.file}: {self._path(key)}: expected "
                            f"{' or '.join(_NAMES[k] for k in kinds)}, got {_kind(value)}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        items = self.get(key, list)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ViewError(f"{self.file}: {self._path(key)}[{i}]: expected a string, got {_kind(item)}")
        return tuple(items)

    def objects(self, key: str, build: Callable[[_Fields], T]) -> list[T]:
        return [build(_Fields(self.file, f"{self._path(key)}[{i}]", item))
                for i, item in enumerate(self.get(key, list))]

    def child(self, key: str, *, optional: bool = False) -> _Fields | None:
        value = self.get(key, dict, optional=optional)
        return None if value is None else _Fields(self.file, self._path(key), value)


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true/false", list: "a list",
          dict: "an object"}


def _kind(value: object) -> str:
    return "null" if value is None else _NAMES.get(type(value), type(value).__name__)


def _health(f: _Fields) -> Health:
    return Health(f.get("url", str), f.get("local_url", str), f.get("expect_status", int),
                  f.get("expect_body", str), float(f.get("timeout_s", (int, float))),
                  f.get("required", bool), f.get("auth_env", str, optional=True))


def _service(f: _Fields) -> Service:
    health = f.child("health", optional=True)
    return Service(f.get("name", str), f.get("kind", str), f.get("layer", str), f.get("host", str),
                   f.get("bind", str, optional=True), f.get("port", int, optional=True),
                   f.get("exposure", str), f.get("address", str, optional=True),
                   f.get("url", str, optional=True), _health(health) if health else None,
                   f.strings("upstreams"), f.get("autostart", bool),
                   f.get("managed", str, optional=True) or "mesh")


def _route(f: _Fields) -> Route:
    return Route(f.get("name", str), f.get("kind", str), f.get("service", str),
                 f.get("upstream_id", str), f.strings("fallbacks"),
                 f.get("approach", str, optional=True), f.get("target", str, optional=True))


def _tool(f: _Fields) -> McpTool:
    inputs = f.get("inputs", dict)
    return McpTool(f.get("name", str), f.get("description", str),
                   {str(k): str(v) for k, v in inputs.items()}, f.get("outputs", str),
                   f.strings("failure_modes"))


def _mcp(f: _Fields) -> McpServer:
    stdio = f.child("stdio", optional=True)
    return McpServer(f.get("name", str), f.get("purpose", str), f.get("transport", str),
                     f.get("host", str), f.get("url", str, optional=True),
                     f.get("port", int, optional=True),
                     stdio.get("command", str) if stdio else None,
                     stdio.strings("args") if stdio else (), tuple(f.objects("tools", _tool)))


def _never_call(f: _Fields) -> NeverCall:
    return NeverCall(f.get("address", str), f.get("port", int), f.get("service", str),
                     f.get("kind", str))


def _host(f: _Fields) -> Host:
    return Host(f.get("name", str), f.get("address", str, optional=True),
                f.get("role", str, optional=True))


def parse(data: object, file: Path) -> View:
    top = _Fields(file, "", data)
    version = top.get("format", int)
    if version != FORMAT:
        raise ViewError(f"{file}: format: this meshkit reads format {FORMAT}, the view is format "
                        f"{version}; re-run `homelab render` with the matching control plane")
    gateway = top.child("gateway")
    assert gateway is not None
    return View(file, top.get("mesh", str), gateway.get("service", str), gateway.get("url", str),
                tuple(top.objects("hosts", _host)),
                {s.name: s for s in top.objects("services", _service)},
                tuple(top.objects("routes", _route)),
                {m.name: m for m in top.objects("mcp_servers", _mcp)},
                tuple(top.objects("never_call", _never_call)))


def load_view(path: str | Path | None = None) -> View:
    """The view at `path`, else at $HOMELAB_MESH_VIEW; ViewError says what is wrong and where."""
    if path is None:
        path = os.environ.get(ENV)
        if not path:
            raise ViewError(f"{ENV} is not set: point it at the mesh view (mesh/view.json, written "
                            "by `homelab render`)")
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ViewError(f"{file}: not found (run `homelab render` to write the mesh view)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ViewError(f"{file}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ViewError(f"{file}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    return parse(data, file)
