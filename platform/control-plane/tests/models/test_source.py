"""`--from` parsing (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from homelab.errors import InputError
from homelab.models.source import parse_source


def test_hf_repo_file_and_revision(tmp_path: Path) -> None:
    s = parse_source("hf:acme/tiny-GGUF/sub/dir/model.q8_0.gguf@v1.2", tmp_path)
    assert (s.kind, s.repo_id, s.filename, s.revision, s.basename) == (
        "hf", "acme/tiny-GGUF", "sub/dir/model.q8_0.gguf", "v1.2", "model.q8_0.gguf")
    assert parse_source("hf:acme/tiny/model.gguf", tmp_path).revision is None


def test_url_and_path(tmp_path: Path) -> None:
    assert parse_source("https://host:8080/a/b.gguf?x=1", tmp_path).basename == "b.gguf"
    (tmp_path / "m.gguf").write_bytes(b"x")
    assert parse_source("m.gguf", tmp_path).path == (tmp_path / "m.gguf").resolve()


@pytest.mark.parametrize(("text", "says"), [
    ("hf:onlyrepo", "expected hf:OWNER/REPO/FILE"),
    ("hf:owner/repo", "expected hf:OWNER/REPO/FILE"),
    ("ftp://host/m.gguf", "unsupported scheme 'ftp'"),
    ("http://host/", "a URL must name a file"),
    ("nope.gguf", "no such file"),
    (".", "not a file"),
])
def test_bad_sources_name_the_argument(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(InputError) as err:
        parse_source(text, tmp_path)
    assert str(err.value).startswith("homelab models add --from: ") and says in str(err.value)
