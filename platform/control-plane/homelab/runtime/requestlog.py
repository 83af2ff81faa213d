"""One request's path through the mesh, from the services' logs (`homelab logs --request ID`).

Every service writes `rid=ID` in each log line about a request (meshkit.requestid): the gateway,
OptiLLM and ov-server see the same id, because the gateway forwards it with every backend call.
This module finds those lines in every service's log (rotated files included), keeps the lines
without a timestamp that follow a match (a traceback belongs to its line), and orders everything
by time, each line named by its service. Pure: file reading is the caller's `read`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# Python logging's default asctime, which every mesh service's format starts with.
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})")
_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what meshkit.requestid accepts


@dataclass(frozen=True)
class Line:
    when: datetime | None  # None: the file has no timestamp before it
    service: str
    text: str

    def render(self) -> str:
        return f"{self.service}: {self.text}"


def valid_id(rid: str) -> bool:
    return _ID.fullmatch(rid) is not None


def _stamp(text: str) -> datetime | None:
    m = _STAMP.match(text)
    if m is None:
        return None
    try:
        return datetime.strptime(f"{m.group(1)}.{m.group(2)}000", "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return None


def matches(text: str, rid: str) -> bool:
    """The line names exactly this id (`rid=ab` does not match `rid=abc`)."""
    return re.search(r"(?:^|[\s\[])rid=" + re.escape(rid) + r"(?![A-Za-z0-9._:-])", text) is not None


def search(service: str, lines: Iterable[str], rid: str) -> list[Line]:
    out: list[Line] = []
    when: datetime | None = None
    inside = False  # the previous stamped line matched: unstamped lines after it belong to it
    for text in lines:
        stamp = _stamp(text)
        if stamp is not None:
            when = stamp
            inside = matches(text, rid)
            if inside:
                out.append(Line(when, service, text))
        elif inside and text.strip():
            out.append(Line(when, service, text))
    return out


def log_files(logs_dir: Path, service: str) -> list[Path]:
    """NAME.log and supervisord's rotated NAME.log.1.. , oldest first."""
    rotated = sorted(logs_dir.glob(f"{service}.log.*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    current = logs_dir / f"{service}.log"
    return [*rotated, *([current] if current.exists() else [])]


def trace(services: Iterable[str], rid: str, read: Callable[[str], Iterable[str]]) -> list[Line]:
    """Every service's lines about `rid`, in time order (stable: a service's own order is kept)."""
    found: list[Line] = []
    for service in services:
        found += search(service, read(service), rid)
    return sorted(found, key=lambda line: line.when or datetime.min)
