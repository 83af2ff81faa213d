"""The `sk-` key rule, in one place.

LiteLLM accepts a master key only when it starts with `sk-`; OptiLLM forwards a client bearer
token that starts with `sk-` upstream instead of using its own key (FIELD_NOTES). So the gateway's
master key must start with `sk-` and every other mesh key must not.

As a command (for shell launchers):
    python -m meshkit.keys [--master NAME]... [--not-master NAME]...
checks those environment variables; exit 2 with one line per problem on stderr.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

PREFIX = "sk-"


def master_key_problem(name: str, value: str | None) -> str | None:
    if not value:
        return f"{name} is not set"
    if not value.startswith(PREFIX):
        return f"{name} must start with {PREFIX!r} (LiteLLM refuses another master key)"
    return None


def other_key_problem(name: str, value: str | None) -> str | None:
    if value and value.startswith(PREFIX):
        return (f"{name} must NOT start with {PREFIX!r} (OptiLLM would forward it upstream as the "
                "gateway key)")
    return None


def new_key(*, master: bool) -> str:
    """A fresh random key that obeys the rule (hex never starts with `sk-`)."""
    value = secrets.token_hex(24)
    return PREFIX + value if master else value


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m meshkit.keys",
                                description="Check mesh keys in the environment against the sk- rule.")
    p.add_argument("--master", action="append", default=[], help="must start with sk-")
    p.add_argument("--not-master", action="append", default=[], help="must not start with sk-")
    args = p.parse_args(argv)
    env = os.environ if environ is None else environ
    problems = [m for m in ([master_key_problem(n, env.get(n)) for n in args.master]
                            + [other_key_problem(n, env.get(n)) for n in args.not_master]) if m]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
