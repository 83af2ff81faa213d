"""Which skips `homelab test` accepts: those on the allow-list
(`platform/testing/allowed-skips.yaml`, each with why), and those a person accepts for one run
with `--allow-skip REGEX`. Any other skip, or xfail, fails the run: a skipped test is an untested
behaviour."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from homelab.errors import InputError, Problem
from homelab.load.yamlio import parse
from homelab.testrun.report import Skip

ALLOWLIST = Path("platform/testing/allowed-skips.yaml")


class AllowedSkip(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: Annotated[str, Field(min_length=1)]  # a suite name, or "*" for any suite
    test: Annotated[str, Field(min_length=1)] = "*"  # glob on the test's node id
    reason: Annotated[str, Field(min_length=1)]  # regex searched in the skip's reason
    why: Annotated[str, Field(min_length=10)]  # why skipping is right, for the reader

    @field_validator("reason")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    def matches(self, suite: str, skip: Skip) -> bool:
        return (self.suite in ("*", suite) and fnmatch.fnmatchcase(skip.test, self.test)
                and re.search(self.reason, skip.reason) is not None)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allowed: list[AllowedSkip] = []


def load_allowed(root: Path) -> list[AllowedSkip]:
    """The repository's allow-list (none when the file does not exist)."""
    path = root / ALLOWLIST
    if not path.is_file():
        return []
    data = parse(path.read_text(encoding="utf-8"), str(ALLOWLIST)) or {}
    try:
        return _File.model_validate(data).allowed
    except ValidationError as exc:
        raise InputError([Problem(str(ALLOWLIST), None,
                                  f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
                          for e in exc.errors()]) from None


def compile_patterns(patterns: tuple[str, ...]) -> list[re.Pattern[str]]:
    """`--allow-skip` values; a bad regex is unusable input, not a traceback."""
    out = []
    for pattern in patterns:
        try:
            out.append(re.compile(pattern))
        except re.error as exc:
            raise InputError.one("--allow-skip", f"{pattern!r} is not a valid regular "
                                 f"expression: {exc}") from None
    return out


@dataclass(frozen=True)
class Verdict:
    suite: str
    skip: Skip
    allowed_because: str | None  # None: not allowed


def judge(suite: str, skips: tuple[Skip, ...], allowed: list[AllowedSkip],
          patterns: list[re.Pattern[str]]) -> list[Verdict]:
    out = []
    for skip in skips:
        why = next((a.why for a in allowed if a.matches(suite, skip)), None)
        if why is None and any(p.search(skip.reason) for p in patterns):
            why = "accepted for this run with --allow-skip"
        out.append(Verdict(suite, skip, why))
    return out
