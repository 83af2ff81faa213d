"""Command line: `ov-server serve`, `ov-server prepare` and `ov-server build-tiny-model`."""

from __future__ import annotations

import argparse
import logging
import sys

from typing import TYPE_CHECKING

from .config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from .registry import ModelSpec

EPILOG = """examples:
  ov-server serve --host 127.0.0.1 --port 4010
  ov-server serve --host 127.0.0.1 --port 4010 --registry /etc/homelab-llm/ov-models.yaml
  ov-server prepare                           # write jerry-tiny, convert every GGUF model once
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
    pr = sub.add_parser("prepare", help="write the built-in models and convert every GGUF model of the registry "
                        "into OV_SERVER_MODEL_DIR, so that `serve` loads them without converting")
    pr.add_argument("--registry", help="registry YAML (overrides OV_SERVER_REGISTRY)")
    pr.add_argument("--env-file", help="env file (default /etc/homelab-llm/ov-server.env, or OV_SERVER_ENV_FILE)")
    pr.add_argument("--model", help=argparse.SUPPRESS)  # one model, in this process (what prepare runs per model)
    b = sub.add_parser("build-tiny-model", help="write the built-in jerry-tiny GGUF (idempotent)")
    b.add_argument("out", metavar="OUT_DIR_OR_FILE", nargs="?",
                   help="directory, or a path ending in .gguf (default: OV_SERVER_MODEL_DIR, as `serve` resolves it)")
    b.add_argument("--env-file", help="env file (default /etc/homelab-llm/ov-server.env, or OV_SERVER_ENV_FILE)")
    return p


def _serve(args: argparse.Namespace) -> int:
    from .registry import ensure_registry, load_registry

    settings = load_settings(args.env_file, args.registry)
    if settings.registry_path is not None:
        if ensure_registry(settings.registry_path):
            print(f"ov-server: registry {settings.registry_path} did not exist: wrote it with the built-in "
                  "models", file=sys.stderr)
        load_registry(settings.registry_path)  # fail fast with a clear message
    import uvicorn

    from .app import create_app

    from meshkit import requestid

    # Every line of this process names the request it is about (`rid=...`, `rid=-` outside one),
    # uvicorn's access lines included: uvicorn is told not to install its own handlers.
    requestid.install(level=args.log_level.upper())
    app = create_app(settings, log_level=args.log_level.upper())
    # Keep idle connections longer than any client pool does (httpx and aiohttp: 5 s; uvicorn's own
    # default is also 5 s): when both sides expire together, the gateway can reuse a connection the
    # server is closing and report the backend as not answering.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5,
                timeout_keep_alive=75, log_config=None)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    """What `homelab up` runs before `serve`: the first request must not wait for a conversion.

    Each model is prepared in a process of its own, as `serve` loads it in an engine process: a
    model that fails (or crashes OpenVINO) is reported and skipped, and `serve` still starts and
    serves the others (its /health then says why that one does not load)."""
    import subprocess

    from .manager import desired_models
    from .registry import ensure_registry

    settings = load_settings(args.env_file, args.registry)
    if args.model is None and settings.registry_path is not None and ensure_registry(settings.registry_path):
        print(f"registry {settings.registry_path} did not exist: wrote it with the built-in models")
    if args.model is not None:
        return _prepare_one(settings, args.model, desired_models(settings)[args.model])
    passed: list[str] = []
    for flag, value in (("--env-file", args.env_file), ("--registry", args.registry)):
        if value is not None:
            passed += [flag, value]
    for model_id in desired_models(settings):
        rc = subprocess.run([sys.executable, "-m", "ov_server.cli", "prepare", "--model", model_id, *passed]).returncode
        if rc != 0:
            print(f"ov-server: warning: model {model_id}: could not be prepared (exit {rc}); `serve` will "
                  "try to load it and say why on /health", file=sys.stderr)
    return 0


def _prepare_one(settings: Settings, model_id: str, spec: ModelSpec) -> int:
    import time

    import ov_server  # noqa: F401  (blocks OpenVINO telemetry before openvino is imported)

    from .converted import cached_folder
    from .engine_worker import load_pipeline
    from .model_files import resolve_model_path

    t0 = time.perf_counter()
    path = resolve_model_path(spec, settings.model_dir)
    if path.suffix != ".gguf":
        print(f"{model_id}: nothing to convert: {path}")
        return 0
    folder = cached_folder(path, settings.model_dir)
    if folder is not None:
        print(f"{model_id}: converted earlier: {folder}")
        return 0
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    try:
        _, info = load_pipeline(model_id, spec, path, settings.model_dir)
    except Exception as exc:  # a bad model file: say so in one line (serve will say it on /health too)
        from .errors import summarize_exception

        print(f"ov-server: error: model {model_id}: {summarize_exception(exc)}", file=sys.stderr)
        return 1
    print(f"{model_id}: converted: {info['tokenizer_path']} ({time.perf_counter() - t0:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "prepare":
            return _prepare(args)
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
