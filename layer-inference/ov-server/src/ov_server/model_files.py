"""Where a model's files are and what its metadata says (no OpenVINO here)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from . import gguf_header
from .chat_model import MODEL_NAME as CHAT_NAME
from .chat_model import chat_model_path
from .registry import ModelSpec
from .tiny_model import build_tiny_model

log = logging.getLogger("ov_server.models")

DEFAULT_CONTEXT = 4096


def resolve_model_path(spec: ModelSpec, model_dir: Path) -> Path:
    """The model's file or folder; the built-in tiny model is written (idempotently) on the way."""
    if spec.builtin == CHAT_NAME:
        return chat_model_path()
    if spec.builtin is not None:
        return build_tiny_model(model_dir)
    assert spec.path is not None
    path = Path(spec.path)
    if not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist")
    if path.is_dir() and not (path / "openvino_model.xml").is_file():
        raise FileNotFoundError(f"{path} is not an OpenVINO IR folder (no openvino_model.xml)")
    return path


def read_context_length(path: Path) -> int | None:
    """Context window from GGUF metadata or an IR folder's config.json."""
    try:
        if path.suffix == ".gguf":
            return gguf_header.context_length(path)
        cfg = path / "config.json"
        if cfg.is_file():
            data = json.loads(cfg.read_text())
            for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
                if isinstance(data.get(key), int):
                    return int(data[key])
    except Exception as exc:  # metadata is a hint; fall back to the default
        log.warning("could not read context length from %s: %s", path, exc)
    return None
