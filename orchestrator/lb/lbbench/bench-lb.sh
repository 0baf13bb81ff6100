#!/usr/bin/env bash
# bench-lb.sh: Flotilla's load balancer against nginx and HAProxy, on this
# machine, to 127.0.0.1 only.
#
# Three shop replicas run as plain processes (or, with
# BACKENDS="HOST:PORT,HOST:PORT,...", the given ones are used and none is
# started; wrk still loads 127.0.0.1 only, so backends elsewhere, such as
# the project's containers on its network, get no direct round). In front of them: Flotilla's balancer (orchestrator/lb via
# lbbench), nginx and HAProxy, each configured as its documentation
# recommends for a keep-alive reverse proxy. wrk loads, in alternating
# rounds: (a) one replica directly, the ceiling; (b) Flotilla; (c) nginx;
# (d) HAProxy. It prints, per target, the median over the rounds of
# requests/s, p50 and p99 latency, and the proxy's CPU seconds per request
# (utime+stime of the proxy process and all its workers, from /proc, over
# the run, divided by the requests wrk completed). Each round starts one
# target further on in the list.
#
# Knobs (env): ROUNDS (3), DURATION (10s), THREADS (2), CONNECTIONS (64),
# URL_PATH (/catalog), BACKENDS, TARGETS (direct flotilla nginx haproxy),
# BASELINE=1 to add target "stdlib": the same bench program running the
# standard library's httputil.ReverseProxy, the baseline the data path was
# chosen against; FASTHTTP=1 to add target "fasthttp": Flotilla's balancer
# on its fasthttp data path instead of the event loop. Every process it
# starts is stopped on exit.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
URL_PATH=${URL_PATH:-/catalog}
TARGETS=${TARGETS:-direct flotilla nginx haproxy}
if [ "${BASELINE:-0}" = 1 ]; then TARGETS="$TARGETS stdlib"; fi
if [ "${FASTHTTP:-0}" = 1 ]; then TARGETS="$TARGETS fasthttp"; fi

# The module root: the nearest folder above this script with a go.mod.
root=$(cd "$(dirname "$0")" && pwd)
while [ ! -f "$root/go.mod" ] && [ "$root" != / ]; do root=$(dirname "$root"); done
cd "$root"
TMP=$(mktemp -d /tmp/flotilla-bench-lb.XXXXXX)
chmod 755 "$TMP"
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		# wait only reaps our own children; poll for the rest (none expected).
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*"; }

# --- tools -------------------------------------------------------------------
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]} from Debian"
	as_root apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
		{ as_root apt-get update >/dev/null && as_root apt-get install -y "${missing[@]}" >/dev/null; }
fi
PATH=$PATH:/usr/sbin
# The proxies run unprivileged: as nobody when this script runs as root.
unpriv=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	unpriv=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi

# --- ports -------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_port=$((20000 + RANDOM % 10000)) # below the ephemeral range (32768-)
free_port() { # sets PORT_FOUND; not in a subshell, so ports never repeat
	while port_in_use "$next_port"; do next_port=$((next_port + 1)); done
	PORT_FOUND=$next_port
	next_port=$((next_port + 1))
}
wait_port() { # addr: host:port
	local host=${1%:*} port=${1##*:}
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	log "nothing listens on $1"
	return 1
}

# --- backends ----------------------------------------------------------------
if [ -n "${BACKENDS:-}" ]; then
	IFS=, read -r -a backends <<<"$BACKENDS"
	log "backends (given): ${backends[*]}"
else
	log "building the shop"
	CGO_ENABLED=0 go build -o "$TMP/shop" ./cmd/shop
	backends=()
	for i in 1 2 3; do
		# Another program may take a free port before the shop binds it:
		# try a few.
		for try in 1 2 3; do
			free_port
			p=$PORT_FOUND
			PORT=$p ADMIN_PORT=0 FLOTILLA_ROLE=monolith FLOTILLA_REPLICA=shop-$i "$TMP/shop" >"$TMP/shop-$i.log" 2>&1 &
			pid=$!
			PIDS+=($pid)
			if wait_port "127.0.0.1:$p" && kill -0 "$pid" 2>/dev/null; then
				backends+=("127.0.0.1:$p")
				break
			fi
			cat "$TMP/shop-$i.log"
			[ "$try" = 3 ] && exit 1
		done
	done
	log "backends (plain processes): ${backends[*]}"
fi
for b in "${backends[@]}"; do
	wait_port "$b"
done

# --- proxies -----------------------------------------------------------------
declare -A addr proxy_pid
# wrk loads 127.0.0.1 only. Given backends elsewhere (the project's own
# containers, on its network) are dialed by the proxies alone, and the
# direct target is left out.
case ${backends[0]} in
127.0.0.1:*) addr[direct]=${backends[0]} ;;
*)
	log "backend ${backends[0]} is not on 127.0.0.1: no direct target"
	TARGETS=$(tr ' ' '\n' <<<"$TARGETS" | grep -vx direct | paste -sd' ' -)
	;;
