"""`homelab top`'s unusable input: a clear line, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

from test_bad_input import run_cli


def test_json_without_once(mesh: Path) -> None:
    code, _, err = run_cli(mesh, "top", "--json")
    assert code == 2 and "--json goes with --once" in err


def test_unknown_host(mesh: Path) -> None:
    code, _, err = run_cli(mesh, "top", "--once", "--host", "nosuch")
    assert code == 2
    assert err.strip() == "error: command line: --host nosuch: no such host in mesh/mesh.yaml"


def test_interval_out_of_range(mesh: Path) -> None:
    code, _, err = run_cli(mesh, "top", "--interval", "0")
    assert code == 2 and "--interval" in err and "Traceback" not in err
