#!/usr/bin/env bash
# Start OptiLLM behind the gateway, on loopback only.
#
#   scripts/start.sh --host 127.0.0.1 --port 4020
#
# Env (from the process manager / EnvironmentFile):
#   LITELLM_MASTER_KEY  key OptiLLM uses to call the gateway back (handed over as OPENAI_API_KEY)
#   OPTILLM_PROXY_KEY   key clients (the gateway) must send; reaches OptiLLM's --optillm-api-key
#                       in-process through scripts/launch.py, so it never shows in `ps`
#   OPTILLM_BASE_URL    the gateway's /v1 base (default http://127.0.0.1:4000/v1)
#   OPTILLM_LOG_LEVEL   OptiLLM's log level (default warning)
set -euo pipefail

service_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host="127.0.0.1"
port="4020"

die() { echo "start.sh: error: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --host) host="${2:?--host needs a value}"; shift 2 ;;
    --port) port="${2:?--port needs a value}"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (expected --host, --port)" ;;
  esac
done

[[ "$port" =~ ^[0-9]+$ ]] || die "--port must be a number, got '$port'"
# OptiLLM is a Flask dev server that spends gateway credit on every call: never on the LAN.
case "$host" in
  127.*|::1|localhost) ;;
  *) die "--host must be a loopback address (127.0.0.1, ::1), got '$host': optillm-proxy is localhost-only" ;;
esac

[[ -n "${LITELLM_MASTER_KEY:-}" ]] || die "LITELLM_MASTER_KEY is not set (the key OptiLLM calls the gateway with)"
[[ -n "${OPTILLM_PROXY_KEY:-}" ]] || die "OPTILLM_PROXY_KEY is not set (the key the gateway must send)"
# A client bearer token starting with sk- is forwarded upstream by OptiLLM instead of its own key:
# the mesh's one sk- rule (meshkit.keys).
uv run --project "$service_dir" --frozen python -m meshkit.keys --not-master OPTILLM_PROXY_KEY \
  || die "bad key (see above)"

base_url="${OPTILLM_BASE_URL:-http://127.0.0.1:4000/v1}"
client_key="$OPTILLM_PROXY_KEY"
upstream_key="$LITELLM_MASTER_KEY"
log_level="${OPTILLM_LOG_LEVEL:-warning}"

# OptiLLM reads a default for every flag from an OPTILLM_* variable, and OPTILLM_API_KEY in the
# environment switches it into local HF inference (downloads a model, answers 500). Clear them
# all so only the flags below count. Other providers' keys would win over OPENAI_API_KEY.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep -E '^OPTILLM_' || true)
unset CEREBRAS_API_KEY AZURE_OPENAI_API_KEY LITELLM_MASTER_KEY
export OPENAI_API_KEY="$upstream_key"
export HOMELAB_OPTILLM_CLIENT_KEY="$client_key"

cd "$service_dir"
exec uv run --project "$service_dir" --frozen python scripts/launch.py \
  --host "$host" --port "$port" --base-url "$base_url" --log "$log_level"
