"""`homelab models` on a clone of this checkout, mesh not running: real files, the real ov-server
project loading each file in its own process, the tests' own HTTP server standing in for a web
server and for the Hugging Face hub (HF_ENDPOINT). Every refused input changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from meshkit.testing import clone_checkout
from meshkit.testing.netns import HOMELAB_CLI

from .fileserver import FileServer, Served, hf_path

REAL_REPO = Path(__file__).resolve().parents[4]
OV = "layer-inference/ov-server"
SPEC = f"{OV}/SERVICE_SPEC.md"

pytestmark = [pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not installed"),
              pytest.mark.timeout(900)]


@dataclass
class Clone:
    root: Path
    gguf: Path  # jerry-tiny's GGUF, written by the ov-server project (a real, loadable model)
    sha: str

    def homelab(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HOMELAB_REPO")}
        return subprocess.run([*HOMELAB_CLI, "--repo", str(self.root), *args], cwd=self.root,
                              env={**base, "HF_HUB_DISABLE_TELEMETRY": "1", **(env or {})},
                              capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)

    def start(self, *args: str) -> subprocess.Popen[str]:
        base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HOMELAB_REPO")}
        return subprocess.Popen([*HOMELAB_CLI, "--repo", str(self.root), *args], cwd=self.root, env=base,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    def git_status(self) -> list[str]:
        return subprocess.run(["git", "-C", str(self.root), "status", "--porcelain"],
                              capture_output=True, text=True, check=True).stdout.splitlines()

    @property
    def added(self) -> Path:
        return self.root / ".homelab/models/added"

    def landed(self) -> list[str]:
        return sorted(p.name for p in self.added.iterdir()) if self.added.exists() else []

    def registry(self) -> dict:
        path = self.root / ".homelab/ov-models.yaml"
        return YAML(typ="safe").load(path.read_text()) if path.exists() else {"models": {}}


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    work = tmp_path_factory.mktemp("models-cli")
    root = clone_checkout(REAL_REPO, work / "clone")
    out = work / "files"
    built = subprocess.run(["uv", "run", "--frozen", "--quiet", "--project", str(root / OV), "ov-server",
                            "build-tiny-model", str(out)], capture_output=True, text=True, timeout=600,
                           cwd=root / OV, env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"})
    assert built.returncode == 0, built.stderr
    gguf = Path(built.stdout.strip().splitlines()[-1])
    yield Clone(root, gguf, hashlib.sha256(gguf.read_bytes()).hexdigest())


def _bad_inputs(c: Clone, tmp: Path) -> list[tuple[list[str], str]]:
    garbage = tmp / "garbage.gguf"
    garbage.write_bytes(os.urandom(50_000))
    crashing = tmp / "crashing.gguf"  # GGUF magic, then noise: OpenVINO crashes reading it
    crashing.write_bytes(b"GGUF" + os.urandom(50_000))
    text = tmp / "model.bin"
    text.write_bytes(b"x")
    good = str(c.gguf)
    return [
        (["jerry-x", "--from", good, "--backend", "nope"], "--backend nope: no such service"),
        (["jerry-x", "--from", good, "--backend", "litellm-orch"], "--backend litellm-orch: is a gateway, not a backend"),
        (["Jerry_X", "--from", good], "does not match the mesh's model name pattern"),
        (["jerry-tiny", "--from", good], "NAME 'jerry-tiny' is already served by ov-server"),
        (["jerry-x", "--from", good, "--sha256", "0" * 64], f"checksum mismatch: expected sha256 {'0' * 64}, got {c.sha}"),
        (["jerry-x", "--from", good, "--sha256", "abc"], "--sha256 'abc': expected 64 hex digits"),
        (["jerry-x", "--from", str(garbage)], f"--from {garbage}: ov-server (OpenVINO GenAI) cannot load it: "),
        (["jerry-x", "--from", str(crashing)], "ov-server (OpenVINO GenAI) crashed loading it (SIG"),
        (["jerry-x", "--from", str(text)], "takes .gguf files, not 'model.bin'"),
        (["jerry-x", "--from", str(tmp / "absent.gguf")], "no such file"),
    ]


def test_bad_input_is_refused_and_changes_nothing(clone: Clone, tmp_path: Path) -> None:
    for args, says in _bad_inputs(clone, tmp_path):
        result = clone.homelab("models", "add", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert says in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert clone.git_status() == [], args
        assert clone.landed() == [], args
        assert "jerry-x" not in clone.registry()["models"], args


def test_add_from_hf_with_a_cut_then_rm_refused_as_fallback_then_forced(clone: Clone) -> None:
    path = hf_path("acme/tiny-GGUF", "jerry-tiny.gguf")
    served = Served({path: clone.gguf.read_bytes()}, cut_after=100_000, cuts=1)
    with FileServer(served) as hub:
        result = clone.homelab("models", "add", "jerry-hf", "--from", "hf:acme/tiny-GGUF/jerry-tiny.gguf",
                               "--sha256", clone.sha, env={"HF_ENDPOINT": hub.base})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the gateway litellm-orch is not running here" in result.stdout
    # huggingface_hub asked the hub (HEAD, GET), was cut off, and tried again by itself. (It resumes
    # with a Range only past its 10 MiB write chunk, bigger than this file: Range resumes are
    # tested on our own downloader, test_download.py and the mesh test.)
    assert [r[0] for r in served.requests] == ["HEAD", "GET", "GET"], served.requests
    assert clone.landed() == ["jerry-hf.gguf"]
    assert (clone.added / "jerry-hf.gguf").read_bytes() == clone.gguf.read_bytes()
    assert not (clone.added / ".hf-download").exists()
    assert clone.registry()["models"]["jerry-hf"] == {"path": str(clone.added / "jerry-hf.gguf")}
    assert "  - {name: jerry-hf, upstream_id: jerry-hf}\n" in (clone.root / SPEC).read_text()
    router = YAML(typ="safe").load((clone.root / "layer-gateway/litellm-orch/config/router.yaml").read_text())
    assert any(m["model_name"] == "jerry-hf" for m in router["model_list"])
    assert clone.homelab("check").returncode == 0
    assert clone.homelab("render", "--check").returncode == 0
    rows = {r["name"]: r for r in json.loads(clone.homelab("models", "list", "--json").stdout)}
    assert rows["jerry-hf"] == {"name": "jerry-hf", "backend": "ov-server", "size": clone.gguf.stat().st_size,
                                "file": str(clone.added / "jerry-hf.gguf"), "state": "not running"}

    # jerry-tiny falls back to jerry-hf: removing jerry-hf is refused, and nothing changes.
    spec = clone.root / SPEC
    spec.write_text(spec.read_text().replace("  - {name: jerry-tiny, upstream_id: jerry-tiny}",
                                             "  - {name: jerry-tiny, upstream_id: jerry-tiny, fallbacks: [jerry-hf]}"))
    assert clone.homelab("render").returncode == 0
    before = {p: (clone.root / p).read_bytes() for p in (SPEC, "layer-gateway/litellm-orch/config/router.yaml")}
    refused = clone.homelab("models", "rm", "jerry-hf")
    assert refused.returncode == 2
    assert "jerry-hf is the fallback of jerry-tiny (ov-server); --force" in refused.stderr
    assert {p: (clone.root / p).read_bytes() for p in before} == before
    assert clone.landed() == ["jerry-hf.gguf"]

    forced = clone.homelab("models", "rm", "jerry-hf", "--force")
    assert forced.returncode == 0, forced.stderr
    assert clone.landed() == [] and "jerry-hf" not in clone.registry()["models"]
    assert clone.git_status() == []  # contract (fallback too), routes, docs, view: as before the add
    assert clone.homelab("check").returncode == 0


def test_two_adds_at_once_both_land_and_two_removes_at_once_undo_them(clone: Clone) -> None:
    """Each command plans its contract edit from the contracts it read: two at once used to plan
    from the same ones, and the later write dropped the earlier model."""
    def together(*commands: list[str]) -> list[tuple[int, str, str]]:
        procs = [clone.start("models", *c) for c in commands]
        outputs = [p.communicate(timeout=600) for p in procs]
        return [(p.returncode, *out) for p, out in zip(procs, outputs, strict=True)]

    names = ("jerry-one", "jerry-two")
    added = together(*(["add", n, "--from", str(clone.gguf)] for n in names))
    assert [rc for rc, _, _ in added] == [0, 0], added
    assert sum("waiting for another `homelab models add/rm` on this checkout (pid " in err
               for _, _, err in added) == 1, "the second one waited for the first"
    spec = (clone.root / SPEC).read_text()
    assert all(f"  - {{name: {n}, upstream_id: {n}}}\n" in spec for n in names)
    assert set(names) <= set(clone.registry()["models"])
    router = YAML(typ="safe").load((clone.root / "layer-gateway/litellm-orch/config/router.yaml").read_text())
    assert set(names) <= {m["model_name"] for m in router["model_list"]}
    assert clone.homelab("check").returncode == 0 and clone.homelab("render", "--check").returncode == 0

    removed = together(*(["rm", n] for n in names))
    assert [rc for rc, _, _ in removed] == [0, 0], removed
    assert clone.landed() == [] and not set(names) & set(clone.registry()["models"])
    assert clone.git_status() == []


def test_rm_refuses_unknown_and_last_model(clone: Clone) -> None:
    unknown = clone.homelab("models", "rm", "jerry-nope")
    assert unknown.returncode == 2 and "NAME 'jerry-nope': no backend serves it" in unknown.stderr
    assert clone.git_status() == []
