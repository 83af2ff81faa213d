"""Downloads against the tests' own HTTP server (real sockets, real httpx): resumed after a cut,
checked, landed atomically; bad input leaves nothing behind."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from homelab.errors import InputError
from homelab.models import download
from homelab.models.source import parse_source

from .fileserver import FileServer, Served

BLOB = os.urandom(3 * download.CHUNK + 12345)  # several chunks, not a multiple of one
SHA = hashlib.sha256(BLOB).hexdigest()


class Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.advanced = 0

    def start(self, what: str, total: int | None, done: int) -> None:
        self.lines.append(f"start {what} {total} {done}")

    def advance(self, n: int) -> None:
        self.advanced += n

    def note(self, message: str) -> None:
        self.lines.append(message)

    def finish(self) -> None:
        self.lines.append("finish")


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cut_download_resumes_with_range_and_lands_whole(tmp_path: Path) -> None:
    served = Served({"/m/model.gguf": BLOB}, cut_after=download.CHUNK + 7, cuts=1)
    dest = tmp_path / "added" / "jerry-x.gguf"
    notes = Notes()
    with FileServer(served) as srv:
        landed = download.obtain(parse_source(f"{srv.base}/m/model.gguf", tmp_path), dest,
                                 sha256=SHA, reporter=notes)
    assert dest.read_bytes() == BLOB and landed.sha256 == SHA and landed.size == len(BLOB)
    assert landed.resumed_at == [download.CHUNK + 7]
    assert [r[2] for r in served.requests] == [None, f"bytes={download.CHUNK + 7}-"]
    assert f"resuming at byte {download.CHUNK + 7}" in notes.lines
    assert _left(dest.parent) == ["jerry-x.gguf"]  # no .part, no origin file


def test_partial_file_of_an_interrupted_run_is_resumed_by_the_next(tmp_path: Path) -> None:
    dest = tmp_path / "jerry-x.gguf"
    served = Served({"/model.gguf": BLOB}, cut_after=5000, cuts=download.RETRIES + 1)
    with FileServer(served) as srv:
        url = f"{srv.base}/model.gguf"
        with pytest.raises(InputError, match="run the same command again to resume"):
            download.obtain(parse_source(url, tmp_path), dest, sha256=SHA)
        have = 5000 * (download.RETRIES + 1)  # every retry resumed and got 5000 more bytes
        assert not dest.exists() and download.part_path(dest).stat().st_size == have
        served.requests.clear()
        landed = download.obtain(parse_source(url, tmp_path), dest, sha256=SHA)
    assert served.requests[0][2] == f"bytes={have}-" and landed.resumed_at == [have]
    assert dest.read_bytes() == BLOB


def test_partial_file_of_another_url_is_not_resumed(tmp_path: Path) -> None:
    dest = tmp_path / "jerry-x.gguf"
    download.part_path(dest).write_bytes(b"x" * 100)  # no record of where it came from
    with FileServer(Served({"/model.gguf": BLOB})) as srv:
        landed = download.obtain(parse_source(f"{srv.base}/model.gguf", tmp_path), dest, sha256=SHA)
    assert landed.resumed_at == [] and dest.read_bytes() == BLOB


def test_checksum_mismatch_keeps_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "jerry-x.gguf"
    with FileServer(Served({"/model.gguf": BLOB})) as srv:
        with pytest.raises(InputError) as err:
            download.obtain(parse_source(f"{srv.base}/model.gguf", tmp_path), dest, sha256="0" * 64)
    assert "checksum mismatch: expected sha256 " + "0" * 64 + f", got {SHA}" in str(err.value)
    assert _left(tmp_path) == []


def test_http_error_names_the_status(tmp_path: Path) -> None:
    with FileServer(Served({})) as srv:
        with pytest.raises(InputError, match="HTTP 404"):
            download.obtain(parse_source(f"{srv.base}/missing.gguf", tmp_path), tmp_path / "m.gguf")
    assert _left(tmp_path) == []


@pytest.mark.parametrize("kind", ["url", "path"])
def test_disk_full_removes_the_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            kind: str) -> None:
    written = {"n": 0}
    real = download._write

    def full(fh: object, data: bytes) -> None:  # the disk fills up after 2 chunks
        if written["n"] >= 2 * download.CHUNK:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written["n"] += len(data)
        real(fh, data)

    monkeypatch.setattr(download, "_write", full)
    src = tmp_path / "src" / "model.gguf"
    src.parent.mkdir()
    src.write_bytes(BLOB)
    dest = tmp_path / "added" / "jerry-x.gguf"
    with FileServer(Served({"/model.gguf": BLOB})) as srv:
        text = f"{srv.base}/model.gguf" if kind == "url" else str(src)
        with pytest.raises(InputError) as err:
            download.obtain(parse_source(text, tmp_path), dest)
    assert "disk full while writing the model file" in str(err.value)
    assert _left(dest.parent) == []


def test_local_copy_is_verified_and_atomic(tmp_path: Path) -> None:
    src = tmp_path / "model.gguf"
    src.write_bytes(BLOB)
    dest = tmp_path / "added" / "jerry-x.gguf"
    landed = download.obtain(parse_source("model.gguf", tmp_path), dest, sha256=SHA)
    assert landed.path == dest and dest.read_bytes() == BLOB
    assert _left(dest.parent) == ["jerry-x.gguf"]
