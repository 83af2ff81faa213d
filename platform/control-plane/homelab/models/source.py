"""Where `homelab models add --from` takes a model file from (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from homelab.errors import InputError

ARG = "homelab models add --from"
# hf:OWNER/REPO/PATH/IN/REPO.gguf, optionally @REVISION at the end (a branch, tag or commit).
_HF = re.compile(r"^hf:(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)/(?P<file>[^@]+?)(@(?P<rev>[\w./-]+))?$")


@dataclass(frozen=True)
class Source:
    kind: Literal["path", "url", "hf"]
    text: str  # as given
    path: Path | None = None  # kind path
    url: str = ""  # kind url
    repo_id: str = ""  # kind hf
    filename: str = ""  # kind hf: the file's path inside the repo
    revision: str | None = None  # kind hf

    @property
    def basename(self) -> str:
        if self.kind == "path":
            assert self.path is not None
            return self.path.name
        if self.kind == "hf":
            return self.filename.rsplit("/", 1)[-1]
        return urlsplit(self.url).path.rsplit("/", 1)[-1]


def parse_source(text: str, cwd: Path) -> Source:
    """PATH, http(s)://URL or hf:REPO/FILE[@REV]; errors name the argument and what was expected."""
    if text.startswith("hf:"):
        m = _HF.match(text)
        if m is None:
            raise InputError.one(ARG, f"{text!r}: expected hf:OWNER/REPO/FILE (e.g. "
                                      "hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2.q8_0.gguf)")
        return Source("hf", text, repo_id=m["repo"], filename=m["file"], revision=m["rev"])
    scheme = urlsplit(text).scheme
    if scheme in ("http", "https"):
        if not urlsplit(text).netloc or not urlsplit(text).path.rsplit("/", 1)[-1]:
            raise InputError.one(ARG, f"{text!r}: a URL must name a file (http://host/path/model.gguf)")
        return Source("url", text, url=text)
    if scheme and len(scheme) > 1:  # "C:" is not a scheme here, but ftp:, s3: ... are
        raise InputError.one(ARG, f"{text!r}: unsupported scheme {scheme!r} (a path, http(s):// or hf:)")
    path = (cwd / Path(text).expanduser()).resolve()
    if not path.exists():
        raise InputError.one(ARG, f"{text!r}: no such file ({path})")
    if not path.is_file():
        raise InputError.one(ARG, f"{text!r}: not a file ({path}); give the model's .gguf file")
    return Source("path", text, path=path)
