"""meshkit.envfile: the one env-file parser (runtime, ov-server, the gateway's start.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshkit.envfile import EnvFileError, exports, parse, read, read_if_exists


def test_the_accepted_subset() -> None:
    text = "# c\n\nA=1\n  export B = \"two words\"\nC='x=y'\nD=\nA=2\n"
    assert parse(text) == {"A": "2", "B": "two words", "C": "x=y", "D": ""}


@pytest.mark.parametrize("line", ["bad line", "=x", "1A=x", "A B=x", "export"])
def test_a_malformed_line_names_file_and_line(line: str) -> None:
    with pytest.raises(EnvFileError) as exc:
        parse(f"OK=1\n{line}\n", "x.env")
    assert (exc.value.path, exc.value.line) == ("x.env", 2)
    assert str(exc.value) == f"x.env:2: expected KEY=VALUE, got {line!r}"


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match=r"nope.env: not found"):
        read(tmp_path / "nope.env")
    assert read_if_exists(tmp_path / "nope.env") == {}
    (tmp_path / "bin.env").write_bytes(b"A=\xff\n")
    with pytest.raises(EnvFileError, match="bin.env: not UTF-8"):
        read(tmp_path / "bin.env")


def test_exports_quote_for_the_shell_and_let_the_environment_win() -> None:
    values = {"A": "it's $HOME", "B": "b"}
    assert exports(values) == "export A='it'\"'\"'s $HOME'\nexport B=b\n"
    assert exports(values, {"A": "set"}) == "export B=b\n"


def test_command_for_shell_launchers(tmp_path: Path) -> None:
    good = tmp_path / "good.env"
    good.write_text("A='x y'\nB=2\n")
    script = f'eval "$({sys.executable} -m meshkit.envfile --export --missing-only {good})"; echo "$A|$B"'
    out = subprocess.run(["bash", "-c", script], env={"B": "env wins", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True)
    assert out.stdout == "x y|env wins\n"
    bad = tmp_path / "bad.env"
    bad.write_text("A=1\noops\n")
    proc = subprocess.run([sys.executable, "-m", "meshkit.envfile", "--export", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"error: {bad}:2: expected KEY=VALUE, got 'oops'\n"
