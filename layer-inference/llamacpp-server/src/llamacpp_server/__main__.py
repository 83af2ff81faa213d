"""`llamacpp-server prepare | serve --host H --port P | binary | check-model FILE`.

`prepare` builds llama-server once (cached per machine and CPU level) and checks the model file;
`serve` replaces this process with llama-server (exec), so supervisord and systemd see
llama-server itself: a native crash is its own signal in `homelab status/logs`, not a Python
wrapper's exit code.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from pathlib import Path

from llamacpp_server import build, check, presets, settings

PROG = "llamacpp-server"


def _fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def prepare() -> int:
    try:
        conf = settings.load()
    except settings.SettingsError as exc:
        return _fail(str(exc), 2)
    if conf.binary is not None:
        print(f"using LLAMACPP_SERVER_BIN={conf.binary}; nothing to build")
        return 0
    try:
        binary = build.ensure_llama_server(log=lambda line: print(line, flush=True))
    except build.BuildError as exc:
        return _fail(str(exc))
    print(f"llama-server: {binary}\nmodel: {conf.model}", flush=True)
    return 0


def serve(host: str, port: int) -> int:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _fail(f"--host must be an IP address, got {host!r}", 2)
    try:
        conf = settings.load()
    except settings.SettingsError as exc:
        return _fail(str(exc), 2)
    binary = conf.binary or build.cached_binary()
    if binary is None:
        return _fail(f"llama-server is not built for this CPU yet ({build.cache_dir()}): run "
                     f"`uv run {PROG} prepare` (what `homelab up --with llamacpp-server` does; "
                     f"{build.MEASURED_BUILD})")
    what = f"{settings.UPSTREAM_ID} ({conf.model.name})"
    if conf.presets is not None:
        try:  # the built-in section follows LLAMACPP_SERVER_MODEL; added sections are kept
            presets.ensure_builtin(conf.presets, settings.UPSTREAM_ID, conf.model)
            names = list(presets.read(conf.presets))
        except (presets.PresetsError, OSError) as exc:
            return _fail(str(exc), 2)
        what = f"router over {conf.presets}: {', '.join(names)}"
    print(f"{PROG}: exec {binary} for {what} on {host}:{port}, "
          f"{conf.parallel} slots, {conf.threads} thread(s)", flush=True)
    os.execve(binary, settings.command(binary, conf, host, port), settings.child_env(conf))
    return 0  # not reached


def binary_path() -> int:
    found = build.cached_binary()
    if found is None:
        return _fail(f"not built: {build.cache_dir()}")
    print(found)
    return 0


def check_model(path: Path, timeout_s: float) -> int:
    try:
        conf = settings.load()
    except settings.SettingsError as exc:
        return _fail(str(exc), 2)
    binary = conf.binary or build.cached_binary()
    if binary is None:
        return _fail(f"llama-server is not built for this CPU yet ({build.cache_dir()}): run `uv run {PROG} prepare`")
    try:
        took = check.check_model(binary, conf, path.expanduser(), timeout_s)
    except check.NotLoadable as exc:
        return _fail(f"cannot load {path}: {exc}")
    print(f"{path}: loads in llama-server ({took:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare", help="build llama-server once (slow the first time) and check the model")
    run = sub.add_parser("serve", help="exec llama-server (the contract's run.command)")
    run.add_argument("--host", default="127.0.0.1", help="bind address (an IP address)")
    run.add_argument("--port", type=int, default=4011)
    sub.add_parser("binary", help="print the cached llama-server's path (exit 1 if not built)")
    chk = sub.add_parser("check-model", help="exit 0 if llama-server loads this GGUF (a server of its own, stopped after)")
    chk.add_argument("file", type=Path)
    chk.add_argument("--timeout", type=float, default=120.0, help="seconds allowed to load (default 120)")
    args = parser.parse_args(argv)
    if args.cmd == "prepare":
        return prepare()
    if args.cmd == "serve":
        return serve(args.host, args.port)
    if args.cmd == "check-model":
        return check_model(args.file, args.timeout)
    return binary_path()


if __name__ == "__main__":
    sys.exit(main())
