"""HL6xx: env keys the gateway references are declared; secrets stay out of git."""

from __future__ import annotations

import re
from collections.abc import Iterator

from homelab.render.router import router_path
from homelab.rules.base import Context, Violation

ENV_REF = re.compile(r"os\.environ/([A-Za-z_][A-Za-z0-9_]*)")
ALLOW = "homelab: allow-secret"  # inline pragma for a deliberate test fixture
SECRET_PATTERNS = [
    ("OpenAI-style key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9]{32,}")),
    ("private key", re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----")),
    ("AWS access key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("assigned secret", re.compile(
        r"(?i)\b[A-Z0-9_]*(?:SECRET|PASSWORD|TOKEN|API_KEY|MASTER_KEY)[A-Z0-9_]*\s*[=:]\s*"
        r"['\"]?(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{24,}")),
]
# Cheap literal prefilter: files without any of these cannot match a pattern below.
ANY_SECRET = re.compile(r"sk-|PRIVATE KEY|AKIA|gh[pousr]_|hf_|xox|SECRET|PASSWORD|TOKEN|API_KEY|MASTER_KEY",
                        re.I)
SKIP_SUFFIXES = (".lock", ".png", ".jpg", ".gguf", ".bin", ".xml", ".ico")


def check(ctx: Context) -> Iterator[Violation]:
    repo = ctx.repo
    gateway = repo.services.get(repo.mesh.gateway.service)
    declared = {v.name for v in gateway.spec.env} if gateway else set()
    rel = router_path(repo)
    text = ctx.read(rel) or ""
    for n, line in enumerate(text.splitlines(), 1):
        for m in ENV_REF.finditer(line):
            if m.group(1) not in declared:
                yield Violation(rel, n, "HL601", "undeclared-env",
                                f"router.yaml reads os.environ/{m.group(1)}, which the gateway's "
                                "contract does not declare (the gateway would fail to start)")
    for svc in repo.services.values():
        key = svc.spec.gateway_auth_env
        if key and key not in declared:
            yield Violation(svc.source.path, svc.source.line("gateway_auth_env"), "HL601", "undeclared-env",
                            f"gateway_auth_env {key} is not declared in the gateway's env")
    yield from _metrics_keys(repo)
    if gateway:
        yield from _env_local(ctx, gateway.rel_dir, {v.name for v in gateway.spec.env if v.required})
    yield from _secrets(ctx)


def _metrics_keys(repo) -> Iterator[Violation]:  # noqa: ANN001 - Repo
    """HL605: a metrics key is declared where it is checked and where it is sent from."""
    observers = repo.by_kind("observer")
    for svc in sorted(repo.services.values(), key=lambda s: s.name):
        metrics = svc.spec.metrics
        if metrics is None or metrics.auth_env is None:
            continue
        key, src = metrics.auth_env, svc.source
        line = src.line("metrics", "auth_env") or src.line("metrics")
        if not any(v.name == key and v.secret for v in svc.spec.env):
            yield Violation(src.path, line, "HL605", "metrics-key-undeclared",
                            f"metrics.auth_env {key} is not a secret env var of {svc.name}")
        for obs in observers:
            if not any(v.name == key for v in obs.spec.env):
                yield Violation(obs.source.path, obs.source.line("env") or obs.source.line("name"),
                                "HL605", "metrics-key-undeclared",
                                f"{obs.name} scrapes {svc.name}, whose metrics need {key}, but does "
                                f"not declare {key}")


def _env_local(ctx: Context, gw_dir: str, required: set[str]) -> Iterator[Violation]:
    rel = f"{gw_dir}/config/env.local"
    tracked = ctx.tracked_files or []
    if rel in tracked or any(p.endswith("/env.local") or p == "env.local" for p in tracked):
        yield Violation(rel, 1, "HL602", "env-local-tracked",
                        "env.local is tracked by git; it holds secrets: `git rm --cached` it")
    if ctx.tracked_files is not None and ctx.git_ignored(rel) is False:
        yield Violation(".gitignore", 1, "HL602", "env-local-tracked",
                        f"{rel} is not gitignored")
    text = ctx.read(rel)
    if text is not None:  # a local file exists: it must set every required key
        have = {l.split("=", 1)[0].strip().removeprefix("export ").strip()
                for l in text.splitlines() if "=" in l and not l.lstrip().startswith("#")
                and l.split("=", 1)[1].strip()}
        for key in sorted(required - have):
            yield Violation(rel, 1, "HL604", "env-local-missing-key",
                            f"required key {key} is not set; the gateway will not start")


def _secrets(ctx: Context) -> Iterator[Violation]:
    for rel in ctx.tracked_files or []:
        if rel.endswith(SKIP_SUFFIXES):
            continue
        text = ctx.read(rel)
        if text is None or not ANY_SECRET.search(text):  # one pass per file; lines only on a hit
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if ALLOW in line or len(line) > 2000:
                continue
            for what, pattern in SECRET_PATTERNS:
                if pattern.search(line):
                    yield Violation(rel, n, "HL603", "secret-committed",
                                    f"looks like a committed {what}; move it to an env file "
                                    f"(or mark a fake test value with `# {ALLOW}`)")
                    break
