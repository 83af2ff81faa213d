"""platform/ops/scripts/healthcheck.sh and restart-all.sh: a generated data block (what to probe,
which units) in front of a fixed bash body, so the scripts run on a host without the repo's venv."""

from __future__ import annotations

import re

from graphlib import CycleError

from homelab.addresses import health_url
from homelab.load.repo import Repo
from homelab.ordering import KIND_ORDER, start_order
from homelab.render.header import banner

HEALTHCHECK = "platform/ops/scripts/healthcheck.sh"
RESTART_ALL = "platform/ops/scripts/restart-all.sh"
_PROBE_RE = re.compile(r'^\s*"([a-z0-9-]+)\|', re.M)

HEALTH_BODY = r'''
usage() {
  cat <<'EOF'
Usage: healthcheck.sh [--host NAME] [--json] [--timeout SECONDS]
Probes every service's health endpoint concurrently; exit 1 when a required one is down.
Example: platform/ops/scripts/healthcheck.sh --host local --json
EOF
}
host_filter="" json=0 timeout_override=""
while [ $# -gt 0 ]; do
  case "$1" in
    --host) host_filter="${2:?--host needs a name}"; shift 2 ;;
    --json) json=1; shift ;;
    --timeout) timeout_override="${2:?--timeout needs seconds}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "healthcheck.sh: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v curl >/dev/null || { echo "healthcheck.sh: curl is required" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

probe() {  # index name url expect body required auth_env timeout
  local i=$1 name=$2 url=$3 expect=$4 body=$5 req=$6 auth=$7 timeout=$8 out code ms ok err=""
  local -a hdr=()
  if [ -n "$auth" ] && [ -n "${!auth:-}" ]; then hdr=(-H "Authorization: Bearer ${!auth}"); fi
  if out=$(curl -sS -o "$tmp/$i.body" -w '%{http_code} %{time_total}' --max-time "$timeout" \
      "${hdr[@]}" "$url" 2>"$tmp/$i.err"); then
    code=${out% *}; ms=$(awk -v t="${out#* }" 'BEGIN{printf "%d", t*1000}')
  else
    code=000; ms=-1; err=$(head -c 200 "$tmp/$i.err" | tr -d '"\\\n')
  fi
  ok=no
  if [ "$code" = "$expect" ]; then
    if [ -z "$body" ] || grep -qF -- "$body" "$tmp/$i.body"; then ok=yes; else err="body lacks: $body"; fi
  elif [ -z "$err" ]; then err="status $code, expected $expect"
  fi
  printf '%s|%s|%s|%s|%s|%s|%s\n' "$name" "$url" "$ok" "$code" "$ms" "$req" "$err" >"$tmp/$i.res"
}

i=0
for p in "${PROBES[@]}"; do
  IFS='|' read -r name host url expect body req auth timeout <<<"$p"
  if [ -n "$host_filter" ] && [ "$host" != "$host_filter" ]; then continue; fi
  probe "$i" "$name" "$url" "$expect" "$body" "$req" "$auth" "${timeout_override:-$timeout}" &
  i=$((i + 1))
done
wait

failed=0 first=1
[ "$json" = 1 ] && printf '['
[ "$json" = 0 ] && printf '%-16s %-5s %-6s %8s  %-9s %s\n' SERVICE OK STATUS MS REQUIRED URL
for ((j = 0; j < i; j++)); do
  IFS='|' read -r name url ok code ms req err <"$tmp/$j.res"
  if [ "$ok" != yes ] && [ "$req" = required ]; then failed=1; fi
  if [ "$json" = 1 ]; then
    [ $first = 1 ] || printf ','
    first=0
    printf '{"service":"%s","url":"%s","ok":%s,"status":%s,"latency_ms":%s,"required":%s,"error":"%s"}' \
      "$name" "$url" "$([ "$ok" = yes ] && echo true || echo false)" "$((10#$code))" "$ms" \
      "$([ "$req" = required ] && echo true || echo false)" "$err"
  else
    printf '%-16s %-5s %-6s %8s  %-9s %s%s\n' "$name" "$ok" "$code" "$ms" "$req" "$url" "${err:+  ($err)}"
  fi
done
[ "$json" = 1 ] && printf ']\n'
exit $failed
'''

RESTART_BODY = r'''
usage() {
  cat <<'EOF'
Usage: restart-all.sh [--host NAME] [--dry-run]
Restarts this host's homelab units in dependency order, waits for each, then runs healthcheck.sh.
The host is --host, else $HOMELAB_HOST, else the only host, else the one named like `hostname -s`.
EOF
}
host="${HOMELAB_HOST:-}" dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --host) host="${2:?--host needs a name}"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "restart-all.sh: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$host" ]; then
  if [ "${#UNITS[@]}" = 1 ]; then host="${!UNITS[*]}"; else host=$(hostname -s); fi
fi
if [ -z "${UNITS[$host]+set}" ]; then
  echo "restart-all.sh: unknown host '$host' (known: ${!UNITS[*]}); pass --host" >&2; exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for unit in ${UNITS[$host]}; do
  if [ "$dry" = 1 ]; then echo "systemctl restart $unit"; continue; fi
  echo "restarting $unit"
  systemctl restart "$unit"
  for _ in $(seq 1 30); do systemctl is-active --quiet "$unit" && break; sleep 1; done
  systemctl is-active --quiet "$unit" || { echo "restart-all.sh: $unit did not become active" >&2; exit 1; }
done
if [ "$dry" = 1 ]; then echo "$here/healthcheck.sh --host $host"; exit 0; fi
exec "$here/healthcheck.sh" --host "$host"
'''


def _head(source: str) -> str:
    return "#!/usr/bin/env bash\n" + banner(source) + "set -uo pipefail\n"


def render_healthcheck(repo: Repo) -> str:
    rows = []
    for svc in sorted(repo.services.values(), key=lambda s: (s.spec.host, s.name)):
        url, h = health_url(repo, svc, local=True), svc.spec.health
        if url is None or h is None:
            continue
        required = "required" if h.required else "optional"
        rows.append(f'  "{svc.name}|{svc.spec.host}|{url}|{h.expect_status}|{h.expect_body}'
                    f'|{required}|{h.auth_env or ""}|{h.timeout_s:g}"')
    data = "# service|host|url|expect_status|expect_body|required|auth_env|timeout_s\nPROBES=(\n"
    data += "\n".join(rows) + "\n)\n"
    return _head("every layer-*/*/SERVICE_SPEC.md (health)") + data + HEALTH_BODY


def render_restart_all(repo: Repo) -> str:
    try:
        order = start_order(list(repo.services.values()))
    except CycleError:  # `check` reports the loop (HL406); render stays usable meanwhile
        order = sorted(repo.services.values(), key=lambda s: (KIND_ORDER[s.spec.kind], s.name))
    lines = ["declare -A UNITS=("]
    for host in repo.mesh.hosts:
        units = [s.spec.systemd.unit for s in order
                 if s.spec.host == host.name and s.spec.systemd]
        lines.append(f'  [{host.name}]="{" ".join(units)}"')
    lines.append(")")
    return _head("every layer-*/*/SERVICE_SPEC.md (systemd, run.after)") + "\n".join(lines) + "\n" + RESTART_BODY


def probed_services(healthcheck_text: str) -> set[str]:
    """Service names that have a probe line in a healthcheck.sh (for the checklist rule)."""
    return set(_PROBE_RE.findall(healthcheck_text))
