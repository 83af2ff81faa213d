"""The service contract: the YAML front matter of every SERVICE_SPEC.md.

Unknown fields are rejected everywhere so a typo is an error, never a silently ignored key.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_RE = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
ENV_RE = r"^[A-Z][A-Z0-9_]*$"

# observer: scrapes the other services' `metrics` (Prometheus); its scrape config is rendered.
Kind = Literal["gateway", "backend", "optimizer", "client", "mcp-tool", "interface", "observer"]
Exposure = Literal["localhost", "lan"]
ServiceName = Annotated[str, Field(pattern=NAME_RE, max_length=63)]
EnvName = Annotated[str, Field(pattern=ENV_RE)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Endpoint(Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: Annotated[str, Field(pattern=r"^/")]


class Health(Strict):
    """What the health sweep probes and what counts as healthy."""

    path: Annotated[str, Field(pattern=r"^/")]
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    # Substring that must appear in the body (e.g. '"status":"ok"'); empty means status only.
    expect_body: str = ""
    required: bool = True
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 3.0
    auth_env: EnvName | None = None  # bearer token env var when the path needs a key


class Metrics(Strict):
    """Where the service exports Prometheus metrics (text exposition format)."""

    path: Annotated[str, Field(pattern=r"^/")] = "/metrics"
    # Bearer token env var when the path needs a key (declared by this service and, under the same
    # name, by every service of kind observer, which sends it).
    auth_env: EnvName | None = None


class EnvVar(Strict):
    name: EnvName
    required: bool = False
    secret: bool = False
    file: str  # where it lives, e.g. /etc/homelab-llm/ov-server.env or config/env.local
    default: str | None = None
    # What `homelab up` sets it to on a checkout, over `default` (a real env file on the machine
    # still wins): keeps state such as a built artefact inside the checkout. Placeholders:
    # {state} (the checkout's .homelab folder), {repo}, {service_dir}.
    up_value: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _secret_has_no_default(self) -> EnvVar:
        if self.secret and (self.default or self.up_value):
            raise ValueError("a secret env var must not carry a default or up_value in the contract")
        return self


class Run(Strict):
    """How to run the service. `command` may use {bind}, {port}, {service_dir}, {repo}."""

    uv_project: str | None = "."  # relative to the service folder; None for non-Python services
    command: list[str] = Field(min_length=1)
    workdir: str = "."
    # Idempotent commands run before every start, in `workdir` with the service's environment
    # (e.g. writing a local artefact): by `homelab up` after `uv sync`, and as the unit's
    # ExecStartPre. Same placeholders as `command`.
    prepare: list[Annotated[list[str], Field(min_length=1)]] = []
    after: list[ServiceName] = []  # start after these (dependency order for up/restart-all)
    autostart: bool = True  # False: opt-in services (`homelab up --with NAME`), e.g. a browser UI


class External(Strict):
    """A backend the mesh routes to but does not run: an OpenAI-compatible server managed
    elsewhere (another host, or a local Ollama / llama-server / vLLM / LM Studio / MLX server).

    Where it is reached comes from the usual fields (`host` in mesh.yaml, `bind`, `port` in the
    ledger); how healthy looks from `health`; how the gateway authenticates from
    `gateway_auth_env` (absent: no key). This block says what only an external server needs.
    """

    # Who or what runs it (shown when it is absent, so the reader knows where to start it).
    managed_by: str = Field(min_length=1)
    # Where its OpenAI API lives under http://address:port (Ollama, llama-server, vLLM: /v1).
    api_path: Annotated[str, Field(pattern=r"^(/[A-Za-z0-9._~-]+)*$")] = "/v1"
    # How long `up` waits for its health before starting what comes after it (the gateway); an
    # absent external backend is a warning, never a failed `up`.
    wait_s: Annotated[float, Field(ge=0, le=600)] = 15.0


class Test(Strict):
    """The service's own test suite, run by `homelab test` from the service folder."""

    command: list[str] = Field(min_length=1)
    apt: list[str] = []  # Debian packages the suite needs
    timeout_s: Annotated[int, Field(gt=0)] = 1800


class Systemd(Strict):
    unit: Annotated[str, Field(pattern=r"^[a-z0-9@._-]+\.service$")]
    user: str = "homelab"
    # Variables the unit must never pass on, even if an env file sets them (e.g. OPTILLM_API_KEY,
    # which switches OptiLLM into local inference).
    unset_env: list[EnvName] = []


class Model(Strict):
    """A logical model a backend serves: public name -> id the backend knows it by."""

    name: str
    upstream_id: str
    fallbacks: list[str] = []  # other public names tried when this one fails


class Alias(Strict):
    """An optimizer approach alias: gateway name -> approach applied to a gateway model."""

    name: str
    approach: Annotated[str, Field(pattern=r"^[a-z0-9_&|]+$")]
    target: str  # the gateway model name the optimizer calls back with