esac

log "building Flotilla's balancer"
CGO_ENABLED=0 go build -o "$TMP/lbbench" ./orchestrator/lb/lbbench
free_port
addr[flotilla]=127.0.0.1:$PORT_FOUND
upstreams=$(
	IFS=,
	echo "${backends[*]}"
)
"${unpriv[@]}" "$TMP/lbbench" --listen "${addr[flotilla]}" --upstreams "$upstreams" >"$TMP/lbbench.log" 2>&1 &
proxy_pid[flotilla]=$!
PIDS+=($!)
# start_engine TARGET ENGINE: another lbbench engine as target TARGET.
start_engine() {
	free_port
	addr[$1]=127.0.0.1:$PORT_FOUND
	"${unpriv[@]}" "$TMP/lbbench" --engine "$2" --listen "${addr[$1]}" --upstreams "$upstreams" >"$TMP/$1.log" 2>&1 &
	proxy_pid[$1]=$!
	PIDS+=($!)
}
if [[ " $TARGETS " == *" stdlib "* ]]; then start_engine stdlib httputil; fi
if [[ " $TARGETS " == *" fasthttp "* ]]; then start_engine fasthttp fasthttp; fi

free_port
addr[nginx]=127.0.0.1:$PORT_FOUND
mkdir -p "$TMP/nginx"
{
	echo "worker_processes auto;"
	echo "pid $TMP/nginx/nginx.pid;"
	echo "error_log $TMP/nginx/error.log warn;"
	echo "daemon off;"
	echo "events { worker_connections 4096; }"
	echo "http {"
	echo "  access_log off;"
	for t in client_body proxy fastcgi uwsgi scgi; do echo "  ${t}_temp_path $TMP/nginx/$t;"; done
	echo "  upstream shop {"
	for b in "${backends[@]}"; do echo "    server $b;"; done
	echo "    keepalive 64;"
	echo "  }"
	echo "  server {"
	echo "    listen ${addr[nginx]};"
	echo "    location / {"
	echo "      proxy_pass http://shop;"
	echo "      proxy_http_version 1.1;"
	echo "      proxy_set_header Connection \"\";"
	echo "      proxy_set_header Host \$host;"
	echo "      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;"
	echo "    }"
	echo "  }"
	echo "}"
} >"$TMP/nginx/nginx.conf"
chown -R nobody:nogroup "$TMP/nginx" 2>/dev/null || true
"${unpriv[@]}" nginx -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>>"$TMP/nginx/stderr.log" &
proxy_pid[nginx]=$!
PIDS+=($!)

free_port
addr[haproxy]=127.0.0.1:$PORT_FOUND
{
	echo "global"
	echo "  nbthread 2"
	echo "  maxconn 4096"
	echo "defaults"
	echo "  mode http"
	echo "  timeout connect 1s"
	echo "  timeout client 30s"
	echo "  timeout server 30s"
	echo "  http-reuse always"
	echo "frontend fe"
	echo "  bind ${addr[haproxy]}"
	echo "  option forwardfor"
	echo "  default_backend shop"
	echo "backend shop"
	echo "  balance roundrobin"
	i=0
	for b in "${backends[@]}"; do i=$((i + 1)); echo "  server s$i $b"; done
} >"$TMP/haproxy.cfg"
"${unpriv[@]}" haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
proxy_pid[haproxy]=$!
PIDS+=($!)

