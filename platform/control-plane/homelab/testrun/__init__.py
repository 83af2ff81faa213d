"""`homelab test`'s machinery: which suites exist (suites), running one under a wall clock
(process), what it counted (report), which skips are acceptable (skips), the summary (outcome)."""

from homelab.testrun.report import Counts, parse_pytest_summary
from homelab.testrun.suites import Suite, suites

__all__ = ["Counts", "Suite", "parse_pytest_summary", "suites"]
