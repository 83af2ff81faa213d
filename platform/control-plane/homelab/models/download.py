"""Bring a model file to disk: copied, downloaded over HTTP(S) or from a Hugging Face repo.

Every way ends the same: the bytes go to `.<name>.part` in the destination's own folder, are
counted and hashed, checked (size, and sha256 when given), fsynced and renamed into place, so a
backend can never read half a file. An HTTP download cut off resumes where it stopped (Range),
within the run (a few retries) and in the next run (the `.part` file and the URL it came from stay
until the file lands or a check fails). Hugging Face files go through `huggingface_hub` (it honours
HF_ENDPOINT and resumes by itself) into a folder beside the destination, then land the same way.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from homelab.errors import InputError
from homelab.models.source import Source

CHUNK = 1 << 20
RETRIES = 5  # connection drops resumed within one run
HF_DIR = ".hf-download"  # huggingface_hub's local_dir, beside the landed files


class Reporter(Protocol):
    def start(self, what: str, total: int | None, done: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...


class Quiet:
    def start(self, what: str, total: int | None, done: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...


@dataclass(frozen=True)
class Landed:
    path: Path
    size: int
    sha256: str
    resumed_at: list[int]  # byte offsets a download resumed from (empty: one go)


class DiskFull(OSError):
    pass


def _write(fh: object, data: bytes) -> None:
    """The one place bytes are written (a test injects ENOSPC here)."""
    fh.write(data)  # type: ignore[attr-defined]


def part_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.part")


def _origin_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.part.from")


def discard_partial(dest: Path) -> None:
    for p in (part_path(dest), _origin_path(dest)):
        p.unlink(missing_ok=True)


def _hash_file(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _land(tmp: Path, dest: Path, source: Source, expected_sha: str | None,
          expected_size: int | None, resumed: list[int]) -> Landed:
    """Check `tmp`, then rename it to `dest` (atomic: same folder). A failed check deletes it."""
    size, digest = _hash_file(tmp)
    problem = None
    if expected_size is not None and size != expected_size:
        problem = f"size mismatch: the server announced {expected_size} bytes, got {size}"
    elif expected_sha is not None and digest != expected_sha:
        problem = f"checksum mismatch: expected sha256 {expected_sha}, got {digest}"
    if problem:
        tmp.unlink(missing_ok=True)
        _origin_path(dest).unlink(missing_ok=True)
        raise InputError.one(f"{source.text}", f"{problem}; nothing was kept or registered")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)
    _origin_path(dest).unlink(missing_ok=True)
    _fsync_dir(dest.parent)
    return Landed(dest, size, digest, resumed)


def _disk_error(dest: Path, exc: OSError) -> InputError:
    """Disk full (or another write failure): the partial file is removed (it frees the space)."""
    discard_partial(dest)
    if exc.errno == errno.ENOSPC:
        return InputError.one(str(dest.parent), "disk full while writing the model file; the partial "
                                                "file was removed and nothing was registered")
    return InputError.one(str(dest.parent), f"cannot write the model file: {exc.strerror or exc}; "
                                            "nothing was registered")


def obtain(source: Source, dest: Path, *, sha256: str | None = None,
           reporter: Reporter | None = None) -> Landed:
    """The file of `source` verified at `dest` (which must not exist yet)."""
    reporter = reporter or Quiet()
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source.kind == "path":
            return _copy(source, dest, sha256, reporter)
        if source.kind == "url":
            return _download(source, dest, sha256, reporter)
        return _hf(source, dest, sha256, reporter)
    except OSError as exc:
        raise _disk_error(dest, exc) from None
    finally:
        reporter.finish()


def _copy(source: Source, dest: Path, sha256: str | None, reporter: Reporter) -> Landed:
    assert source.path is not None
    tmp = part_path(dest)
    total = source.path.stat().st_size
    reporter.start(f"copy {source.path.name}", total, 0)
    with source.path.open("rb") as src, tmp.open("wb") as out:
        while block := src.read(CHUNK):
            _write(out, block)
            reporter.advance(len(block))
    return _land(tmp, dest, source, sha256, total, [])


def _total_of(resp: httpx.Response, offset: int) -> int | None:
    """The whole file's size from Content-Range (206) or Content-Length (200)."""
    cr = resp.headers.get("content-range", "")
    if resp.status_code == 206 and "/" in cr and cr.rsplit("/", 1)[1].isdigit():
        return int(cr.rsplit("/", 1)[1])
    cl = resp.headers.get("content-length")
    return int(cl) + offset if cl and cl.isdigit() else None


