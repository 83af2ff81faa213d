"""HL801: derived files match what `homelab render` would write."""

from __future__ import annotations

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
        have_lines, want_lines = have.splitlines(), want.splitlines()
        n = next((i for i, (a, b) in enumerate(zip(have_lines, want_lines)) if a != b),
                 min(len(have_lines), len(want_lines)))
        got = have_lines[n] if n < len(have_lines) else "(end of file)"
        exp = want_lines[n] if n < len(want_lines) else "(end of file)"
        yield Violation(rel, n + 1, "HL801", "generated-stale",
                        f"differs from what `uv run homelab render` writes: has {got[:80]!r}, "
                        f"expected {exp[:80]!r}")
