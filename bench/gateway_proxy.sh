#!/usr/bin/env bash
# gateway_proxy.sh - the holoscope gateway side by side with nginx as a plain
# streaming reverse proxy, both in front of the same upstream.
#
# Two upstreams (MODE):
#   static  nginx serving a fixed text/event-stream body at once (the shared
#           ../shared/bench/peers/proxy.sh setup, run through that script):
#           what each proxy adds per request, with no waiting on the engine.
#   paced   a chunked upstream like a real engine: the first event after
#           FIRST_MS, then EVENTS chat.completion.chunk events PACE_MS apart,
#           then a usage chunk and [DONE] (Python asyncio, one process).
# For each connection count in CONNS, wrk (keep-alive, post.lua) runs against
#   direct      wrk -> upstream
#   nginx       wrk -> nginx (proxy_buffering off, keep-alive pool) -> upstream
#   holoscope   wrk -> holoscope gateway -> upstream
# and the script prints requests/s, latency p50/p99, the added latency
# (proxy - direct) at p50 and p99, the proxy's CPU µs per request, its RSS
# after the run, and holoscope/nginx ratios.
#
# usage: HOLOSCOPE_BIN=build/rel/holoscope bench/gateway_proxy.sh
#   env: MODE (paced|static|both; default both) CONNS (static, default "1 32 128 1024")
#        PACED_CONNS (paced, default "1 32 128": one Python process cannot pace
#        1,024 streams, so the upstream, not the proxy, would be measured)
#        DURATION (s per run, default 10) EVENTS (default 64) PACE_MS (default 2)
#        FIRST_MS (default 20) THREADS (wrk threads, default 2)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/bench/peers}
HERE=$PEERS_DIR
. "$PEERS_DIR/lib.sh"

MODE=${MODE:-both}
CONNS=${CONNS:-1 32 128 1024}
PACED_CONNS=${PACED_CONNS:-1 32 128}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
EVENTS=${EVENTS:-64}
PACE_MS=${PACE_MS:-2}
FIRST_MS=${FIRST_MS:-20}
UP_PORT=${UP_PORT:-19211}
NGINX_PORT=${NGINX_PORT:-19212}
HOLO_GW_PORT=${HOLO_GW_PORT:-19213}
HOLOSCOPE_BIN=${HOLOSCOPE_BIN:-$ROOT/build/rel/holoscope}
# Results go under build/, never into the shared peer folder (read-only reference data).
RESULTS_DIR=${RESULTS_DIR:-$ROOT/build/bench/results}
export RESULTS_DIR
mkdir -p "$RESULTS_DIR"
[ -x "$HOLOSCOPE_BIN" ] || die "set HOLOSCOPE_BIN to a holoscope binary (a release build)"
ulimit -n 65536 2>/dev/null || true

if [ "$MODE" = static ] || [ "$MODE" = both ]; then
    log "static upstream: ../shared/bench/peers/proxy.sh with nginx and holoscope"
    PEERS="nginx holoscope" CONNS="$CONNS" DURATION="$DURATION" THREADS="$THREADS" \
        EVENTS="$EVENTS" HOLOSCOPE_BIN="$HOLOSCOPE_BIN" \
        HOLOSCOPE_ARGS="--collectors.host=false --collectors.gpu=false" \
        bash "$PEERS_DIR/proxy.sh"
    [ "$MODE" = static ] && exit 0
fi

WORK=$(mktemp -d /tmp/holobench-gwproxy.XXXXXX)
trap 'cleanup_pids; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
chmod 755 "$WORK"
mkdir -p "$WORK/tmp"
PATH_URI=/v1/chat/completions

# ---------------------------------------------------------------- paced upstream
cat >"$WORK/paced.py" <<'PY'
import asyncio, json, sys
port, events, pace, first = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000
base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
        "model": "bench-model", "system_fingerprint": None}
def ev(delta, fin=None, usage=None, choices=True):
    c = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": fin}] if choices else [])
    c["usage"] = usage
    b = ("data: " + json.dumps(c, separators=(",", ":")) + "\n\n").encode()
    return b"%x\r\n%s\r\n" % (len(b), b)
EV = [ev({"role": "assistant", "content": ""})] + [ev({"content": " tok%d" % i}) for i in range(events)] + \
     [ev({}, "stop")]
USAGE = ev(None, usage={"prompt_tokens": 31, "completion_tokens": events, "total_tokens": 31 + events}, choices=False)
DONE = b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
HDR = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
async def handle(r, w):
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            body = await r.readexactly(n)
            await asyncio.sleep(first)
            w.write(HDR + EV[0])
            for e in EV[1:]:
                await asyncio.sleep(pace)
                w.write(e)
            if b'"include_usage":true' in body:
                w.write(USAGE)
            w.write(DONE)
            await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    w.close()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with s:
        await s.serve_forever()
asyncio.run(main())
PY
python3 "$WORK/paced.py" "$UP_PORT" "$EVENTS" "$PACE_MS" "$FIRST_MS" >"$WORK/paced.log" 2>&1 &
UP_PID=$!
track_pid "$UP_PID"
wait_port "$UP_PORT" 30 || die "paced upstream did not start: $(cat "$WORK/paced.log")"

