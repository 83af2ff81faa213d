"""HL801: derived files match what `homelab render` writes. HL802: no derived file outlives the
contract it came from."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from homelab.render.plan import orphans
from homelab.rules.base import Context, Violation

CONTEXT_LINES = 2
MAX_DIFF_LINES = 16


def first_difference(have: str, want: str) -> tuple[int, str, str, str]:
    """(1-based line, the line as it is, the line render writes, a unified diff excerpt)."""
    have_lines, want_lines = have.splitlines(), want.splitlines()
    n = next((i for i, (a, b) in enumerate(zip(have_lines, want_lines)) if a != b),
             min(len(have_lines), len(want_lines)))
    got = have_lines[n] if n < len(have_lines) else "(end of file)"
    exp = want_lines[n] if n < len(want_lines) else "(end of file)"
    diff = list(difflib.unified_diff(have_lines, want_lines, "as it is", "as render writes",
                                     n=CONTEXT_LINES, lineterm=""))
    # The first hunk only: enough to see what changed, short enough to read in a terminal.
    hunk_end = next((i for i, l in enumerate(diff) if i > 2 and l.startswith("@@")), len(diff))
    excerpt = diff[:min(hunk_end, MAX_DIFF_LINES)]
    if len(diff) > len(excerpt):
        excerpt.append(f"... ({len(diff) - len(excerpt)} more diff lines)")
    return n + 1, got, exp, "\n".join(excerpt)


def check(ctx: Context) -> Iterator[Violation]:
    for rel, want in sorted(ctx.rendered.items()):
        have = ctx.read(rel)
        if have == want:
            continue
        if have is None:
            yield Violation(rel, 1, "HL801", "generated-stale", "generated file is missing")
            continue
        line, got, exp, diff = first_difference(have, want)
        yield Violation(rel, line, "HL801", "generated-stale",
                        f"differs from what `uv run homelab render` writes: line {line} is {got!r}, "
                        f"render writes {exp!r}", diff)
    for rel in orphans(ctx.root, ctx.rendered) if ctx.rendered else []:
        yield Violation(rel, 1, "HL802", "generated-orphan",
                        "generated file that no contract produces any more")
