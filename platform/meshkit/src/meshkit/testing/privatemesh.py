"""A private, complete copy of the mesh for one test: a fresh clone of the checkout run in a
network namespace of its own (see netns.py), so `homelab up` gets the real contract ports
(127.0.0.1:4000, :4010, ...) to itself and nothing in the clone is rewritten.

The clone is HEAD plus the working tree's changes, as the next commit would have them. Every
command run through the mesh also sees a private /etc/homelab-llm (`mesh.etc`, empty unless the
test writes env files there): a developer's machine-wide env files cannot leak into a test, and
a test can give a service its own env file exactly where the contract says it lives. (A mount
namespace per command binds a copy of /etc over /etc; the host's /etc is never written.)

Needs root (`ip netns add`, `mount`); CI runs as root. Standard library only. Typical use:

    with PrivateMesh.create(tmp_path, repo=REPO) as mesh:
        mesh.presync(projects)                    # uv envs, outside the namespace (network)
        mesh.bash("./homelab up", timeout=900)    # inside: private ports, no network
        with mesh.netns.entered():                # this thread's sockets inside too
            httpx.get("http://127.0.0.1:4000/health/liveliness")
        mesh.bash("./homelab down")
        assert mesh.netns.pids() == [] and mesh.netns.listeners() == []
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from meshkit.testing.netns import HOMELAB_CLI, Netns

ETC_NAME = "homelab-llm"  # /etc/homelab-llm: the services' machine-wide env files


def clone_checkout(src: Path, dst: Path) -> Path:
    """`git clone` of `src`'s HEAD, then the working tree's changes on top (tracked edits,
    deletions, new files that are not ignored), committed, so `git status` in the clone starts
    clean and shows exactly what later commands add. In CI (a fresh clone) there are none."""
    subprocess.run(["git", "clone", "--quiet", "--shared", str(src), str(dst)], check=True,
                   capture_output=True, timeout=120)

    def ls(*args: str) -> list[str]:
        out = subprocess.run(["git", "-C", str(src), "ls-files", "-z", *args], check=True,
                             capture_output=True, timeout=60).stdout
        return [p for p in out.decode().split("\0") if p]

    changed = set(ls("--modified", "--others", "--exclude-standard"))
    for rel in ls("--deleted"):
        changed.discard(rel)
        (dst / rel).unlink(missing_ok=True)
    for rel in sorted(changed):
        source = src / rel
        if source.is_symlink() or source.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            (dst / rel).unlink(missing_ok=True)
            shutil.copy2(source, dst / rel, follow_symlinks=False)
    git = ["git", "-C", str(dst), "-c", "user.name=private mesh", "-c", "user.email=mesh@localhost"]
    subprocess.run([*git, "add", "-A"], check=True, capture_output=True, timeout=60)
    if subprocess.run([*git, "diff", "--cached", "--quiet"], timeout=60).returncode != 0:
        subprocess.run([*git, "commit", "--quiet", "-m", f"working tree of {src}"], check=True,
                       capture_output=True, timeout=60)
    return dst


def bash_blocks(markdown: str) -> list[str]:
    """The ```bash fenced blocks of a Markdown text, in order, exactly as written."""
    return re.findall(r"^```bash\n(.*?)^```$", markdown, flags=re.S | re.M)


def private_env(home: Path, tmp: Path) -> dict[str, str]:
    """This process's environment with a private HOME and TMPDIR (so anything a command leaves
    there is seen), the shared uv cache kept, and nothing of an outer homelab run or venv."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOMELAB_", "PYTEST_", "UV_")) and k not in (
               "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    if "HOMELAB_TEST_RUN" in os.environ:  # `homelab test` finds what a killed suite left by it
        env["HOMELAB_TEST_RUN"] = os.environ["HOMELAB_TEST_RUN"]
    # Where uv keeps its cache and interpreters when HOME is the real one (uv finds both
    # through HOME otherwise): the clone's environments come from the warm shared cache.
    for var, cmd in (("UV_CACHE_DIR", ["uv", "cache", "dir"]),
                     ("UV_PYTHON_INSTALL_DIR", ["uv", "python", "dir"])):
        env[var] = os.environ.get(var) or subprocess.run(
            cmd, capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    home.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), TMPDIR=str(tmp))
    return env


def processes_with_env(marker: str, value: str) -> list[int]:
    """Pids of every process on the machine whose environment has `marker=value` (how `homelab
    down` finds a checkout's leftovers: its programs carry HOMELAB_SUPERVISED=<checkout>)."""
    needle = f"{marker}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:  # gone, or a kernel thread
                pass
    return sorted(found)


def private_etc(dst: Path) -> Path:
    """A copy of /etc whose homelab-llm folder is empty; returns the copy."""
    dst.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "/etc/.", str(dst)], check=True, capture_output=True, timeout=120)
    shutil.rmtree(dst / ETC_NAME, ignore_errors=True)
    (dst / ETC_NAME).mkdir()
    return dst


@dataclass
class PrivateMesh:
    """A clone of the checkout at `root`, the namespace its commands run in and the /etc they see."""

    root: Path
    netns: Netns
    env: dict[str, str]
    home: Path
    tmp: Path
    etc_root: Path
    source: Path  # the checkout the clone was made from

    @classmethod
    def create(cls, workdir: Path, *, repo: Path, prefix: str = "hl-mesh") -> PrivateMesh:
        root = clone_checkout(repo, workdir / "clone")
        env = private_env(workdir / "home", workdir / "tmp")
        etc_root = private_etc(workdir / "etc")
        return cls(root, Netns.create(prefix), env, workdir / "home", workdir / "tmp", etc_root,
                   repo)

    def __enter__(self) -> PrivateMesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def etc(self) -> Path:
        """What the mesh's commands see as /etc/homelab-llm (write env files here)."""
        return self.etc_root / ETC_NAME

    @property
    def state(self) -> Path:
        return self.root / ".homelab"

    def argv(self, cmd: list[str]) -> list[str]:
        """`cmd` run inside the namespace, with the private /etc mounted over /etc."""
        bind = 'mount --bind "$0" /etc && exec "$@"'
        return self.netns.argv(["unshare", "--mount", "--propagation", "private", "--",
                                "sh", "-c", bind, str(self.etc_root), *cmd])

    def run(self, cmd: list[str], *, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `cmd` in the clone, inside; on timeout everything in the namespace is stopped and
        TimeoutError names the command with its output tail."""
        proc = subprocess.Popen(self.argv(cmd), cwd=self.root, env={**self.env, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.netns.kill_all()
            out, err = proc.communicate()
            raise TimeoutError(f"`{' '.join(cmd)}` did not finish in {timeout:.0f} s; "
                               f"output tail:\n{(out + err)[-3000:]}") from None
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def bash(self, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run `script` with bash in the clone, inside the namespace, as a user would paste it."""
        return self.run(["bash", "-c", script], timeout=timeout)

    def homelab(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        """The control plane's CLI on the clone, inside: this interpreter's when it has the
        control plane, else the clone's own (`uv run`: presync the clone's root first)."""
        if importlib.util.find_spec("homelab") is not None:
            cli = HOMELAB_CLI
        else:
            cli = ["uv", "run", "--frozen", "--quiet", "--project", str(self.root), "homelab"]
        return self.run([*cli, "--repo", str(self.root), *args], timeout=timeout)

    def presync(self, projects: Iterable[Path], timeout: float = 1800,
                extras: Iterable[str] = ()) -> None:
        """`uv sync --frozen` the clone's projects (with these extras) OUTSIDE the namespace,
        where the package registry is reachable; `up` inside then finds them in sync (about
        0.1 s each)."""
        env = {**self.env, "HOME": os.environ.get("HOME", self.env["HOME"])}
        extra_args = [a for extra in extras for a in ("--extra", extra)]
        for project in projects:
            done = subprocess.run(["uv", "sync", "--frozen", "--quiet", *extra_args,
                                   "--project", str(project)],
                                  cwd=self.root, env=env, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise RuntimeError(f"uv sync failed in {project}:\n{done.stdout}{done.stderr}")

    def secrets(self) -> dict[str, str]:
        """The keys `up` generated (.homelab/secrets.env)."""
        text = (self.state / "secrets.env").read_text(encoding="utf-8")
        return dict(line.split("=", 1) for line in text.splitlines()
                    if "=" in line and not line.startswith("#"))

    def log(self, service: str) -> str:
        path = self.state / "logs" / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def git_status(self) -> list[str]:
        """`git status` of the clone, ignored files included: what commands left behind."""
        out = subprocess.run(["git", "-C", str(self.root), "status", "--porcelain=v1",
                              "--ignored=matching", "--untracked-files=all"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        return out.splitlines()

    def close(self) -> None:
        self.netns.close()


__all__ = ["PrivateMesh", "bash_blocks", "clone_checkout", "private_env", "private_etc",
           "processes_with_env"]
