#!/usr/bin/env bash
# Start the gateway (LiteLLM's proxy app behind our middleware) with the mesh's config.
#
#   scripts/start.sh --host 0.0.0.0 --port 4000 [--config FILE] [--workers N]
#
# Workers default to $LITELLM_NUM_WORKERS, else 2 (one per core on the 2-core homelab host).
#
# Env comes from the environment (systemd / `homelab up` load config/env.local); when run by hand,
# variables missing from the environment are read from config/env.local if it exists.
set -euo pipefail

service_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host="0.0.0.0"
port="4000"
config="$service_dir/config/router.yaml"
workers="${LITELLM_NUM_WORKERS:-2}"

die() { echo "start.sh: error: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --host) host="${2:?--host needs a value}"; shift 2 ;;
    --port) port="${2:?--port needs a value}"; shift 2 ;;
    --config) config="${2:?--config needs a value}"; shift 2 ;;
    --workers) workers="${2:?--workers needs a value}"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (expected --host, --port, --config, --workers)" ;;
  esac
done

[[ "$port" =~ ^[0-9]+$ ]] || die "--port must be a number, got '$port'"
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive number, got '$workers'"
[[ -f "$config" ]] || die "config file not found: $config"

# Fill only what the environment does not already define: the process manager wins. Parsed by
# meshkit.envfile (the one env-file parser of the mesh: strict, errors name file:line).
env_file="$service_dir/config/env.local"
if [[ -f "$env_file" ]]; then
  exports="$(uv run --project "$service_dir" --frozen python -m meshkit.envfile --export --missing-only "$env_file")" \
    || die "cannot use $env_file (see above)"
  eval "$exports"
fi

# Never fetch the model cost map from the internet (blocking 5 s timeout + retries on import).
export LITELLM_LOCAL_MODEL_COST_MAP="${LITELLM_LOCAL_MODEL_COST_MAP:-True}"
# Quiet by default: per-request INFO logging is measurable overhead.
export LITELLM_LOG="${LITELLM_LOG:-ERROR}"

[[ -n "${LITELLM_MASTER_KEY:-}" ]] || die "LITELLM_MASTER_KEY is not set (put it in $env_file or the unit's EnvironmentFile)"
# The sk- rule (meshkit.keys): the master key starts with sk-, OptiLLM's key must not.
uv run --project "$service_dir" --frozen python -m meshkit.keys \
  --master LITELLM_MASTER_KEY --not-master OPTILLM_PROXY_KEY || die "bad key (see above)"

cd "$service_dir"
# Our launcher, not `litellm`: exactly host:port (LiteLLM's CLI moves to a random port when 4000 is
# taken), workers that die with their master, and the gateway middleware (src/litellm_orch/serve.py).
exec uv run --project "$service_dir" --frozen python -m litellm_orch.serve \
  --config "$config" --host "$host" --port "$port" --workers "$workers"
