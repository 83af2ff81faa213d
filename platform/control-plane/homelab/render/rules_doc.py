"""The rule tables of docs/foundation/rules.md, from the rule catalog (the text `check` prints)."""

from __future__ import annotations

from homelab.render.docs import replace_section, table
from homelab.rules.catalog import FAMILIES, RULES

RULES_DOC = "docs/foundation/rules.md"


def family_table(family: str) -> str:
    rows = [[f"{r.code}", r.name, r.catches, r.why, r.fix]
            for r in RULES.values() if r.family == family]
    return table(["code", "name", "what it catches", "why it exists", "fix (printed by `check`)"],
                 rows)


def render_rules_doc(current: str) -> str:
    text = current
    for family in FAMILIES:
        text = replace_section(text, f"rules {family}", family_table(family), RULES_DOC)
    return text
