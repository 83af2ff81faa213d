"""Command line: `ov-server serve` and `ov-server build-tiny-model`."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import ConfigError, load_settings

EPILOG = """examples:
  ov-server serve --host 127.0.0.1 --port 4010
  ov-server serve --host 127.0.0.1 --port 4010 --registry /etc/homelab-llm/ov-models.yaml
  ov-server build-tiny-model                  # into OV_SERVER_MODEL_DIR, where `serve` looks
  ov-server build-tiny-model ~/.cache/homelab-llm/models
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ov-server", description="OpenVINO GenAI OpenAI-compatible server.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the models in the registry", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=4010)
    s.add_argument("--registry", help="registry YAML (overrides OV_SERVER_REGISTRY)")
    s.add_argument("--env-file", help="env file (default /etc/homelab-llm/ov-server.env, or OV_SERVER_ENV_FILE)")
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    b = sub.add_parser("build-tiny-model", help="write the built-in jerry-tiny GGUF (idempotent)")
    b.add_argument("out", metavar="OUT_DIR_OR_FILE", nargs="?",
                   help="directory, or a path ending in .gguf (default: OV_SERVER_MODEL_DIR, as `serve` resolves it)")
    b.add_argument("--env-file", help="env file (default /etc/homelab-llm/ov-server.env, or OV_SERVER_ENV_FILE)")
    return p


def _serve(args: argparse.Namespace) -> int:
    from .registry import load_registry

    settings = load_settings(args.env_file, args.registry)
    if settings.registry_path is not None:
        load_registry(settings.registry_path)  # fail fast with a clear message
    import uvicorn

    from .app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings, log_level=args.log_level.upper())
    # Keep idle connections longer than any client pool does (httpx and aiohttp: 5 s; uvicorn's own
    # default is also 5 s): when both sides expire together, the gateway can reuse a connection the
    # server is closing and report the backend as not answering.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5,
                timeout_keep_alive=75)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        from .tiny_model import build_tiny_model

        print(build_tiny_model(args.out or load_settings(args.env_file).model_dir))
        return 0
    except ConfigError as exc:
        print(f"ov-server: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ov-server: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
