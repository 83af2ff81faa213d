"""Policy rules. Each rule module exposes `check(ctx) -> Iterable[Violation]`; codes are stable
and documented in docs/foundation/rules.md."""
