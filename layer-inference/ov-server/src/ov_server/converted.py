"""GGUF -> OpenVINO IR, converted once and kept: `{model_dir}/converted/<key>/`.

Why: OpenVINO GenAI builds the model graph and the tokenizer from a GGUF at every load (seconds
for SmolLM2: the tokenizer converts its 49k-token vocabulary, the model its weights), and an engine
restart (a crash, a registry edit) would pay it again. The first load of a GGUF has OpenVINO save
what it converted (`enable_save_ov_model`, which writes next to the path it loads: a symlink in a
temporary folder), and the folder is renamed into place once complete; later loads read the IR.
It is the model's ONE cache: the tokenizer IR the HTTP process reads is in the same folder.

- Key: the GGUF's resolved path, size and mtime, and the OpenVINO / GenAI / tokenizers versions:
  a new package version of the model or of OpenVINO converts again (and the older conversion of
  the same file is removed).
- Complete: `manifest.json` is written last and lists every file with its size; a folder without
  it, or with a file missing or of another size, is discarded and converted again.
- Crash-safe: a load from the cache leaves `.loading-<pid>` until it is done. An engine that died
  while loading from the cache leaves a marker of a dead pid: the next load does not trust that
  folder and converts again (a native crash on a bad IR cannot become a crash loop). Leftover
  temporary folders of dead processes are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("ov_server.converted")

CACHE_DIRNAME = "converted"
MANIFEST = "manifest.json"
TOKENIZER_FILES = ("openvino_tokenizer.xml", "openvino_tokenizer.bin", "openvino_detokenizer.xml",
                   "openvino_detokenizer.bin")
MODEL_FILES = ("openvino_model.xml", "openvino_model.bin")
TMP_PREFIX = ".converting-"
LOADING_PREFIX = ".loading-"

# (IR path or GGUF path, tokenizer, extra compile properties) -> pipeline
PipelineBuilder = Callable[[str, Any, dict[str, Any]], Any]


def versions() -> dict[str, str]:
    import openvino
    import openvino_genai
    import openvino_tokenizers

    return {"openvino": openvino.__version__, "openvino_genai": openvino_genai.__version__,
            "openvino_tokenizers": openvino_tokenizers.__version__}


def cache_key(gguf: Path, vers: dict[str, str]) -> str:
    st = gguf.stat()
    ident = json.dumps([str(gguf.resolve()), st.st_size, st.st_mtime_ns, vers], sort_keys=True)
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_of(name: str, prefix: str) -> int | None:
    tail = name[len(prefix):].split("-", 1)[0]
    return int(tail) if tail.isdigit() else None


def problem(folder: Path, files: tuple[str, ...]) -> str | None:
    """None if `folder` is a complete conversion holding `files`, else what is wrong with it."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        sizes = manifest["files"]
    except FileNotFoundError:
        return "no manifest (conversion never finished)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable manifest: {exc}"
    for name in files:
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if sizes.get(name) != path.stat().st_size:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {sizes.get(name)}"
    for marker in folder.glob(LOADING_PREFIX + "*"):
        pid = _pid_of(marker.name, LOADING_PREFIX)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            return f"a load from it died (process {pid}): not trusted any more"
    return None


def _discard(folder: Path) -> None:
    """Move aside (atomic), then delete: a half-deleted folder is never mistaken for a cache."""
    trash = folder.with_name(f"{TMP_PREFIX}{os.getpid()}-trash-{folder.name}")
    try:
        folder.rename(trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _sweep(root: Path) -> None:
    """Remove temporary folders whose process is gone (it died converting)."""
    for tmp in root.glob(TMP_PREFIX + "*"):
        pid = _pid_of(tmp.name, TMP_PREFIX)
        if pid is not None and not _alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def cached_folder(gguf: Path, cache_root: Path) -> Path | None:
    """The complete conversion of `gguf` (model and tokenizer) under `cache_root`, if there is one."""
    target = cache_root / CACHE_DIRNAME / cache_key(gguf, versions())
    return target if target.is_dir() and problem(target, TOKENIZER_FILES + MODEL_FILES) is None else None


def _prune(root: Path, source: str, keep: Path) -> None:
    """Remove older conversions of the same file (another size, mtime or OpenVINO): ~100 MB each."""
    for folder in root.iterdir():
        if folder == keep or folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            old = json.loads((folder / MANIFEST).read_text()).get("source")
        except (OSError, ValueError, AttributeError):
            continue
        if old == source:
            log.info("removing %s, an older conversion of %s", folder, source)
            _discard(folder)


def load_converted(g: Any, gguf: Path, cache_root: Path, build: PipelineBuilder | None
                   ) -> tuple[Any, Any, Path, bool]:
    """(tokenizer, pipeline or None, IR folder, read from the cache) for the GGUF at `gguf`.

    `build` None converts the tokenizer only (and caches only it)."""
    files = TOKENIZER_FILES + (MODEL_FILES if build is not None else ())
    vers = versions()
    target = cache_root / CACHE_DIRNAME / cache_key(gguf, vers)
    if target.is_dir():
        why = problem(target, files)
        if why is None:
            marker = target / f"{LOADING_PREFIX}{os.getpid()}"
            try:
                marker.touch()
                tok = g.Tokenizer(str(target))
                pipe = build(str(target), tok, {}) if build is not None else None
                return tok, pipe, target, True
            except Exception as exc:  # a damaged IR that still has the right sizes
                why = f"loading it failed: {exc}"
            finally:
                marker.unlink(missing_ok=True)
        log.warning("converted model %s: %s; converting %s again", target, why, gguf)
        _discard(target)
    return (*_convert(g, gguf, target, files, vers, build), False)


def _convert(g: Any, gguf: Path, target: Path, files: tuple[str, ...], vers: dict[str, str],
             build: PipelineBuilder | None) -> tuple[Any, Any, Path]:
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=root))
    try:
        link = tmp / "model.gguf"
        link.symlink_to(gguf.resolve())
        tok = g.Tokenizer(str(link), enable_save_ov_model=True)
        pipe = build(str(link), tok, {"enable_save_ov_model": True}) if build is not None else None
        link.unlink()
        missing = [f for f in files if not (tmp / f).is_file()]
        if missing:
            raise RuntimeError(f"OpenVINO did not write {', '.join(missing)} for {gguf}")
        manifest = {"source": str(gguf.resolve()), "versions": vers,
                    "files": {f: (tmp / f).stat().st_size for f in files}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        try:
            tmp.rename(target)
        except OSError:  # another engine wrote it meanwhile: theirs is as good
            if problem(target, files) is not None:
                raise
        _prune(root, manifest["source"], keep=target)
        return tok, pipe, target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename; else a leftover
