"""The one env-file parser: KEY=VALUE lines (the systemd EnvironmentFile / dotenv subset the mesh
writes), strict, so a typo is an error naming file:line instead of a silently missing variable.

Accepted: blank lines, `#` comments, an optional `export ` prefix, `KEY=value` with KEY a shell
identifier; one pair of matching outer quotes ('...' or "...") is removed. Nothing else.

As a command (for shell launchers such as the gateway's start.sh):
    python -m meshkit.envfile --export [--missing-only] FILE
prints `export KEY='value'` lines (shell-quoted) for `eval`; exit 2 with `FILE:LINE: why` on stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvFileError(ValueError):
    """An env file that cannot be used; str() is `FILE:LINE: why` (no line when unreadable)."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


def parse(text: str, source: str = "<env>") -> dict[str, str]:
    """Values in file order; a later KEY overrides an earlier one (as systemd does)."""
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _KEY.fullmatch(key):
            raise EnvFileError(source, lineno, f"expected KEY=VALUE, got {raw.strip()!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def read(path: str | Path) -> dict[str, str]:
    """Parse a file; EnvFileError (naming the file) when it is missing, unreadable or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EnvFileError(str(path), None, "not found") from None
    except UnicodeDecodeError:
        raise EnvFileError(str(path), None, "not UTF-8 text") from None
    except OSError as exc:
        raise EnvFileError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    return parse(text, str(path))


def read_if_exists(path: str | Path) -> dict[str, str]:
    """{} when the file does not exist (a fresh machine); otherwise as read()."""
    return read(path) if Path(path).exists() else {}


def exports(values: dict[str, str], environ: dict[str, str] | None = None) -> str:
    """Shell `export` lines; with `environ`, only for keys it does not define (it wins)."""
    keep = {k: v for k, v in values.items() if environ is None or k not in environ}
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in keep.items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m meshkit.envfile",
                                description="Check an env file; with --export print it for eval.")
    p.add_argument("file")
    p.add_argument("--export", action="store_true", help="print shell export lines")
    p.add_argument("--missing-only", action="store_true",
                   help="export only variables the environment does not already define")
    args = p.parse_args(argv)
    try:
        values = read(args.file)
    except EnvFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.export:
        sys.stdout.write(exports(values, dict(os.environ) if args.missing_only else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