class McpTool(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    description: str = Field(min_length=1)
    inputs: dict[str, str]  # parameter -> "type: meaning"
    outputs: str = Field(min_length=1)
    failure_modes: list[str] = Field(min_length=1)


class Mcp(Strict):
    purpose: str = Field(min_length=1)
    transport: Literal["stdio", "streamable-http"]
    path: Annotated[str, Field(pattern=r"^/")] = "/mcp"
    stdio_command: list[str] = []  # how a client spawns it over stdio (relative to the service folder)
    tools: list[McpTool] = Field(min_length=1)


class Client(Strict):
    """A client/orchestrator: reaches the mesh through the gateway only."""

    api_base_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*_API_BASE$")]
    model_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*_MODEL$")]
    default_api_base: str
    default_model: str
    # Files (relative to the service folder) whose URLs must all point at the gateway or tools.
    config_files: list[str] = []
    # True when the client reads the MCP registry (layer-tools/registry.yaml) and so may call every
    # mcp-tool: `check` (HL407) wants each in its upstreams, `homelab new`/`rm` keep them current.
    mcp_registry: bool = False


class ServiceSpec(Strict):
    name: ServiceName
    kind: Kind
    layer: Annotated[str, Field(pattern=NAME_RE)]
    description: str = Field(min_length=1)
    host: ServiceName
    bind: str | None = None  # None: no listening socket (e.g. stdio-only tool, CLI client)
    port: Port | None = None
    exposure: Exposure = "localhost"
    approval: str | None = None  # LAN approval id, required when exposure is lan
    endpoints: list[Endpoint] = []
    health: Health | None = None
    env_file: str | None = None
    env: list[EnvVar] = []
    run: Run | None = None  # absent only for an external backend (`external`)
    external: External | None = None  # a backend the mesh routes to but does not run
    test: Test | None = None
    upstreams: list[ServiceName] = []
    systemd: Systemd | None = None
    # The env var (declared by the gateway) holding the key the gateway sends to this service.
    gateway_auth_env: EnvName | None = None
    models: list[Model] = []
    aliases: list[Alias] = []
    mcp: Mcp | None = None
    client: Client | None = None
    metrics: Metrics | None = None

    @field_validator("bind")
    @classmethod
    def _bind_is_ip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"bind must be an IP address, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _run_or_external(self) -> ServiceSpec:
        if self.external is None:
            if self.run is None:
                raise ValueError("`run` is required: how the mesh starts this service (or, for a "
                                 "backend running elsewhere, an `external` block instead)")
            return self
        if self.run is not None:
            raise ValueError("`run` and `external` exclude each other: an external backend is "
                             "started where it runs, not by the mesh (remove `run`)")
        if self.kind != "backend":
            raise ValueError(f"`external` is only for kind backend (this is a {self.kind})")
        for field in ("test", "systemd"):
            if getattr(self, field) is not None:
                raise ValueError(f"`{field}` does not apply to an external backend (the mesh "
                                 "neither runs nor tests it): remove it")
        if self.port is None or self.health is None:
            raise ValueError("an external backend needs `bind`, `port` and `health`: where the "
                             "gateway reaches it and how `up` and `health` see it is up")
        return self

    @model_validator(mode="after")
    def _kind_shape(self) -> ServiceSpec:
        if (self.bind is None) != (self.port is None):
            raise ValueError("bind and port go together: set both or neither")
        if self.metrics is not None and self.port is None:
            raise ValueError("`metrics` needs a port: a scraper reaches it over HTTP")
        needs = {
            "backend": ("models", bool(self.models)),
            "optimizer": ("aliases", bool(self.aliases)),
            "mcp-tool": ("mcp", self.mcp is not None),
            "client": ("client", self.client is not None),
        }
        if self.kind in needs and not needs[self.kind][1]:
            raise ValueError(f"a {self.kind} must declare `{needs[self.kind][0]}`")
        for field, kinds in (("models", {"backend"}), ("aliases", {"optimizer"}),
                             ("mcp", {"mcp-tool"}), ("client", {"client"})):
            if getattr(self, field) and self.kind not in kinds:
                raise ValueError(f"`{field}` is only for kind {' | '.join(sorted(kinds))}")
        names = [e.name for e in self.env]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"env var declared twice: {', '.join(dup)}")
        return self

    @property
    def is_external(self) -> bool:
        """Run elsewhere: routed, probed and documented, never started or tested by the mesh."""
        return self.external is not None

    @property
    def after(self) -> list[str]:
        """run.after (nothing for an external backend: it starts nothing)."""
        return self.run.after if self.run else []

    @property
    def autostart(self) -> bool:
        return self.run.autostart if self.run else True

    @property
    def has_http(self) -> bool:
        return self.port is not None and bool(self.endpoints or self.health)

    @property
    def binds_loopback(self) -> bool:
        return self.bind is None or ipaddress.ip_address(self.bind).is_loopback


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


_PLACEHOLDER = re.compile(r"\{(bind|port|service_dir|repo|host_address)\}")


def expand(arg: str, values: dict[str, str]) -> str:
    """Fill the contract's placeholders in a run command argument."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], arg)
