"""What a suite's run counted: from pytest's junit-xml report (`--junitxml`), which names every
test and every skip reason, or from pytest's closing line when there is no report."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
# A module skipped at collection: junit keeps the reason only inside a tuple's repr.
_COLLECTION_SKIP = re.compile(r"""['"]Skipped: (.*)['"]\)\s*$""", re.S)


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0  # failures and errors (a test whose teardown errs counts as failed)
    skipped: int = 0  # skips and xfails

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.passed + other.passed, self.failed + other.failed,
                      self.skipped + other.skipped)

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    def line(self) -> str:
        return f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"


@dataclass(frozen=True)
class Skip:
    test: str  # pytest node id, e.g. tests/test_x.py::TestY::test_z[param]
    reason: str
    kind: str = "skip"  # or "xfail": an expected failure hides a test just like a skip


@dataclass(frozen=True)
class Report:
    counts: Counts
    skips: tuple[Skip, ...] = ()
    failed: tuple[str, ...] = field(default=())  # node ids of failed or erroring tests
    passed: tuple[str, ...] = field(default=())

    def interrupted_in(self, test: str) -> Report:
        """This report when a wall clock stopped the run in `test`: that test failed (pytest,
        interrupted, may have written it down as passed, or not at all)."""
        passed = tuple(t for t in self.passed if t != test)
        failed = self.failed if test in self.failed else (*self.failed, test)
        return Report(Counts(len(passed), len(failed), self.counts.skipped), self.skips, failed,
                      passed)


def _node_id(classname: str, name: str, rootdir: Path) -> str:
    """Rebuild a node id from junit's dotted classname: the longest prefix that is a file."""
    parts = [p for p in classname.split(".") if p] if classname else name.split(".")
    rest = [name] if classname else []
    for cut in range(len(parts), 0, -1):
        rel = "/".join(parts[:cut]) + ".py"
        if (rootdir / rel).is_file():
            return "::".join([rel, *parts[cut:], *rest])
    return "::".join([".".join(parts), *rest])


def _skip_reason(element: ET.Element) -> str:
    message = element.get("message", "")
    if message == "collection skipped":
        found = _COLLECTION_SKIP.search(element.text or "")
        return found.group(1) if found else (element.text or message).strip()
    return message


def parse_junit(text: str, rootdir: Path) -> Report:
    """Counts, skips and failures of one junit-xml report (pytest's xunit2 flavour)."""
    passed, failed, skips = [], [], []
    for case in ET.fromstring(text).iter("testcase"):
        if not case.get("name"):  # the test pytest was in when interrupted: written nameless
            continue
        test = _node_id(case.get("classname", ""), case.get("name", ""), rootdir)
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(test)
        elif (skipped := case.find("skipped")) is not None:
            kind = "xfail" if skipped.get("type") == "pytest.xfail" else "skip"
            skips.append(Skip(test, _skip_reason(skipped), kind))
        else:
            passed.append(test)
    return Report(Counts(len(passed), len(failed), len(skips)), tuple(skips), tuple(failed),
                  tuple(passed))


def parse_pytest_summary(output: str) -> Counts | None:
    """Counts from pytest's last summary line (`== 3 passed, 1 skipped in 2.1s ==`)."""
    for line in reversed(output.splitlines()):
        found = _COUNT.findall(line)
        if found and (" in " in line or line.startswith("=")):
            n = {kind: int(num) for num, kind in found}
            failed = n.get("failed", 0) + n.get("error", 0) + n.get("errors", 0)
            return Counts(n.get("passed", 0) + n.get("xpassed", 0), failed,
                          n.get("skipped", 0) + n.get("xfailed", 0))
    return None
