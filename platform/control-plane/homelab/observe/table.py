"""The rich table `homelab top` draws from its rows (formatting only)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from homelab.observe.stats import ModelFigures
from homelab.observe.rows import ServiceRow


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _rate(value: float | None) -> str:
    # Whole numbers from 100 up: "1234" fits a 5-wide column, "1234.5" would be cut.
    return _num(value, "{:.0f}" if value is not None and value >= 100 else "{:.1f}")


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}ms" if value < 10 else f"{value:.1f}s"


def latency(f: ModelFigures) -> tuple[str, str]:
    """p50/p99 over the last window; since start (marked *) when the window had no request."""
    if f.p50_s is not None:
        return _ms(f.p50_s), _ms(f.p99_s)
    if f.p50_s_all is not None:
        return _ms(f.p50_s_all) + "*", _ms(f.p99_s_all) + "*"
    return "-", "-"


def health_text(row: ServiceRow) -> Text:
    if row.healthy:
        return Text("up", style="green")
    if row.healthy is None:
        return Text("-" if row.metrics_error is None else "?", style="dim")
    # An opt-in service that is not running is "off", not a fault.
    return Text("down", style="bold red") if row.required else Text("off", style="yellow")


# Column, justify, minimum width. Figures keep their width so that, in a narrow terminal, only a
# long name is cut (with an ellipsis), never a number. Fits 80 columns with the mesh's names.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("name", "left", 0), ("health", "left", 6), ("req/s", "right", 5), ("tok/s", "right", 5),
    ("p50", "right", 6), ("p99", "right", 6), ("run", "right", 3), ("wait", "right", 4),
    ("KV", "right", 4), ("reqs", "right", 5), ("err", "right", 3),
)
MODEL_INDENT = " "


def render(view: list[ServiceRow], title: str) -> Group:
    """The table (a service row, then one indented row per model), then one line per problem
    (errors are long; they would squeeze the figures)."""
    table = Table(title=title, title_justify="left", expand=False, box=box.SIMPLE_HEAD,
                  padding=0, show_edge=False)
    for col, justify, width in COLUMNS:
        table.add_column(col, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                         min_width=width or None, overflow="ellipsis")
    notes: list[Text] = []
    for row in view:
        note = row.health_error or row.metrics_error
        if note:
            notes.append(Text(f"{row.service}: {note}", style="dim"))
        # The gateway's requests in flight go in the "run" column of its own row.
        table.add_row(Text(row.service, style="bold"), health_text(row), "", "", "", "",
                      _num(row.in_flight, "{:.0f}") if row.in_flight is not None else "",
                      "", "", "", "")
        for model, f in row.models.items():
            p50, p99 = latency(f)
            state = Text("unload", style="yellow") if f.loaded is False else Text("")
            table.add_row(MODEL_INDENT + model, state, _rate(f.requests_per_s), _rate(f.tokens_per_s),
                          p50, p99, _num(f.running, "{:.0f}"), _num(f.waiting, "{:.0f}"),
                          _num(None if f.kv_usage is None else f.kv_usage * 100, "{:.0f}%"),
                          f"{f.requests_total:.0f}", f"{f.errors_total:.0f}")
    return Group(table, *notes)