for t in flotilla nginx haproxy ${addr[stdlib]:+stdlib} ${addr[fasthttp]:+fasthttp}; do
	wait_port "${addr[$t]}" || { cat "$TMP"/*.log "$TMP"/nginx/*.log 2>/dev/null; exit 1; }
done
# setpriv execs, so each PID above is the proxy itself; nginx's workers are
# its children, found through /proc/PID/stat's ppid.

# --- measuring ---------------------------------------------------------------
# cpu_ticks PID: utime+stime of PID and all its descendants, in clock ticks.
cpu_ticks() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
		{
			pid = $1
			line = $0
			sub(/^.*\) /, "", line) # after the command name: state 1st, ppid 2nd, utime 12th, stime 13th
			split(line, f, " ")
			ppid[pid] = f[2]; ticks[pid] = f[12] + f[13]
		}
		END {
			for (p in ticks) {
				q = p
				for (depth = 0; depth < 8 && q != "" && q != "0"; depth++) {
					if (q == root) { total += ticks[p]; break }
					q = ppid[q]
				}
			}
			print total + 0
		}'
}
HZ=$(getconf CLK_TCK)

# to_ms VALUE: wrk's "1.23ms", "456.00us", "1.01s" in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else printf "%s", v }'
}

declare -A results # "target round" -> "rps p50 p99 cpu_per_req errors"

run_wrk() { # target round
	local t=$1 r=$2 out before after reqs rps p50 p99 errs cpu
	before=0
	[ -n "${proxy_pid[$t]:-}" ] && before=$(cpu_ticks "${proxy_pid[$t]}")
	out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://${addr[$t]}$URL_PATH")
	after=0
	[ -n "${proxy_pid[$t]:-}" ] && after=$(cpu_ticks "${proxy_pid[$t]}")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	errs=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
	if [ -n "${proxy_pid[$t]:-}" ]; then
		cpu=$(awk -v d=$((after - before)) -v hz="$HZ" -v n="$reqs" 'BEGIN {printf "%.3e", d / hz / n}')
	else
		cpu=-
	fi
	results["$t $r"]="$rps $p50 $p99 $cpu $errs"
	printf '  round %d %-9s %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  cpu/req %s s  errors %d\n' \
		"$r" "$t" "$rps" "$p50" "$p99" "$cpu" "$errs"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
col() { # target column-number
	local t=$1 c=$2 r vals=()
	for r in $(seq "$ROUNDS"); do
		read -r -a v <<<"${results["$t $r"]}"
		vals+=("${v[$((c - 1))]}")
	done
	[ "${vals[0]}" = - ] && { echo -; return; }
	echo "${vals[*]}" | median
}

log "machine: $(nproc) cores, $(uname -r); load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, GET $URL_PATH"
log "flotilla=${addr[flotilla]} nginx=${addr[nginx]} haproxy=${addr[haproxy]}${addr[direct]:+ direct=${addr[direct]}}${addr[stdlib]:+ stdlib=${addr[stdlib]}}${addr[fasthttp]:+ fasthttp=${addr[fasthttp]}}"
log "warming up"
for t in $TARGETS; do wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://${addr[$t]}$URL_PATH" >/dev/null; done
# Each round starts one target further on, so no target always follows
# the same one (the direct round leaves the replicas busiest).
read -r -a order <<<"$TARGETS"
for r in $(seq "$ROUNDS"); do
	log "round $r"
	for i in $(seq 0 $((${#order[@]} - 1))); do
		run_wrk "${order[$(((i + r - 1) % ${#order[@]}))]}" "$r"
	done
done

log ""
log "median of $ROUNDS rounds"
printf '%-10s %12s %10s %10s %14s %8s\n' target "req/s" "p50 ms" "p99 ms" "cpu s/req" errors
declare -A med_rps med_cpu
for t in $TARGETS; do
	med_rps[$t]=$(col "$t" 1)
	med_cpu[$t]=$(col "$t" 4)
	printf '%-10s %12.0f %10.3f %10.3f %14s %8s\n' "$t" "${med_rps[$t]}" "$(col "$t" 2)" "$(col "$t" 3)" "${med_cpu[$t]}" "$(col "$t" 5)"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b}'; }
log ""
for other in nginx haproxy; do
	[ -n "${med_rps[$other]:-}" ] && [ -n "${med_rps[flotilla]:-}" ] || continue
	printf 'flotilla/%-8s throughput %sx   cpu per request %sx\n' "$other" \
		"$(ratio "${med_rps[flotilla]}" "${med_rps[$other]}")" "$(ratio "${med_cpu[flotilla]}" "${med_cpu[$other]}")"
done
