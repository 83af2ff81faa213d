"""Keep LiteLLM's finalizers from writing context variables while the garbage collector runs.

Why: a gateway worker segfaulted in CPython 3.11's `hamt_node_bitmap_assoc` (the map behind
`contextvars`) about once in three soak runs, cutting every stream it held. A collection that
starts inside `ContextVar.set` runs finalizers, and LiteLLM's set context variables again from
them: `CustomStreamWrapper.__del__` restores its correlation ids, and a coroutine that the
collector closes runs `_internal_context._restore` (`ContextVar.reset`) in its `finally`. That
re-entrant write frees HAMT nodes the outer `set` still uses (CPython gh-148891, not fixed in
3.11). Both writes only tidy a context nobody reads again (LiteLLM's own comments call them
best-effort), so during a collection they are skipped; outside one they run as before.
"""

from __future__ import annotations

import gc
from typing import Any

_collecting = False


def _track(phase: str, _info: dict[str, Any]) -> None:
    global _collecting
    _collecting = phase == "start"


def collecting() -> bool:
    return _collecting


def install() -> None:
    """Patch LiteLLM's two finalizer-time context writes (idempotent; call once per worker)."""
    from litellm import _internal_context
    from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper

    if _track in gc.callbacks:
        return
    gc.callbacks.append(_track)

    restore = _internal_context._restore

    def _restore_unless_collecting(var: Any, token: Any) -> None:
        if not _collecting:
            restore(var, token)

    _internal_context._restore = _restore_unless_collecting

    stream_del = CustomStreamWrapper.__del__

    def _del_unless_collecting(self: CustomStreamWrapper) -> None:
        if not _collecting:
            stream_del(self)

    CustomStreamWrapper.__del__ = _del_unless_collecting
