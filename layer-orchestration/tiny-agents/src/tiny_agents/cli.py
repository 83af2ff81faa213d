"""tiny-agents: run | chat | serve | tools. Exit codes: 0 done, 1 failed at run time (gateway
error, step limit reached), 2 unusable input or configuration. No traceback for user mistakes."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from typing import TYPE_CHECKING, Any

import anyio

from tiny_agents.config import DEFAULT_MAX_STEPS, AgentConfig, Options, resolve
from tiny_agents.errors import AgentError

if TYPE_CHECKING:  # the SDKs (openai, mcp) load lazily: --help, config errors and refusals stay fast
    from tiny_agents.loop import Agent
    from tiny_agents.toolbox import Toolbox, ToolOutcome

EXAMPLES = """examples:
  tiny-agents run "is jerry-chat up, and where does it run?"
  tiny-agents run --agent config/agent.json "summarise http://example.org"
  tiny-agents chat --transport http
  tiny-agents serve --host 127.0.0.1 --port 4030
environment: TINYAGENTS_API_BASE (must be the gateway), TINYAGENTS_MODEL, TINYAGENTS_API_KEY,
  TINYAGENTS_REGISTRY, TINYAGENTS_AGENT, TINYAGENTS_GATEWAY_URL, HOMELAB_MESH_VIEW,
  TINYAGENTS_SERVE_KEY (serve: the key clients of POST /run must send)"""

SERVE_KEY_ENV = "TINYAGENTS_SERVE_KEY"
MIN_SERVE_KEY_CHARS = 16


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--agent", help="a Hugging Face tiny-agents agent.json (file or folder)")
    common.add_argument("--registry", help="MCP registry YAML (default: the mesh view's MCP servers)")
    common.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                        help="how to reach registry servers: spawn them (stdio, default) or their URL (http)")
    common.add_argument("--servers", type=_csv, help="only these registry servers (comma-separated)")
    common.add_argument("--allowed-tools", type=_csv, help="only these tools (comma-separated)")
    common.add_argument("--no-tools", action="store_true", help="no MCP servers at all")
    common.add_argument("--model", help="logical model at the gateway (default TINYAGENTS_MODEL or jerry-chat)")
    common.add_argument("--gateway-url", help="the gateway's base URL (default: the mesh view's)")
    common.add_argument("--mesh-view", help="the mesh view, mesh/view.json (default HOMELAB_MESH_VIEW)")
    common.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS, help="model calls per question (default 8)")
    common.add_argument("--no-stream", action="store_true", help="ask the gateway for whole answers")

    p = argparse.ArgumentParser(prog="tiny-agents", description="A multi-step tool-using agent that calls the gateway only.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[common], help="answer one question and exit")
    run.add_argument("question", help="the question; '-' reads it from stdin")
    run.add_argument("--json", action="store_true", help="print the result (answer, tool calls) as JSON")
    sub.add_parser("chat", parents=[common], help="interactive: one question per line; EOF or 'exit' ends")
    serve = sub.add_parser("serve", parents=[common], help="HTTP mode: POST /run, GET /health (loopback only)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4030)
    sub.add_parser("tools", parents=[common], help="list the tools the agent would offer the model")
    return p


def options(args: argparse.Namespace) -> Options:
    return Options(agent=args.agent, registry=args.registry, transport=args.transport, servers=args.servers,
                   allowed_tools=args.allowed_tools, model=args.model, gateway_url=args.gateway_url,
                   mesh_view=args.mesh_view, max_steps=args.max_steps, stream=not args.no_stream, no_tools=args.no_tools)


def _print_tool(kind: str, event: ToolOutcome | dict[str, Any]) -> None:
    if isinstance(event, dict):  # kind == "call"
        print(f"\n[tool] {event['name']} {event['arguments']}", file=sys.stderr, flush=True)
    else:
        status = "error" if event.is_error else "ok"
        print(f"[tool] {event.name} -> {status}: {event.text[:200]}", file=sys.stderr, flush=True)


def _agent(cfg: AgentConfig, toolbox: Toolbox, client, *, quiet: bool) -> Agent:
    from tiny_agents.loop import Agent

    out = (lambda text: None) if quiet else (lambda text: print(text, end="", flush=True))
    return Agent(client, cfg.model, toolbox, max_steps=cfg.max_steps, system_prompt=cfg.system_prompt,
                 stream=cfg.stream, on_text=out, on_tool=_print_tool)


async def cmd_run(cfg: AgentConfig, question: str, as_json: bool) -> int:
    from tiny_agents.toolbox import Toolbox

    async with Toolbox(cfg.servers, cfg.allowed_tools) as toolbox, cfg.client() as client:
        result = await _agent(cfg, toolbox, client, quiet=as_json).run(question)
    if as_json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        print()
    if result.stopped == "max_steps":
        print(f"tiny-agents: stopped after {result.steps} steps without a final answer (raise --max-steps)",
              file=sys.stderr)
        return 1
    return 0


async def cmd_chat(cfg: AgentConfig) -> int:
    from tiny_agents.toolbox import Toolbox

    async with Toolbox(cfg.servers, cfg.allowed_tools) as toolbox, cfg.client() as client:
        agent = _agent(cfg, toolbox, client, quiet=False)
        history = agent.new_history()
        print(f"tiny-agents chat: model {cfg.model} via {cfg.gateway}; tools: {', '.join(toolbox.tools) or 'none'}. "
              "Ctrl-D or 'exit' ends.", file=sys.stderr)
        while True:
            print("> ", end="", file=sys.stderr, flush=True)
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if not line:  # EOF: stdin closed, never loop on it
                print(file=sys.stderr)
                return 0
            question = line.strip()
            if question in ("exit", "quit"):
                return 0
            if not question:
                continue
            try:
                result = await agent.run(question, history)
            except AgentError as exc:
                print(f"\ntiny-agents: error: {exc.message}", file=sys.stderr)
                continue
            print()
            if result.stopped == "max_steps":
                print(f"(stopped after {result.steps} steps)", file=sys.stderr)


async def cmd_tools(cfg: AgentConfig) -> int:
    from tiny_agents.toolbox import Toolbox

    async with Toolbox(cfg.servers, cfg.allowed_tools) as toolbox:
        for tool in toolbox.tools.values():
            first = (tool.description.strip().splitlines() or [""])[0]
            print(f"{tool.name}\t{tool.server}\t{first}")
    return 0


def check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise AgentError(f"--host must be an IP address, got {host!r}", param="host") from None
    if not loopback:
        raise AgentError(f"--host {host}: HTTP mode binds loopback only (the contract's exposure is localhost)",
                         param="host")


def serve_key(env: dict[str, str]) -> str:
    """HTTP mode never runs without a key: whoever can drive the agent spends the gateway key."""
    key = env.get(SERVE_KEY_ENV, "").strip()
    if len(key) < MIN_SERVE_KEY_CHARS:
        state = "is not set" if not key else f"is shorter than {MIN_SERVE_KEY_CHARS} characters"
        raise AgentError(f"{SERVE_KEY_ENV} {state}: HTTP mode needs a key that clients of POST /run send as "
                         "`Authorization: Bearer <key>` (`homelab up` generates one in .homelab/secrets.env)",
                         param=SERVE_KEY_ENV)
    return key


async def cmd_serve(cfg: AgentConfig, host: str, port: int, key: str) -> int:
    import uvicorn

    from tiny_agents.httpapi import build_app
    from tiny_agents.toolbox import Toolbox

    async with Toolbox(cfg.servers, cfg.allowed_tools) as toolbox, cfg.client() as client:
        server = uvicorn.Server(uvicorn.Config(build_app(cfg, toolbox, client, key=key), host=host, port=port,
                                               log_level="info"))
        await server.serve()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = resolve(options(args))
        if args.command == "run":
            question = sys.stdin.read() if args.question == "-" else args.question
            if not question.strip():
                raise AgentError("the question is empty", param="question")
            return anyio.run(cmd_run, cfg, question, args.json)
        if args.command == "chat":
            return anyio.run(cmd_chat, cfg)
        if args.command == "tools":
            return anyio.run(cmd_tools, cfg)
        check_loopback(args.host)
        key = serve_key(dict(os.environ))
        return anyio.run(cmd_serve, cfg, args.host, args.port, key)
    except AgentError as exc:
        print(f"\ntiny-agents: error: {exc.message}", file=sys.stderr)
        runtime = exc.code in ("gateway_error", "gateway_unreachable")
        return 1 if runtime else 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
