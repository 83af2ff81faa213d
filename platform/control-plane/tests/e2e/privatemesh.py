"""A private, complete copy of the mesh for one test, run with the README's own commands.

A fresh clone of this checkout (HEAD plus the working tree's changes, as the next commit would
have them) and a network namespace of its own with only a loopback interface: inside it
`./homelab up` gets 127.0.0.1:4000, :4010, ... to itself, so the real contract ports are used
without touching the mesh a developer (or another test) runs on this machine. The namespace has
no route out, so the mesh also proves it starts offline.

Needs root (`ip netns add`); CI runs as root. Standard library only, so any suite can import it
(add this folder to sys.path). Typical use:

    with PrivateMesh.create(tmp_path, repo=REPO) as mesh:
        mesh.presync(projects)                    # uv envs, outside the namespace (network)
        mesh.bash("./homelab up", timeout=900)    # inside: private ports, no network
        ...
        mesh.bash("./homelab down")
        assert mesh.netns.pids() == [] and mesh.netns.listeners() == []
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check,
                          stdin=subprocess.DEVNULL)


def netns_unavailable() -> str | None:
    """Why a private network namespace cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns add)"
    for tool in ("ip", "ss"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (Debian package iproute2)"
    probe = f"hl-probe-{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Netns:
    """One network namespace with loopback up and nothing else."""

    name: str

    @classmethod
    def create(cls, prefix: str = "hl-e2e") -> Netns:
        ns = cls(f"{prefix}-{secrets.token_hex(3)}")
        _ip("netns", "add", ns.name)
        try:
            _ip("-n", ns.name, "link", "set", "lo", "up")
        except BaseException:
            ns.close()
            raise
        return ns

    def argv(self, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def pids(self) -> list[int]:
        """Every process living in the namespace (whatever session or process group it made)."""
        out = _ip("netns", "pids", self.name, check=False).stdout
        return sorted(int(p) for p in out.split())

    def listeners(self) -> list[str]:
        """`ss` lines of every listening TCP/UDP socket in the namespace (with their process)."""
        out = subprocess.run(self.argv(["ss", "-H", "-l", "-t", "-u", "-n", "-p"]),
                             capture_output=True, text=True, timeout=30, check=True,
                             stdin=subprocess.DEVNULL).stdout
        return [line for line in out.splitlines() if line.strip()]

    def kill_all(self, grace_s: float = 5.0) -> list[int]:
        """TERM every process inside, KILL what is left after `grace_s`; returns who was found."""
        found = self.pids()
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
        return found

    def close(self) -> None:
        self.kill_all()
        _ip("netns", "del", self.name, check=False)


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


@dataclass
class PrivateMesh:
    """A clone of the checkout at `root` and the namespace its commands run in."""

    root: Path
    netns: Netns
    env: dict[str, str]
    home: Path
    tmp: Path

    @classmethod
    def create(cls, workdir: Path, *, repo: Path) -> PrivateMesh:
        root = clone_checkout(repo, workdir / "clone")
        env = private_env(workdir / "home", workdir / "tmp")
        return cls(root, Netns.create(), env, workdir / "home", workdir / "tmp")

    def __enter__(self) -> PrivateMesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def presync(self, projects: Iterable[Path], timeout: float = 1800) -> None:
        """`uv sync --frozen` the clone's projects OUTSIDE the namespace, where the package
        registry is reachable; `up` inside then finds them in sync (about 0.1 s each)."""
        env = {**self.env, "HOME": os.environ.get("HOME", self.env["HOME"])}
        for project in projects:
            done = subprocess.run(["uv", "sync", "--frozen", "--quiet", "--project", str(project)],
                                  cwd=self.root, env=env, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise RuntimeError(f"uv sync failed in {project}:\n{done.stdout}{done.stderr}")

    def bash(self, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run `script` with bash in the clone, inside the namespace, as a user would paste it.
        On timeout everything in the namespace is stopped and TimeoutError names the script."""
        proc = subprocess.Popen(self.netns.argv(["bash", "-c", script]), cwd=self.root,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.netns.kill_all()
            out, err = proc.communicate()
            raise TimeoutError(f"`{script}` did not finish in {timeout:.0f} s; "
                               f"output tail:\n{(out + err)[-3000:]}") from None
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def git_status(self) -> list[str]:
        """`git status` of the clone, ignored files included: what commands left behind."""
        out = subprocess.run(["git", "-C", str(self.root), "status", "--porcelain=v1",
                              "--ignored=matching", "--untracked-files=all"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        return out.splitlines()

    def close(self) -> None:
        self.netns.close()
