"""The private-mesh helper's pure parts: what the clone holds, what the README extraction reads."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from meshkit.testing import PrivateMesh, bash_blocks, clone_checkout, netns_unavailable


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout


def test_clone_is_head_plus_the_working_tree_changes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _git(src, "init", "-q")
    for name, text in {"kept.txt": "v1\n", "edited.txt": "v1\n", "deleted.txt": "x\n",
                       ".gitignore": "*.secret\n"}.items():
        (src / name).write_text(text)
    _git(src, "add", "-A")
    _git(src, "commit", "-qm", "base")
    (src / "edited.txt").write_text("v2, not committed\n")
    (src / "deleted.txt").unlink()
    (src / "new").mkdir()
    (src / "new/file.txt").write_text("untracked\n")
    (src / "local.secret").write_text("ignored: never copied\n")

    dst = clone_checkout(src, tmp_path / "clone")
    assert (dst / "kept.txt").read_text() == "v1\n"
    assert (dst / "edited.txt").read_text() == "v2, not committed\n"
    assert not (dst / "deleted.txt").exists()
    assert (dst / "new/file.txt").read_text() == "untracked\n"
    assert not (dst / "local.secret").exists()
    assert _git(dst, "status", "--porcelain") == ""  # starts clean: later changes show
    assert _git(src, "status", "--porcelain") != ""  # the source is left as it was


def test_bash_blocks_are_read_exactly() -> None:
    text = "intro\n```bash\n./x up   # comment\n```\n```python\nno\n```\n```bash\na \\\n  b\n```\n"
    assert bash_blocks(text) == ["./x up   # comment\n", "a \\\n  b\n"]


WHY_NOT = netns_unavailable()
needs_netns = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


@needs_netns
def test_commands_run_on_private_ports_and_a_private_etc(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _git(src, "init", "-q")
    (src / "README.md").write_text("a checkout\n")
    _git(src, "add", "-A")
    _git(src, "commit", "-qm", "base")
    with PrivateMesh.create(tmp_path / "work", repo=src) as mesh:
        (mesh.etc / "svc.env").write_text("SVC_MODE=private\n")
        seen = mesh.run(["cat", "/etc/homelab-llm/svc.env"])
        assert seen.returncode == 0 and seen.stdout == "SVC_MODE=private\n", seen.stderr
        # A contract port taken on the host is free inside, and what listens inside is unseen outside.
        with socket.create_server(("127.0.0.1", 0)) as outside:
            port = outside.getsockname()[1]
            with mesh.netns.entered():
                inside = socket.create_server(("127.0.0.1", port))
            with inside, socket.socket() as probe:
                probe.settimeout(2)
                probe.connect(("127.0.0.1", port))  # reaches `outside`, not `inside`
                inside.settimeout(0.5)
                with pytest.raises(TimeoutError):
                    inside.accept()
        assert mesh.bash("pwd").stdout.strip() == str(mesh.root)
        mesh.bash("sleep 600 >/dev/null 2>&1 &")
        assert mesh.netns.pids(), "the background process should live in the namespace"
    assert mesh.netns.pids() == []  # close() stopped it
    assert not (Path("/etc") / "homelab-llm" / "svc.env").exists()  # the host's /etc untouched
