#!/usr/bin/env bash
# Run Prometheus with the scrape config rendered from the contracts (../config/prometheus.yml).
#   start.sh BIND PORT    write the scrape keys and a copy of the config into
#                         $PROMETHEUS_DATA_DIR, then exec prometheus there
#   start.sh --check      only check that the prometheus binary is installed (run.prepare)
# The config names keys as `credentials_file: keys/<ENV VAR>` (relative to the config file):
# each is written here from this process's environment, mode 0600, never into git.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${PROMETHEUS_BIN:-prometheus}"
if ! command -v "$bin" >/dev/null 2>&1; then
  echo "prometheus: the prometheus binary is not installed ('$bin' is not on PATH)." >&2
  echo "Install the Debian package: sudo apt-get install prometheus" >&2
  echo "(or set PROMETHEUS_BIN to a prometheus binary in /etc/homelab-llm/prometheus.env)." >&2
  exit 127
fi
if [[ "${1:-}" == "--check" ]]; then
  exit 0
fi
if [[ $# -ne 2 ]]; then
  echo "usage: start.sh BIND PORT | start.sh --check" >&2
  exit 2
fi
bind="$1"
port="$2"
data="${PROMETHEUS_DATA_DIR:?prometheus: PROMETHEUS_DATA_DIR is not set}"
config="$here/config/prometheus.yml"

mkdir -p "$data/keys" "$data/tsdb"
chmod 700 "$data" "$data/keys"
while read -r name; do
  [[ -n "$name" ]] || continue
  value="${!name:-}"
  if [[ -z "$value" ]]; then
    echo "prometheus: $name is not set: a scrape target needs it (see config/prometheus.yml);" \
         "set it in /etc/homelab-llm/prometheus.env" >&2
    exit 2
  fi
  (umask 077 && printf '%s' "$value" > "$data/keys/$name.tmp")
  mv -f "$data/keys/$name.tmp" "$data/keys/$name"
done < <(grep -E '^[[:space:]]+credentials_file: keys/' "$config" | sed -E 's#.*keys/([A-Za-z0-9_]+).*#\1#' | sort -u)
cp "$config" "$data/prometheus.yml.tmp"
mv -f "$data/prometheus.yml.tmp" "$data/prometheus.yml"

# The address goes in brackets for IPv6 (host:port syntax).
[[ "$bind" == *:* ]] && bind="[$bind]"
exec "$bin" \
  --config.file="$data/prometheus.yml" \
  --storage.tsdb.path="$data/tsdb" \
  --storage.tsdb.retention.time="${PROMETHEUS_RETENTION_TIME:-15d}" \
  --storage.tsdb.retention.size="${PROMETHEUS_RETENTION_SIZE:-1GB}" \
  --web.listen-address="$bind:$port"
