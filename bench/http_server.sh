#!/usr/bin/env bash
# bench/http_server.sh - the HTTP server alone: holoscope's /-/healthy against
# nginx answering the same small body from `return 200`, both with one worker
# thread on 127.0.0.1, driven by wrk with keep-alive.  Prints req/s, latency
# percentiles and CPU-µs per request of each server, and holoscope/nginx ratios.
#
# env: CONNS="1 32 128" DURATION=10 THREADS=2 HOLO_PORT=19310 NGINX_PORT=19311
set -euo pipefail
: "${HOLOSCOPE_BIN:?set HOLOSCOPE_BIN}"
CONNS=${CONNS:-1 32 128}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
HOLO_PORT=${HOLO_PORT:-19310}
NGINX_PORT=${NGINX_PORT:-19311}
RESULTS_DIR=${RESULTS_DIR:-build/bench/results}
mkdir -p "$RESULTS_DIR"
command -v wrk >/dev/null || { echo "http_server: wrk is not installed (make bench installs it)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "http_server: nginx is not installed" >&2; exit 1; }

WORK=$(mktemp -d /tmp/holobench-http.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
tree_ticks() {
    local t c
    t=$(ticks "$1")
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do t=$((t + $(ticks "$c"))); done
    echo "$t"
}
wait_up() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }

"$HOLOSCOPE_BIN" serve --listen=127.0.0.1:$HOLO_PORT --data="$WORK/data" \
    --http.max_connections=4096 >"$WORK/holo.log" 2>&1 &
PIDS+=($!); HOLO_PID=$!
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { default_type text/plain; return 200 "holoscope is Healthy.\n"; }
    }
}
CONF
nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" >/dev/null 2>&1 &
PIDS+=($!); NGINX_PID=$!
wait_up "http://127.0.0.1:$HOLO_PORT/-/healthy" || { cat "$WORK/holo.log"; exit 1; }
wait_up "http://127.0.0.1:$NGINX_PORT/-/healthy" || { cat "$WORK/nginx-error.log"; exit 1; }

json="$RESULTS_DIR/http_server.json"
echo "[" >"$json"
printf '%-6s %-10s %10s %9s %9s %9s %12s\n' conns server req/s p50_us p90_us p99_us cpu_us/req
first=1
for c in $CONNS; do
    declare -A rps=()
    for srv in holoscope nginx; do
        if [ $srv = holoscope ]; then port=$HOLO_PORT; pid=$HOLO_PID; else port=$NGINX_PORT; pid=$NGINX_PID; fi
        t=$THREADS; [ "$c" -lt "$t" ] && t=$c
        before=$(tree_ticks "$pid")
        out=$(wrk -t"$t" -c"$c" -d"${DURATION}s" --latency "http://127.0.0.1:$port/-/healthy")
        after=$(tree_ticks "$pid")
        reqs=$(echo "$out" | awk '/requests in/ {print $1}')
        r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        lat() { echo "$out" | awk -v p="$1" '$1 == p {v=$2; u=v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
            m = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : 1; printf "%.0f", v * m}'; }
        p50=$(lat 50%); p90=$(lat 90%); p99=$(lat 99%)
        cpu=$(awk -v a="$after" -v b="$before" -v n="$reqs" -v hz="$(getconf CLK_TCK)" \
            'BEGIN{printf "%.1f", (a-b)/hz*1e6/n}')
        rps[$srv]=$r
        printf '%-6s %-10s %10s %9s %9s %9s %12s\n' "$c" "$srv" "$r" "$p50" "$p90" "$p99" "$cpu"
        [ $first = 1 ] || echo "," >>"$json"
        first=0
        printf '{"conns":%s,"server":"%s","req_per_s":%s,"p50_us":%s,"p90_us":%s,"p99_us":%s,"cpu_us_per_req":%s}' \
            "$c" "$srv" "$r" "$p50" "$p90" "$p99" "$cpu" >>"$json"
    done
    awk -v h="${rps[holoscope]}" -v n="${rps[nginx]}" -v c="$c" \
        'BEGIN{printf "%-6s %-10s %10.2f   (holoscope / nginx, req/s)\n", c, "ratio", h/n}'
done
echo "]" >>"$json"