# ---------------------------------------------------------------- proxies
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    upstream llm { server 127.0.0.1:$UP_PORT; keepalive 1024; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://llm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
EOF
nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" >"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!
track_pid "$NGINX_PID"

cat >"$WORK/holoscope.yml" <<EOF
collectors: {host: false, gpu: false}
gateway:
  listen: 127.0.0.1:$HOLO_GW_PORT
  access_log: false
  max_connections: 8192
  routes:
    - model: "*"
      upstreams: [http://127.0.0.1:$UP_PORT]
EOF
"$HOLOSCOPE_BIN" serve --listen=127.0.0.1:$((HOLO_GW_PORT + 1)) --data="$WORK/holo-data" \
    --config="$WORK/holoscope.yml" --log.level=warn >"$WORK/holoscope.log" 2>&1 &
HOLO_PID=$!
track_pid "$HOLO_PID"
wait_port "$NGINX_PORT" 30 || die "nginx did not start: $(cat "$WORK"/nginx*.log)"
wait_port "$HOLO_GW_PORT" 60 || die "holoscope did not start: $(tail -5 "$WORK/holoscope.log")"

tree_ticks() {
    local pid=$1 c total
    total=$(cpu_ticks "$pid")
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        total=$((total + $(cpu_ticks "$c" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
tree_rss_kb() {
    local pid=$1 c total
    total=$(awk '/VmRSS/{print $2}' /proc/"$pid"/status)
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        total=$((total + $(awk '/VmRSS/{print $2}' /proc/"$c"/status 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# run NAME PORT CONNS PID -> "rps p50 p99 cpu_us rss_kb errors"
run() {
    local name=$1 port=$2 c=$3 pid=$4 t=$THREADS out p0=0 p1=0
    [ "$c" -lt "$t" ] && t=$c
    out=$WORK/wrk-$name-$c.txt
    [ -n "$pid" ] && p0=$(tree_ticks "$pid")
    wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 30s --latency -s "$PEERS_DIR/post.lua" \
        "http://127.0.0.1:$port$PATH_URI" >"$out" 2>&1 || die "wrk failed: $(tail -5 "$out")"
    [ -n "$pid" ] && p1=$(tree_ticks "$pid")
    local rss=0
    [ -n "$pid" ] && rss=$(tree_rss_kb "$pid")
    grep '^JSON ' "$out" | sed 's/^JSON //' | python3 -c '
import json, sys
d = json.load(sys.stdin)
secs = d["duration_us"] / 1e6
cpu = (int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3]) * 1e6 / max(d["requests"], 1)
err = sum(d[k] for k in d if k.startswith("errors_"))
print("%.1f %d %d %.1f %s %d" % (d["requests"] / secs, d["lat_p50_us"], d["lat_p99_us"], cpu,
                                 sys.argv[4], err))' "$p0" "$p1" "$CLK_TCK" "$rss"
}

printf '\npaced upstream: %d events, %d ms apart, first after %d ms; %d s per run\n' \
    "$EVENTS" "$PACE_MS" "$FIRST_MS" "$DURATION"
printf '%-6s %-10s %10s %9s %9s %10s %10s %9s %8s %6s\n' conns path req/s p50_us p99_us \
    added_p50 added_p99 cpu_us/req rss_MiB errors
for c in $PACED_CONNS; do
    read -r d_rps d_p50 d_p99 _ _ d_err <<<"$(run direct "$UP_PORT" "$c" "")"
    printf '%-6s %-10s %10s %9s %9s %10s %10s %9s %8s %6s\n' "$c" direct "$d_rps" "$d_p50" \
        "$d_p99" - - - - "$d_err"
    declare -A R
    for peer in nginx holoscope; do
        port=$NGINX_PORT pid=$NGINX_PID
        [ "$peer" = holoscope ] && port=$HOLO_GW_PORT pid=$HOLO_PID
        read -r rps p50 p99 cpu rss err <<<"$(run "$peer" "$port" "$c" "$pid")"
        R[$peer]="$rps $((p50 - d_p50)) $((p99 - d_p99)) $cpu"
        printf '%-6s %-10s %10s %9s %9s %10s %10s %9s %8s %6s\n' "$c" "$peer" "$rps" "$p50" "$p99" \
            "$((p50 - d_p50))" "$((p99 - d_p99))" "$cpu" "$((rss / 1024))" "$err"
    done
    read -r n_rps n_a50 n_a99 n_cpu <<<"${R[nginx]}"
    read -r h_rps h_a50 h_a99 h_cpu <<<"${R[holoscope]}"
    awk -v hr="$h_rps" -v nr="$n_rps" -v hc="$h_cpu" -v nc="$n_cpu" -v c="$c" \
        -v ha="$h_a50" -v na="$n_a50" -v h9="$h_a99" -v n9="$n_a99" 'BEGIN{
        printf "%-6s ratios holoscope/nginx: req/s %.2f  cpu/req %.2f  added p50 %dus vs %dus  added p99 %dus vs %dus\n",
            c, hr / (nr ? nr : 1), hc / (nc ? nc : 1), ha, na, h9, n9 }'
done
