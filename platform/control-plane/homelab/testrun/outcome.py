"""One suite's outcome (exit code, report, skips judged) and the closing summary (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from homelab.testrun.process import RunResult
from homelab.testrun.report import Counts, Report
from homelab.testrun.skips import Verdict

ROOT_HINT = (
    "Tests that need root were skipped: network namespaces (`ip netns add`) and the Debian "
    "packages the suites use (iproute2, shellcheck, systemd, curl, strace) need root to set up. "
    "Run `sudo ./homelab test` as CI does, or accept these skips for this run with "
    "`./homelab test --allow-skip '^needs root'` (CI never does).")
PACKAGE_HINT = (
    "A tool a test needs is not installed: `homelab test` installs the suites' Debian packages "
    "when run as root with apt-get; otherwise install them yourself (see the warning above).")


@dataclass(frozen=True)
class Outcome:
    suite: str
    run: RunResult
    report: Report | None
    verdicts: tuple[Verdict, ...] = ()

    @property
    def counts(self) -> Counts:
        """The report's counts (a suite without a report counts as one failure)."""
        return self.report.counts if self.report else Counts(failed=1)

    @property
    def disallowed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.allowed_because is None]

    @property
    def status(self) -> str:
        rc = self.run.returncode
        if self.run.timed_out:
            return f"TIMEOUT {self.run.progress.where()}"
        if self.report is None:
            return f"NO REPORT (exit {rc})"
        if self.report.counts.total == 0:
            return f"NO TESTS RAN (exit {rc})"
        if rc != 0 or self.report.counts.failed:
            return f"FAILED (exit {rc})"
        if self.disallowed:
            return f"FAILED: {len(self.disallowed)} skip(s) not allowed"
        return "ok"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def summary(outcomes: list[Outcome], total_s: float, *, is_root: bool) -> list[str]:
    """The closing lines: one per suite, every skip with its reason and verdict, what failed,
    the total run time, and last `N passed, M failed, K skipped` for the whole run."""
    lines = ["", "=== summary"]
    width = max((len(o.suite) for o in outcomes), default=0) + 2
    for o in outcomes:
        lines.append(f"{o.suite:<{width}}{o.counts.line()}  ({o.run.seconds:.0f} s)  {o.status}")
    verdicts = [v for o in outcomes for v in o.verdicts]
    if verdicts:
        lines += ["", "=== skips (each one is an untested behaviour)"]
        for v in verdicts:
            tag = "xfail " if v.skip.kind == "xfail" else ""
            verdict = f"allowed: {v.allowed_because}" if v.allowed_because else "NOT ALLOWED"
            lines.append(f"{v.suite}: {v.skip.test}: {tag}{v.skip.reason}  [{verdict}]")
    problems, notes = [], []
    for o in outcomes:
        if o.report:
            problems += [f"{o.suite}: failed: {test}" for test in o.report.failed]
        if o.run.timed_out:
            problems.append(f"{o.suite}: killed by its wall clock {o.run.progress.where()}")
        notes += [f"{o.suite}: still running after the suite ended, stopped: {p}"
                  for p in o.run.leftovers]
        if o.run.progress.phase and o.run.progress.per_test_timeout_s is None:
            notes.append(f"{o.suite}: no per-test timeout (pytest-timeout): a hang waits for "
                         "the suite's wall clock")
    if problems:
        lines += ["", "=== problems", *problems]
    if notes:
        lines += ["", "=== notes", *notes]
    disallowed = [v for o in outcomes for v in o.disallowed]
    if any(v.skip.reason.startswith("needs root") for v in disallowed) and not is_root:
        lines += ["", ROOT_HINT]
    if any("not installed" in v.skip.reason or "is missing" in v.skip.reason for v in disallowed):
        lines += ["", PACKAGE_HINT]
    failed = [o.suite for o in outcomes if not o.ok]
    if failed:
        lines.append(f"\nfailed suites: {', '.join(failed)}")
    total = sum((o.counts for o in outcomes), Counts())
    lines.append(f"total run time {total_s:.0f} s ({total_s / 60:.1f} min)")
    lines.append(total.line())
    return lines
