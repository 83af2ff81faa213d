"""`uv lock` for a service that does not exist on disk yet: its pyproject is locked in a temp
folder, so `homelab new` still writes all or nothing.

A seed lock (an existing service's uv.lock with the same pins) is copied in first: uv keeps the
versions a lock already has, so the new service resolves to what the mesh already runs and
installs from the uv cache. Offline first (seconds, no network); online only when the cache
lacks something.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from homelab.errors import InputError
from homelab.runtime.prepare import clean_env


def lock(files: dict[str, str], seed: Path | None = None, timeout_s: float = 300) -> str:
    """The uv.lock text for a project made of `files` ({relative path: text})."""
    if shutil.which("uv") is None:
        raise InputError.one("homelab new", "uv is not installed (needed to lock the new service; "
                                            "`./homelab` installs it)")
    with tempfile.TemporaryDirectory(prefix="homelab-new-") as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        if seed is not None and seed.is_file():
            shutil.copy(seed, root / "uv.lock")
        last = ""
        for extra in (["--offline"], []):
            try:
                proc = subprocess.run(["uv", "lock", "--quiet", *extra], cwd=root, env=clean_env(),
                                      capture_output=True, text=True, timeout=timeout_s,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                last = f"timed out after {timeout_s:.0f} s"
                continue
            if proc.returncode == 0:
                return (root / "uv.lock").read_text(encoding="utf-8")
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            last = last[0]
    raise InputError.one("homelab new", f"`uv lock` of the new service failed: {last}")