def _range_start(resp: httpx.Response) -> int | None:
    cr = resp.headers.get("content-range", "")  # "bytes 100-199/200"
    try:
        return int(cr.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _download(source: Source, dest: Path, sha256: str | None, reporter: Reporter) -> Landed:
    tmp, origin = part_path(dest), _origin_path(dest)
    if tmp.exists() and (not origin.is_file() or origin.read_text() != source.url):
        tmp.unlink()  # a partial file of another URL: start over
    origin.write_text(source.url)
    resumed: list[int] = []
    total: int | None = None
    failures = 0
    with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, connect=10.0),
                      trust_env=True) as client:
        while True:
            have = tmp.stat().st_size if tmp.exists() else 0
            headers = {"Range": f"bytes={have}-", "Accept-Encoding": "identity"} if have else \
                {"Accept-Encoding": "identity"}
            try:
                with client.stream("GET", source.url, headers=headers) as resp:
                    if resp.status_code == 416 and have:
                        tmp.unlink()  # the partial file is not a prefix of this one any more
                        continue
                    if resp.status_code not in (200, 206):
                        discard_partial(dest)
                        raise InputError.one(source.text, f"HTTP {resp.status_code} from the server; "
                                                          "nothing was kept or registered")
                    if have and (resp.status_code == 200 or _range_start(resp) != have):
                        have = 0  # the server ignored the Range: take the whole file again
                        tmp.unlink()
                    elif have:
                        resumed.append(have)
                        reporter.note(f"resuming at byte {have}")
                    total = _total_of(resp, have)
                    reporter.start(f"download {source.basename}", total, have)
                    with tmp.open("ab") as out:
                        for block in resp.iter_bytes():
                            _write(out, block)
                            reporter.advance(len(block))
                break
            except httpx.TransportError as exc:  # cut off, reset, timed out: resume from what we have
                failures += 1
                if failures > RETRIES:
                    raise InputError.one(source.text, f"download failed {failures} times ({exc}); "
                                                      f"run the same command again to resume from "
                                                      f"the partial file {tmp}") from None
                reporter.note(f"connection lost ({type(exc).__name__}); retrying")
    return _land(tmp, dest, source, sha256, total, resumed)


def _hf(source: Source, dest: Path, sha256: str | None, reporter: Reporter) -> Landed:
    """huggingface_hub downloads (resuming by itself) into HF_DIR beside `dest`; then it lands."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    local_dir = dest.parent / HF_DIR
    reporter.note(f"from Hugging Face {source.repo_id} {source.filename}"
                  + (f"@{source.revision}" if source.revision else ""))
    try:
        got = Path(hf_hub_download(source.repo_id, source.filename, revision=source.revision,
                                   local_dir=local_dir))
    except HfHubHTTPError as exc:
        raise InputError.one(source.text, f"Hugging Face download failed: {str(exc).splitlines()[0]}") \
            from None
    except (httpx.TransportError, ValueError) as exc:
        raise InputError.one(source.text, f"Hugging Face download failed: {exc}") from None
    except OSError as exc:
        if exc.errno is not None:
            raise  # the disk (ENOSPC...): obtain() says so
        # huggingface_hub's own checks (e.g. "Consistency check failed": fewer bytes than announced)
        raise InputError.one(source.text, f"Hugging Face download failed: {str(exc).splitlines()[0]}") \
            from None
    tmp = part_path(dest)
    os.replace(got, tmp)  # same file system: HF_DIR is beside dest
    shutil.rmtree(local_dir, ignore_errors=True)  # its metadata describes a file that moved
    return _land(tmp, dest, source, sha256, None, [])


def iter_existing(folder: Path) -> Iterator[Path]:
    """Landed model files in `folder` (not partial ones)."""
    if folder.is_dir():
        yield from (p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith("."))
