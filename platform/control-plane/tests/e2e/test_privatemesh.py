"""The private-mesh helper's pure parts: what the clone holds, what the README extraction reads."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .privatemesh import bash_blocks, clone_checkout


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
