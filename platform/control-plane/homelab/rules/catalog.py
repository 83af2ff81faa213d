"""Every rule's code, name, what it catches, why it exists and its one-line fix.

One source for two readers: `homelab check` prints the fix under each violation, and
docs/foundation/rules.md shows the same text (its tables are rendered from here, so the two can
never disagree).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    catches: str
    why: str
    fix: str

    @property
    def family(self) -> str:
        return self.code[:3] + "xx"


FAMILIES = {
    "HL1xx": "checklist: every service is complete and wired in",
    "HL2xx": "ports are immutable",
    "HL3xx": "exposure",
    "HL4xx": "topology",
    "HL5xx": "backends, names and MCP tools",
    "HL6xx": "env and secrets",
    "HL7xx": "uv",
    "HL8xx": "generated files",
}

RENDER = "`uv run homelab render`"
PORT_MOVE = "`uv run homelab port move NAME`"

_RULES = (
    Rule("HL101", "missing-contract-file",
         "a service folder without `SERVICE_SPEC.md`, or with a missing/empty `ARCHITECTURE.md` or "
         "`AGENTS.md` (a missing file is reported at its line 1)",
         "the contract is the source of truth and the docs are how the next person learns the service",
         "write the file (`homelab new` writes all three) with what is true of the service"),
    Rule("HL102", "folder-mismatch",
         "`name` differs from the folder name, or `layer` from its `layer-*` folder",
         "the folder layout is the architecture; tools find services by folder",
         "rename the folder, or fix `name`/`layer` so they match it"),
    Rule("HL103", "not-health-checked",
         "a service with HTTP endpoints that has no `health` probe, or no probe line in "
         "`platform/ops/scripts/healthcheck.sh`",
         "a service nobody probes fails silently",
         f"declare `health:` in the contract, then run {RENDER}"),
    Rule("HL104", "unit-missing",
         "`systemd.unit` is declared but the unit file is not in `platform/ops/systemd/`",
         "hosts are deployed from that folder", f"run {RENDER}"),
    Rule("HL105", "not-in-restart-all",
         "the unit is not restarted by `platform/ops/scripts/restart-all.sh`",
         "after a reboot or an upgrade, the mesh is restarted by that script", f"run {RENDER}"),
    Rule("HL106", "not-in-topology", "the service is not in the tables of `docs/foundation/topology.md`",
         "docs that omit a service are how ports and exposure drift", f"run {RENDER}"),
    Rule("HL107", "not-in-dossier", "the service is not in `docs/PLATFORM_DOSSIER.md`",
         "same, for the operator's page", f"run {RENDER}"),
    Rule("HL108", "unknown-host", "`host` is not declared in `mesh/mesh.yaml`",
         "nothing could deploy it",
         "add the host to mesh/mesh.yaml (see multi-host.md) or fix `host`"),
    Rule("HL109", "placeholder-left",
         "the word TODO in a contract (front matter or prose), its `AGENTS.md` or `ARCHITECTURE.md`",
         "contracts are published to agents (the MCP registry) and docs to the next person; a "
         "placeholder there is a promise nobody keeps",
         "replace the TODO with what is true of the service now"),
    Rule("HL201", "port-not-in-ledger",
         "a service port that `mesh/ports.yaml` never allocated on that host (e.g. an edited port)",
         "clients, firewalls and docs remember ports; changing one breaks them silently",
         f"keep the ledger's port, or move it with {PORT_MOVE} (retires the old port, allocates a new one)"),
    Rule("HL202", "port-ledger-mismatch", "the ledger gives that host:port to another service",
         "two owners of a port is how one service ends up answering for another",
         f"keep the port the ledger gives this service, or get a new one with {PORT_MOVE}"),
    Rule("HL203", "port-collision", "two services on one host:port", "only one of them can start",
         f"leave the port to the service the ledger gives it; {PORT_MOVE} the other one"),
    Rule("HL204", "retired-port-reused", "a service uses a port marked `status: retired`",
         "retired ports stay reserved forever so stale clients never reach the wrong service",
         f"keep the service's active port, or get a new one with {PORT_MOVE}"),
    Rule("HL205", "ledger-line-removed",
         "a ledger line present at the base (the merge base with the target branch, see below) is gone",
         "the ledger is append-only",
         "restore the line; to free a port mark it `status: retired` with `retired: <date>`"),
    Rule("HL206", "ledger-orphan", "an `active` ledger line whose service has no contract",
         "an active line claims a port for nothing; the next person cannot tell if it is in use",
         "mark it `status: retired` with `retired: <date>` (`homelab rm` does this)"),
    Rule("HL207", "ledger-line-edited",
         "a ledger line changed port, service or date since the base, or went from retired back to active",
         "an edited line is a port that moved silently",
         f"restore the line as it was; only `active -> retired` may change ({PORT_MOVE} moves a port)"),
    Rule("HL208", "ledger-service-twice",
         "a service with more than one active ledger line on its host",
         "a service is reachable on one port; a second active line is a port that moved without "
         "retiring the old one",
         f"retire every line but the contract's port (or use {PORT_MOVE}, which does both)"),
    Rule("HL301", "lan-without-approval",
         "a non-loopback `bind` without an `approval:` that exists in `mesh/approvals.yaml` for this "
         "service and host",
         "nothing reaches the LAN without a recorded decision (who, reviewer, when, why)",
         "bind 127.0.0.1, or add a reviewed record to mesh/approvals.yaml and name it in `approval:`"),
    Rule("HL302", "optimizer-on-lan", "an optimizer binding anything but loopback",
         "optimizers proxy the gateway's key upstream; they stay behind the gateway",
         "bind the optimizer to 127.0.0.1 (no approval overrides this)"),
    Rule("HL303", "exposure-mismatch",
         "`exposure:` disagrees with `bind`, or an approval on a loopback service",
         "the declared exposure is what reviewers read; it must be the truth",
         "make `exposure:` match `bind` (lan for a non-loopback bind); drop the approval on loopback"),
    Rule("HL304", "unreachable-upstream",
         "a service calls (or the gateway routes to) a loopback-bound service on another host",
         "it cannot work",
         "bind the upstream to its host's LAN address (with an approval), or run both on one host"),
    Rule("HL305", "approval-unreviewed",
         "an approval without a `reviewer`, with `reviewer` equal to `who`, or (against the base) "
         "added by a change whose commit author or committer is the reviewer",
         "an exposure decision needs a second person; the record makes the claim visible in review "
         "(the tools cannot prove the reviewer agreed: the review of the change does)",
         "have someone other than the requester and the change's author review it and name them as `reviewer:`"),
    Rule("HL401", "client-bypasses-gateway",
         "a client/interface whose `upstreams` include a backend or optimizer, or whose default base "
         "URL, env defaults, config files or own source files (tests excluded) name a "
         "backend/optimizer address or a base URL away from the gateway",
         "every client goes through the gateway: one key, one log, fallbacks, no surprises when a "
         "backend moves",
         "use mesh.yaml's gateway.public_base_url (from the client's `*_API_BASE` env) instead"),
    Rule("HL402", "routing-cycle",
         "an optimizer alias whose target leads back to itself (alias -> optimizer -> gateway -> "
         "alias ...), printed as the cycle",
         "a loop burns the backend until timeouts", "target the plain backend model name, not an alias"),
    Rule("HL403", "unknown-upstream",
         "an upstream, `run.after` entry, alias target or fallback that names nothing in the mesh; a "
         "missing client config file",
         "typos here are outages at 2 a.m.",
         "fix the name: it must be a service, public model name or file that exists"),
    Rule("HL404", "gateway-missing",
         "`mesh.yaml`'s `gateway.service` is not a gateway, or a second gateway exists",
         "the mesh has exactly one entry point",
         "keep exactly one service of kind gateway and name it in mesh.yaml gateway.service"),
    Rule("HL405", "duplicate-model-name", "one public model name served twice",
         "the gateway would load-balance unrelated models under one name",
         "rename one of them (public names are unique across the mesh)"),
    Rule("HL406", "start-order-cycle", "`run.after` loops", "nothing could start first",
         "remove one `run.after` entry of the loop"),
    Rule("HL407", "upstream-not-declared",
         "the gateway routes to a backend/optimizer missing from its `upstreams`, or a client that "
         "reads the MCP registry (`client.mcp_registry: true`) lacks an mcp-tool in `upstreams` (or, "
         "for an HTTP tool on its host, in `run.after`)",
         "`upstreams` and `run.after` are the dependency graph: start order, docs and reviews read it",
         "add the service to `upstreams` (and `run.after`); `homelab new` and `homelab rm` keep them current"),
    Rule("HL501", "backend-endpoint-missing",
         "a backend not declaring `POST /v1/chat/completions`, `GET /v1/models` and `GET /health` "
         "(an external backend: the first two under its `external.api_path`, and its `health.path`)",
         "the gateway, the health sweep and the tools rely on all three",
         "declare the endpoint under `endpoints:` (and serve it)"),
    Rule("HL502", "model-name-pattern",
         "a public model or alias name not matching `mesh.yaml`'s `model_name_pattern` (default "
         "`^jerry-[a-z0-9]+(-[a-z0-9]+)*$`)",
         "clients see one plain naming scheme, not vendor ids",
         "rename it to match mesh.yaml model_name_pattern (the upstream id can be anything)"),
    Rule("HL503", "mcp-transport",
         "an MCP server on streamable HTTP without bind/port or without declaring `POST <path>`, or "
         "on stdio without `stdio_command`",
         "the registry must tell agents how to reach every tool",
         "declare bind/port and `POST <mcp.path>` for streamable HTTP, or `mcp.stdio_command` for stdio"),
    Rule("HL504", "mcp-tools-mismatch",
         "(`check --live` only) an MCP tool's `stdio_command` does not start and answer `tools/list`, "
         "or lists tools or inputs other than the contract's `mcp.tools`",
         "agents are shown the registry (from the contracts); a server that disagrees fails at the "
         "first tool call",
         "make the server's tools and inputs match `mcp.tools` (or correct the contract); run the command by hand to see why it fails"),
    Rule("HL601", "undeclared-env",
         "an `os.environ/X` in router.yaml, or a `gateway_auth_env`, that the gateway's contract "
         "does not declare",
         "LiteLLM refuses to start when a referenced env var is missing",
         f"declare the variable under the gateway's `env:`, then run {RENDER}"),
    Rule("HL602", "env-local-tracked", "`config/env.local` is tracked by git or not gitignored",
         "it holds the master key", "`git rm --cached` it and keep env.local in .gitignore"),
    Rule("HL603", "secret-committed",
         "a tracked file containing what looks like a key (OpenAI-style `sk-...`, private keys, "
         "AWS/GitHub/HF/Slack tokens, `*_TOKEN=<long value>`)",
         "a key in git is a key in every clone",
         "move it to an env file and rotate it (a deliberate test fake: end the line with `# homelab: allow-secret`)"),
    Rule("HL604", "env-local-missing-key",
         "a local `config/env.local` exists but leaves a `required` key unset",
         "the gateway would not start",
         "set the key in config/env.local (or delete the file and let `homelab up` write it)"),
    Rule("HL605", "metrics-key-undeclared",
         "a `metrics.auth_env` that the service itself does not declare as a secret, or that a "
         "service of kind observer (Prometheus) does not declare",
         "the scraper sends that key by name (shared through `.homelab/secrets.env` or the env "
         "file); undeclared, every scrape of the target gets a 401 and its graphs stay empty",
         "declare the variable (`secret: true`) under both services' `env:`, then run "
         f"{RENDER}"),
    Rule("HL701", "uv-project-missing",
         "a service with `run.uv_project` lacking `pyproject.toml` or `uv.lock`",
         "reproducible installs on every host",
         "run `uv lock` in the service folder and commit pyproject.toml and uv.lock"),
    Rule("HL801", "generated-stale",
         "a derived file (router.yaml `model_list`/`router_settings.fallbacks`, env templates, systemd "
         "units, healthcheck.sh, restart-all.sh, doc tables and the diagram between markers, "
         "`layer-tools/registry.yaml`, the JSON schemas, the tables of this page) differs from what "
         "`homelab render` writes; the first differing line is shown in full, with a diff excerpt",
         "derived files are never edited by hand",
         f"change the contract (not the derived file), then run {RENDER}"),
    Rule("HL802", "generated-orphan",
         "a generated systemd unit or env template that no contract produces any more (e.g. left "
         "behind by a removed service)",
         "a stale unit gets installed and started on the next deploy",
         f"run {RENDER}, which deletes it (`homelab rm` does this too)"),
)

RULES: dict[str, Rule] = {r.code: r for r in _RULES}


def fix(code: str) -> str:
    return RULES[code].fix
