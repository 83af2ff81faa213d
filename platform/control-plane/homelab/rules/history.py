"""What the mesh files looked like before this change: the bases the append-only rules compare with.

Ports are immutable only if an edit cannot hide from `check`. So `check` (and `render`) compare
the ledger and the approvals with git by default, never only when asked:

- `HEAD`: catches edits not committed yet;
- the base of the change: `--base REF` or `$HOMELAB_CHECK_BASE` (CI: `origin/$GITHUB_BASE_REF`
  for a pull request), else the first of the current branch's upstream, `origin/HEAD`,
  `origin/main`, `origin/master`, `main`, `master` that HEAD has moved away from, taken at the
  merge base (lines the target branch gained since do not count as removed here);
- when HEAD *is* that branch (a fresh clone of main in CI, a push to main), its parent `HEAD^`:
  the commit being tested is compared with the one before it.

A shallow clone without `HEAD^` can only compare with HEAD; `note` says so.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from homelab.contract.mesh import Approvals, PortLedger
from homelab.errors import InputError
from homelab.load.repo import APPROVALS_FILE, PORTS_FILE, parse_yaml_model

BASE_ENV = "HOMELAB_CHECK_BASE"
CANDIDATES = ("@{upstream}", "origin/HEAD", "origin/main", "origin/master", "main", "master")


@dataclass(frozen=True)
class Base:
    label: str  # how messages name it: "HEAD", "merge base of main (1a2b3c4)", ...
    commit: str
    ledger: PortLedger | None  # None when the file did not exist there
    approvals: Approvals | None


@dataclass
class History:
    bases: list[Base] = field(default_factory=list)
    # Who made the change since the base: authors and committers of base..HEAD and, when the
    # working tree differs, the configured git user (names and emails, lower-cased).
    change_people: set[str] = field(default_factory=set)
    note: str | None = None  # why the comparison is weaker than usual (shallow clone)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return subprocess.CompletedProcess(args, 127, "", str(exc))


def _commit(root: Path, ref: str) -> str | None:
    out = _git(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
    return out.stdout.strip() if out.returncode == 0 else None


def _file_at(root: Path, commit: str, rel: str) -> str | None:
    out = _git(root, "show", f"{commit}:{rel}")
    return out.stdout if out.returncode == 0 else None


def _base(root: Path, label: str, commit: str) -> Base:
    """The ledger and approvals at `commit`; a broken file there is unusable input (exit 2)."""
    ledger = approvals = None
    if (text := _file_at(root, commit, PORTS_FILE)) is not None:
        ledger, _ = parse_yaml_model(text, f"{label}:{PORTS_FILE}", PortLedger)
    if (text := _file_at(root, commit, APPROVALS_FILE)) is not None:
        approvals, _ = parse_yaml_model(text, f"{label}:{APPROVALS_FILE}", Approvals)
    return Base(label, commit, ledger, approvals)


def _change_base(root: Path, head: str, explicit: str | None,
                 notes: list[str]) -> tuple[str, str] | None:
    """(label, commit) of the base of the change, or None when there is none besides HEAD."""
    named = explicit or os.environ.get(BASE_ENV)
    if not named and os.environ.get("GITHUB_BASE_REF"):
        named = f"origin/{os.environ['GITHUB_BASE_REF']}"
    if named:
        target = _commit(root, named)
        if target is None and explicit:
            raise InputError.one(PORTS_FILE, f"base {named!r} is not a commit in this checkout "
                                             "(fetch it, or pass another --base)")
        if target is None:  # from the environment (CI): say so, compare with what there is
            notes.append(f"base {named!r} (from the environment) is not in this checkout; fetch "
                         "it to compare the ledger with the change's base")
        else:
            merge = _git(root, "merge-base", head, target).stdout.strip() or target
            return (named if merge == target else f"merge base of {named} ({merge[:7]})"), merge
    for cand in CANDIDATES:
        target = _commit(root, cand)
        if target is None:
            continue
        merge = _git(root, "merge-base", head, target).stdout.strip()
        if merge and merge != head:
            return f"merge base of {cand} ({merge[:7]})", merge
    parent = _commit(root, "HEAD^")
    return ("HEAD^", parent) if parent else None


def _people(root: Path, base: str | None, dirty: bool) -> set[str]:
    people: set[str] = set()
    if base:
        log = _git(root, "log", "--format=%an%x00%ae%x00%cn%x00%ce", f"{base}..HEAD")
        for line in log.stdout.splitlines():
            people.update(p.strip().lower() for p in line.split("\0") if p.strip())
    if dirty:
        for key in ("user.name", "user.email"):
            if value := _git(root, "config", key).stdout.strip():
                people.add(value.lower())
    return people


def resolve(root: Path, explicit: str | None = None) -> History:
    """The bases to compare with (empty outside a git checkout or before the first commit)."""
    top = _git(root, "rev-parse", "--show-toplevel").stdout.strip()
    # A mesh copied inside another repository is not that repository's mesh.
    head = _commit(root, "HEAD") if top and Path(top).resolve() == root.resolve() else None
    if head is None:
        if explicit:
            raise InputError.one(PORTS_FILE, f"--base {explicit}: not a git checkout with commits")
        return History()
    history = History([_base(root, "HEAD", head)])
    notes: list[str] = []
    change = _change_base(root, head, explicit, notes)
    if change is not None:
        history.bases.append(_base(root, *change))
    elif _git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        notes.append("shallow clone: the port ledger is compared with HEAD only; fetch the "
                     f"target branch or set ${BASE_ENV} to compare with the change's base")
    history.note = "; ".join(notes) or None
    dirty = bool(_git(root, "status", "--porcelain", "--", APPROVALS_FILE).stdout.strip())
    history.change_people = _people(root, change[1] if change else None, dirty)
    return history
