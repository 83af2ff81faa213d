"""A copy of this checkout turned into a two-host mesh: a gateway host and an inference host.

Every service of the single host moves to the gateway host; ov-server moves to the inference host,
bound to that host's LAN address with `exposure: lan`, a LAN approval and a port-ledger entry,
exactly as docs/foundation/multi-host.md tells a person to do it.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[4]
HOMELAB = Path(sys.executable).with_name("homelab")  # the console script under test
BACKEND = "ov-server"
APPROVAL = "LAN-0900"


@dataclass(frozen=True)
class TwoHosts:
    root: Path
    gw_host: str
    gw_addr: str
    inf_host: str
    inf_addr: str

    def spec(self, service: str) -> Path:
        return next(self.root.glob(f"layer-*/{service}/SERVICE_SPEC.md"))


def copy_checkout(dst: Path, src: Path = REPO) -> Path:
    """Tracked files plus new, not-ignored ones (the working tree as a commit would have it)."""
    out = subprocess.run(["git", "-C", str(src), "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], capture_output=True, check=True, timeout=60)
    for rel in filter(None, out.stdout.decode().split("\0")):
        source = src / rel
        if source.is_file():  # a tracked file deleted in the working tree is skipped
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dst


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.width = 4096
    y.indent(mapping=2, sequence=2, offset=0)
    return y


def _edit_yaml(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    y = _yaml()
    tree = y.load(path.read_text(encoding="utf-8"))
    edit(tree)
    buf = io.StringIO()
    y.dump(tree, buf)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _set_front_matter(path: Path, changes: dict[str, str], after: dict[str, str] | None = None) -> None:
    """Set top-level `key: value` lines of a SERVICE_SPEC.md front matter (others untouched)."""
    text = path.read_text(encoding="utf-8")
    head, sep, body = text.partition("\n---\n")  # the closing marker of the front matter
    for key, value in changes.items():
        line = re.compile(rf"^{key}:.*$", re.M)
        if line.search(head):
            head = line.sub(f"{key}: {value}", head, count=1)
        else:
            anchor, new = next(iter((after or {}).items()))
            head = re.sub(rf"^({anchor}:.*)$", rf"\1\n{key}: {new}", head, count=1, flags=re.M)
    path.write_text(head + sep + body, encoding="utf-8")


def make_two_hosts(root: Path, gw_addr: str, inf_addr: str, *, gw_host: str = "gateway",
                   inf_host: str = "inference", approve: bool = True) -> TwoHosts:
    """Rewrite the copy at `root` into the two-host mesh (see the module docstring)."""
    mesh_file = root / "mesh/mesh.yaml"
    old_hosts = [h["name"] for h in _yaml().load(mesh_file.read_text())["hosts"]]
    today = dt.date.today()

    def mesh(tree) -> None:  # type: ignore[no-untyped-def]
        tree["hosts"] = [
            {"name": gw_host, "address": gw_addr, "role": "gateway: LiteLLM, OptiLLM, tools"},
            {"name": inf_host, "address": inf_addr, "role": "inference: ov-server"},
        ]
        tree["gateway"]["public_base_url"] = f"http://{gw_addr}:4000/v1"

    _edit_yaml(mesh_file, mesh)
    for spec in root.glob("layer-*/*/SERVICE_SPEC.md"):
        text = spec.read_text(encoding="utf-8")
        for old in old_hosts:
            text = re.sub(rf"^host: {re.escape(old)}$", f"host: {gw_host}", text, count=1, flags=re.M)
        spec.write_text(text, encoding="utf-8")

    backend = next(root.glob(f"layer-*/{BACKEND}/SERVICE_SPEC.md"))
    _set_front_matter(backend, {"host": inf_host, "bind": inf_addr, "exposure": "lan",
                                "approval": APPROVAL}, after={"exposure": APPROVAL})

    def ports(tree) -> None:  # type: ignore[no-untyped-def]
        for entry in tree["ports"]:
            if entry["host"] in old_hosts:
                entry["host"] = gw_host
                if entry["service"] == BACKEND and entry.get("status", "active") == "active":
                    entry["status"] = "retired"  # ports are immutable: retire, never reuse
                    entry["retired"] = today
                    entry["note"] = f"{BACKEND} moved to host {inf_host}"
        tree["ports"].append({"host": inf_host, "port": 4010, "service": BACKEND, "since": today})

    _edit_yaml(root / "mesh/ports.yaml", ports)

    def approvals(tree) -> None:  # type: ignore[no-untyped-def]
        for entry in tree["approvals"]:
            if entry["host"] in old_hosts:
                entry["host"] = gw_host
        if approve:
            tree["approvals"].append({
                "id": APPROVAL, "service": BACKEND, "host": inf_host, "who": "multihost test",
                "reviewer": "multihost reviewer",
                "date": today, "reason": "The gateway on another host must reach the backend."})

    _edit_yaml(root / "mesh/approvals.yaml", approvals)
    return TwoHosts(root, gw_host, gw_addr, inf_host, inf_addr)


def drop_approval(root: Path) -> None:
    def edit(tree) -> None:  # type: ignore[no-untyped-def]
        tree["approvals"] = [a for a in tree["approvals"] if a["id"] != APPROVAL]

    _edit_yaml(root / "mesh/approvals.yaml", edit)


def homelab(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the control plane under test (`uv run homelab ...`'s console script) on a checkout."""
    return subprocess.run([str(HOMELAB), "--repo", str(root), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=root)
