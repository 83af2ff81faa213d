#!/usr/bin/env bash
# The mesh's gateway check: is LiteLLM up, hardened, and routing?
#
#   scripts/health-check.sh [--url http://127.0.0.1:4000] [--timeout 5] [--deep]
#
# Checks, in order (one line each, "ok" or "FAIL"):
#   liveliness   GET /health/liveliness answers 200 without a key
#   readiness    GET /health/readiness answers 200 without a key
#   no-key       GET /v1/models without a key is refused with 401
#   wrong-key    GET /v1/models with a wrong key is refused with 401
#   models       GET /v1/models with LITELLM_MASTER_KEY answers 200 and lists a model
#   deep         (--deep only) GET /health with the key: every deployment probed with a real
#                completion; fails when a backend is unhealthy (slow: it calls every model)
# The key comes from the environment, else from config/env.local. Without a key the keyed
# checks are skipped. Exit 0 all ok, 1 a check failed, 2 bad usage.
set -uo pipefail

service_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
url="http://127.0.0.1:4000"
timeout=5
deep=0

usage() { echo "health-check.sh: error: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --url) url="${2:?--url needs a value}"; shift 2 ;;
    --timeout) timeout="${2:?--timeout needs a value}"; shift 2 ;;
    --deep) deep=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) usage "unknown argument '$1' (expected --url, --timeout, --deep)" ;;
  esac
done
[[ "$timeout" =~ ^[0-9]+$ ]] || usage "--timeout must be whole seconds, got '$timeout'"
url="${url%/}"

key="${LITELLM_MASTER_KEY:-}"
if [[ -z "$key" && -f "$service_dir/config/env.local" ]]; then
  key="$(sed -n 's/^[[:space:]]*\(export[[:space:]]\+\)\?LITELLM_MASTER_KEY=//p' "$service_dir/config/env.local" \
    | tail -n 1 | sed "s/^[\"']//; s/[\"']$//")"
fi

failed=0
body_file="$(mktemp)"
trap 'rm -f "$body_file"' EXIT

# status PATH [KEY] -> prints the HTTP status (000 when unreachable), body in $body_file
status() {
  local args=(-s -o "$body_file" -w '%{http_code}' --max-time "$timeout")
  [[ -n "${2:-}" ]] && args+=(-H "Authorization: Bearer $2")
  curl "${args[@]}" "$url$1" 2>/dev/null || true
}

check() {  # NAME EXPECTED_STATUS PATH [KEY]
  local got
  got="$(status "$3" "${4:-}")"
  if [[ "$got" == "$2" ]]; then
    echo "ok    $1 ($3 -> $got)"
    return 0
  fi
  echo "FAIL  $1 ($3 -> ${got:-000}, expected $2)"
  failed=1
  return 1
}

check liveliness 200 /health/liveliness || { echo "gateway at $url is not answering"; exit 1; }
check readiness 200 /health/readiness
check no-key 401 /v1/models
check wrong-key 401 /v1/models "sk-health-check-wrong-key"
if [[ -z "$key" ]]; then
  echo "skip  models (no LITELLM_MASTER_KEY in the environment or config/env.local)"
elif check models 200 /v1/models "$key"; then
  if ! grep -q '"id"' "$body_file"; then
    echo "FAIL  models (/v1/models lists no model)"
    failed=1
  fi
fi
if [[ "$deep" == 1 && -n "$key" ]]; then
  timeout=$(( timeout > 120 ? timeout : 120 ))
  if check deep 200 /health "$key"; then
    if grep -q '"unhealthy_count":[1-9]' "$body_file"; then
      echo "FAIL  deep ($(grep -o '"unhealthy_count":[0-9]*' "$body_file"))"
      failed=1
    fi
  fi
fi
exit "$failed"
