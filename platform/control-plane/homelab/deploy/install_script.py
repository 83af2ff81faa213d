"""install.sh: a generated data block (this host's files, units, users) in front of a fixed bash
body, so a host installs its bundle with nothing but bash, coreutils and systemctl."""

from __future__ import annotations

import shlex

from homelab.deploy.model import SCRIPT_DIR, Plan
from homelab.errors import InputError

INSTALL_BODY = r'''
usage() {
  cat <<EOF
Usage: install.sh [--dry-run] [--root DIR] [--now]
Installs the homelab-llm bundle of host '$HOST': systemd units into /etc/systemd/system, env
templates only where no env file exists yet (an existing env file is never touched), the ops
scripts into $SCRIPT_DIR, then systemctl daemon-reload and enable. Safe to run again.
  --dry-run   print what would change, change nothing
  --root DIR  install under DIR instead of / (also \$DESTDIR); only 'systemctl --root DIR enable' runs
  --now       also restart the units in dependency order and run the health check
Example: sudo ./install.sh --dry-run && sudo ./install.sh
EOF
}
root="${DESTDIR:-}" dry=0 now=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --now) now=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
root="${root%/}"
if [ -n "$root" ] && [ ! -d "$root" ]; then
  echo "install.sh: --root $root is not a directory" >&2; exit 2
fi
if [ -n "$root" ] && [ "$now" = 1 ]; then
  echo "install.sh: --now starts services, which makes no sense with --root" >&2; exit 2
fi
if [ -z "$root" ] && [ "$dry" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (or try --dry-run, or --root DIR)" >&2; exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

do_run() {  # run a command, or only show it with --dry-run
  if [ "$dry" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

# A bundle edited by hand is refused: change the contracts and run `homelab bundle` again.
if ! (cd "$here" && sha256sum --quiet --strict -c SHA256SUMS); then
  echo "install.sh: bundle files differ from SHA256SUMS; re-run 'homelab bundle --host $HOST'" >&2
  exit 1
fi

for user in "${USERS[@]}"; do
  if id -u "$user" >/dev/null 2>&1; then continue; fi
  if [ -n "$root" ]; then echo "note: user $user does not exist here; the units run as $user"; continue; fi
  do_run useradd --system --user-group --home-dir /var/lib/homelab-llm --no-create-home \
    --shell /usr/sbin/nologin "$user"
done

created=0 updated=0 same=0 kept=0 skipped=0
for entry in "${FILES[@]}"; do
  IFS='|' read -r src dest mode policy group <<<"$entry"
  target="$root$dest"
  # Never create a half checkout: files inside INSTALL_DIR wait until the checkout is there.
  if [ "${dest#"$INSTALL_DIR"/}" != "$dest" ] && [ ! -d "$root$INSTALL_DIR" ]; then
    echo "skipped  $dest (no checkout at $INSTALL_DIR yet)"; skipped=$((skipped + 1)); continue
  fi
  if [ -e "$target" ]; then
    if [ "$policy" = keep ]; then
      echo "kept     $dest (exists; env files are never overwritten)"; kept=$((kept + 1)); continue
    fi
    if cmp -s "$here/$src" "$target"; then echo "same     $dest"; same=$((same + 1)); continue; fi
    verb=update updated=$((updated + 1))
  else
    verb=create created=$((created + 1))
  fi
  if [ "$dry" = 1 ]; then echo "would $verb $dest"; continue; fi
  install -D -m "$mode" "$here/$src" "$target"
  # Env files are read by the service user too (start scripts re-read them): group-readable.
  if [ -n "$group" ] && [ -z "$root" ] && getent group "$group" >/dev/null; then chgrp "$group" "$target"; fi
  echo "${verb}d $dest"
done

if [ "${#UNITS[@]}" = 0 ]; then
  echo "note: no systemd units for host $HOST"
elif ! command -v systemctl >/dev/null; then
  echo "note: systemctl not found; units were installed but not enabled"
elif [ -n "$root" ]; then
  do_run systemctl --quiet --root="$root" enable "${UNITS[@]}"
elif [ ! -d /run/systemd/system ]; then
  echo "note: systemd is not running here; later: systemctl daemon-reload && systemctl enable ${UNITS[*]}"
else
  do_run systemctl daemon-reload
  do_run systemctl enable --quiet "${UNITS[@]}"
  if [ "$now" = 1 ]; then do_run "$SCRIPT_DIR/restart-all.sh" --host "$HOST"; fi
fi

# What a bundle cannot carry: the checkout, its uv environments, and secret values.
if [ ! -d "$root$INSTALL_DIR" ]; then
  echo "todo: put the repository checkout at $INSTALL_DIR (the commit this bundle was made from)"
else
  for project in "${UV_PROJECTS[@]}"; do
    if [ ! -d "$root$INSTALL_DIR/$project/.venv" ]; then
      echo "todo: create the environment: cd $INSTALL_DIR/$project && uv sync --frozen"
    fi
  done
fi
for entry in "${FILES[@]}"; do
  IFS='|' read -r src dest mode policy group <<<"$entry"
  [ "$policy" = keep ] || continue
  file="$root$dest"
  [ -e "$file" ] || file="$here/$src"
  empty=$(grep -oE '^[A-Z][A-Z0-9_]*=$' "$file" 2>/dev/null | tr -d '=' | tr '\n' ' ' || true)
  if [ -n "$empty" ]; then echo "todo: set ${empty% } in $dest"; fi
done
echo "host $HOST: $created created, $updated updated, $same unchanged, $kept env file(s) kept," \
  "$skipped skipped"
'''


def _q(value: str) -> str:
    return shlex.quote(value)


def _field(value: str, what: str) -> str:
    if "|" in value or "\n" in value:
        raise InputError.one("SERVICE_SPEC.md", f"{what} {value!r} contains '|' or a newline, "
                                                "which install.sh cannot carry")
    return value


def render_install(plan: Plan) -> str:
    users = sorted({s.spec.systemd.user for s in plan.services if s.spec.systemd})
    rows = [
        "|".join(_field(v, "path") for v in (e.path, e.dest, f"{e.mode:04o}", e.policy, e.group))
        for e in plan.entries
    ]
    data = [
        "#!/usr/bin/env bash",
        f"# GENERATED by `uv run homelab bundle --host {plan.host.name}` from the mesh contracts; "
        "do not edit by hand",
        "# (this script checks SHA256SUMS). Change the contracts, then re-run the command.",
        "set -euo pipefail",
        f"HOST={_q(plan.host.name)}",
        f"INSTALL_DIR={_q(plan.install_dir)}",
        f"SCRIPT_DIR={_q(SCRIPT_DIR)}",
        "# Units of this host, in start order.",
        "UNITS=(" + " ".join(_q(u) for u in plan.units) + ")",
        "USERS=(" + " ".join(_q(u) for u in users) + ")",
        "UV_PROJECTS=(" + " ".join(_q(p) for p in plan.uv_projects) + ")",
        "# bundle file|destination|mode|policy (keep: only when absent)|group",
        "FILES=(",
        *[f"  {_q(r)}" for r in rows],
        ")",
    ]
    return "\n".join(data) + "\n" + INSTALL_BODY
