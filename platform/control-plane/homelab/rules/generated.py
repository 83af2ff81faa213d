"""HL801: derived files match what `homelab render` would write."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from homelab.rules.base import Context, Violation


def check(ctx: Context) -> Iterator[Violation]:
    for rel, want in sorted(ctx.rendered.items()):
        have = ctx.read(rel)
        if have == want:
            continue
        if have is None:
            yield Violation(rel, None, "HL801", "generated-stale", "generated file is missing; run "
                            "`uv run homelab render`")
            continue
        line = next((i for i, (a, b) in enumerate(zip(have.splitlines(), want.splitlines()), 1)
                     if a != b), min(len(have.splitlines()), len(want.splitlines())) + 1)
        diff = next((d for d in difflib.unified_diff(have.splitlines(), want.splitlines(), n=0,
                                                     lineterm="") if d[:1] in "+-" and d[:3] not in
                     ("+++", "---")), "")
        yield Violation(rel, line, "HL801", "generated-stale",
                        f"differs from what `uv run homelab render` writes (first change: {diff[:120]!r})")
