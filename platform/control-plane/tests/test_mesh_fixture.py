"""The synthetic mesh (and the repository's own) pass every rule: the baseline the rule tests break."""

from pathlib import Path

from conftest import violations


def test_synthetic_mesh_is_clean(mesh: Path) -> None:
    assert violations(mesh) == []


def test_synthetic_mesh_clean_against_its_own_base(mesh: Path) -> None:
    assert violations(mesh, base="HEAD") == []
