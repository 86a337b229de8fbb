#!/usr/bin/env bash
# Long property-based run of schemathesis against a real server process (the demo bundle by default):
# every operation of the OpenAPI schema, thousands of generated cases, checks: no 5xx, documented content
# types, documented status codes, bodies that match the documented schemas (errors: {"error": ...}).
# Usage: scripts/fuzz.sh [MAX_EXAMPLES] [extra schemathesis flags]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
MAX=${1:-1000}
shift || true
PORT=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
LSLO_ADMIN_TOKEN=fuzz "$PY" -m server --port "$PORT" --log-format text --log-level error &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER' EXIT
ready=0
for _ in $(seq 1 600); do
  kill -0 "$SERVER" 2>/dev/null || { echo "fuzz: the server exited during start-up" >&2; exit 1; }
  curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && { ready=1; break; }
  sleep 0.2
done
[ "$ready" = 1 ] || { echo "fuzz: the server was not ready after 120 s" >&2; exit 1; }
ST="$(dirname "$PY")/schemathesis"
[ -x "$ST" ] || ST=$(command -v schemathesis) || { echo "fuzz: schemathesis is not installed" >&2; exit 1; }
"$ST" run "http://127.0.0.1:$PORT/openapi.json" \
  --checks not_a_server_error,content_type_conformance,response_headers_conformance,response_schema_conformance,status_code_conformance \
  --phases examples,coverage,fuzzing --max-examples "$MAX" --workers 2 --seed 7 \
  --header "Authorization: Bearer fuzz" --suppress-health-check all "$@"
