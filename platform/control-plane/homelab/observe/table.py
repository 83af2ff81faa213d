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


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def latency(f: ModelFigures) -> tuple[str, str]:
    """p50/p99 over the last window; since start (marked *) when the window had no request."""
    if f.p50_s is not None:
        return _ms(f.p50_s), _ms(f.p99_s)
    if f.p50_s_all is not None:
        return _ms(f.p50_s_all) + "*", _ms(f.p99_s_all) + "*"
    return "-", "-"


def health_text(row: ServiceRow, extra: str = "") -> Text:
    if row.healthy:
        return Text("up" + extra, style="green")
    if row.healthy is None:
        return Text("-" if row.metrics_error is None else "?", style="dim")
    return Text("down" if row.required else "down (opt-in)",
                style="bold red" if row.required else "yellow")


def render(view: list[ServiceRow], title: str) -> Group:
    """The table, then one line per problem (errors are long; they would squeeze the figures)."""
    table = Table(title=title, title_justify="left", expand=False, box=box.SIMPLE_HEAD,
                  padding=(0, 1), collapse_padding=True, pad_edge=False)
    widest = {"service": max((len(r.service) for r in view), default=7),
              "model": max((len(m) for r in view for m in r.models), default=5),
              "p50": 7, "p99": 7, "health": 6}  # "120 ms*", "down (opt-in)" may be cut
    for col, justify in (("service", "left"), ("model", "left"), ("health", "left"),
                         ("req/s", "right"), ("tok/s", "right"), ("p50", "right"),
                         ("p99", "right"), ("queue", "right"), ("KV", "right"),
                         ("reqs", "right")):
        # Every column keeps its header's width at least: names and figures never shrink.
        table.add_column(col, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                         min_width=max(len(col), widest.get(col, 0)))
    notes: list[Text] = []
    for row in view:
        note = row.health_error or row.metrics_error
        if note:
            notes.append(Text(f"{row.service}: {note}", style="dim"))
        extra = f" ({row.in_flight:.0f} in flight)" if row.in_flight else ""
        table.add_row(row.service, "", health_text(row, extra), "", "", "", "", "", "", "")
        for model, f in row.models.items():
            p50, p99 = latency(f)
            reqs = f"{f.requests_total:.0f}" + (f" ({f.errors_total:.0f} err)" if f.errors_total else "")
            if f.loaded is False:
                reqs += " not loaded"
            table.add_row("", model, "", _num(f.requests_per_s), _num(f.tokens_per_s), p50, p99,
                          _num(f.waiting, "{:.0f}"),
                          _num(None if f.kv_usage is None else f.kv_usage * 100, "{:.0f}%"), reqs)
    return Group(table, *notes)
