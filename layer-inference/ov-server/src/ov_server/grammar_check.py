"""Compile a request's structured-output grammar before it reaches the serving pipeline.

Why: OpenVINO GenAI compiles the grammar (XGrammar) only inside `step()`. A schema it cannot
compile (`{"type": "wat"}`, a dangling `$ref`, `minimum > maximum`, a lookahead in `pattern`, an
empty `enum`, ...) then raises from the step *and leaves the request in the pipeline*, so every
later step fails for every client until the process restarts (issue 10). JSON Schema's own
meta-schema catches only some of these (`schema_check.py`), so the engine process compiles each
new grammar first on a scratch pipeline of the built-in tiny model: the schema-to-grammar
conversion, where these errors come from, does not depend on the vocabulary. A failure poisons
only the scratch pipeline, which is rebuilt (~0.1 s).
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .errors import summarize_exception

log = logging.getLogger("ov_server.grammar")

CACHE_SIZE = 256
# The scratch pipeline: the built-in model on one f32 thread (safe on every CPU), a tiny KV cache.
SCRATCH_PROPERTIES = {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}
SCRATCH_BLOCKS = 8
MAX_STEPS = 4


class GrammarCheck:
    def __init__(self, ov_genai: Any, tiny_model: Path) -> None:
        self._g = ov_genai
        self._model = tiny_model
        self._pipe: Any = None
        self._verdicts: OrderedDict[str, str | None] = OrderedDict()
        self._ids = itertools.count()

    def _scratch(self) -> Any:
        if self._pipe is None:
            sc = self._g.SchedulerConfig()
            sc.cache_size = 0
            sc.num_kv_blocks = SCRATCH_BLOCKS
            sc.enable_prefix_caching = False
            self._pipe = self._g.ContinuousBatchingPipeline(str(self._model), sc, "CPU", SCRATCH_PROPERTIES)
        return self._pipe

    def error(self, key: str, structured: Any) -> str | None:
        """None if the grammar of `structured` (a StructuredOutputConfig) compiles, else why not.
        `key` identifies the grammar (verdicts are cached)."""
        if key in self._verdicts:
            self._verdicts.move_to_end(key)
            return self._verdicts[key]
        verdict = self._compile(structured)
        self._verdicts[key] = verdict
        if len(self._verdicts) > CACHE_SIZE:
            self._verdicts.popitem(last=False)
        return verdict

    def _compile(self, structured: Any) -> str | None:
        import numpy as np
        import openvino as ov

        cfg = self._g.GenerationConfig()
        cfg.max_new_tokens = 1
        cfg.do_sample = False
        cfg.structured_output_config = structured
        pipe = self._scratch()
        try:
            handle = pipe.add_request(next(self._ids), ov.Tensor(np.asarray([[1]], dtype=np.int64)), cfg)
            for _ in range(MAX_STEPS):  # the grammar is compiled in the first step that samples
                pipe.step()
                if not pipe.has_non_finished_requests():
                    break
            handle.cancel()
        except Exception as exc:
            self._pipe = None  # poisoned, exactly like the serving pipeline would be
            return summarize_exception(exc)
        return None
