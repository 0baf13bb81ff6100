#!/usr/bin/env bash
# bench-lb-replicas.sh: the balancer comparison of bench-lb.sh, this time in
# front of three real replicas run by a Flotilla controller. All proxies
# dial the same addresses, twice over:
#   1. the replicas' upstream, the address Flotilla's balancer dials (the
#      project network on Linux);
#   2. the replicas' published ports on 127.0.0.1, through the engine's
#      port proxy.
# It starts a controller of its own on a free port with a state directory
# of its own, and removes everything that controller made when it ends.
set -euo pipefail
cd "$(dirname "$0")/../../.."

BIN=${BIN:-bin/flotilla}
ADDR=${BENCH_ADDR:-127.0.0.1:8097}
TMP=$(mktemp -d /tmp/flotilla-bench-replicas.XXXXXX)
SERVE_PID=

cleanup() {
	if [ -n "$SERVE_PID" ]; then
		"$BIN" down --addr "$ADDR" >/dev/null 2>&1 || true
		kill "$SERVE_PID" 2>/dev/null || true
		wait "$SERVE_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

"$BIN" serve --addr "$ADDR" --state-dir "$TMP/state" --project "flotilla-bench-$(basename "$TMP" | tr -dc 'a-z0-9' | tail -c 8)" >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 600); do
	curl -fs "http://$ADDR/healthz" >/dev/null 2>&1 && break
	kill -0 "$SERVE_PID" 2>/dev/null || { cat "$TMP/serve.log"; exit 1; }
	sleep 0.5
done
curl -fs -X PUT "http://$ADDR/api/v1/groups/bench" -H 'Content-Type: application/json' \
	-d '{"service":"monolith","replicas":3,"resources":{"milliCPU":2000,"memoryMiB":128}}' >/dev/null
ups=""
for _ in $(seq 120); do
	st=$(curl -fs "http://$ADDR/api/v1/groups/bench")
	if printf '%s' "$st" | grep -q '"ready":3'; then
		ups=$(printf '%s' "$st" | grep -o '"upstream":"[^"]*"' | cut -d'"' -f4 | paste -sd, -)
		pubs=$(printf '%s' "$st" | grep -o '"address":"[^"]*"' | cut -d'"' -f4 | paste -sd, -)
		[ "$(printf '%s' "$ups" | tr ',' '\n' | grep -c .)" = 3 ] && break
	fi
	sleep 0.5
done
[ -n "$ups" ] || { echo "the replicas did not become ready"; cat "$TMP/serve.log"; exit 1; }

echo "=== real replicas, at their upstream addresses: $ups"
BACKENDS="$ups" bash orchestrator/lb/lbbench/bench-lb.sh
echo
echo "=== real replicas, at their published ports: $pubs"
BACKENDS="$pubs" bash orchestrator/lb/lbbench/bench-lb.sh
