#!/usr/bin/env bash
# bench/run.sh - side-by-side benchmarks: holoscope and the tools a user would
# pick instead, in one run, with ratios.
#
# Runs the peer harness of ../shared/bench/peers (scrape-and-store against
# Prometheus and VictoriaMetrics, PromQL range queries against the same,
# streaming proxy against nginx) from a writable copy under build/bench/, plus
# holoscope's own workloads in bench/ (bench/http_server.sh: the HTTP server
# against nginx on a trivial endpoint).
#
# holoscope joins a peer workload only when the binary can do it; otherwise
# the peers run alone and the report says what holoscope still lacks.  The
# checks are real capability probes of the built binary, not a hard-coded list:
#   scrape_ingest  `holoscope check config` accepts a scrape_configs section
#   query          `holoscope tsdb create-blocks-from --help` succeeds
#   proxy          `holoscope check config` accepts a gateway section
#
# usage: HOLOSCOPE_BIN=build/release/holoscope bench/run.sh [WORKLOAD...]
#   WORKLOAD: http_server scrape_ingest query proxy (default: all)
#   QUICK=1 shortens every workload (for a smoke run; figures are then rough).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS_SRC=${PEERS_SRC:-$ROOT/../shared/bench/peers}
OUT=${OUT:-$ROOT/build/bench}
: "${HOLOSCOPE_BIN:=$ROOT/build/release/holoscope}"
export HOLOSCOPE_BIN
[ -x "$HOLOSCOPE_BIN" ] || { echo "bench: build first (make build); no $HOLOSCOPE_BIN" >&2; exit 1; }
[ -d "$PEERS_SRC" ] || { echo "bench: peer harness not found at $PEERS_SRC" >&2; exit 1; }

WORKLOADS=${*:-http_server scrape_ingest query proxy}
mkdir -p "$OUT"
rm -rf "$OUT/peers"
cp -r "$PEERS_SRC" "$OUT/peers"
chmod -R u+w "$OUT/peers"
export RESULTS_DIR="$OUT/results"
# Compare per raw scraped sample: holoscope also stores the unified llm_server_*/hw_gpu_*
# series and report series beside each scraped sample, which its store counter includes.
export HOLOSCOPE_SAMPLES_METRIC=${HOLOSCOPE_SAMPLES_METRIC:-holoscope_scrape_samples_scraped_total}
mkdir -p "$RESULTS_DIR"

probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT

can_scrape() {
    printf 'scrape_configs:\n  - job_name: probe\n    static_configs:\n      - targets: ["127.0.0.1:1"]\n' \
        >"$probe_dir/scrape.yml"
    "$HOLOSCOPE_BIN" check config "$probe_dir/scrape.yml" >/dev/null 2>&1
}
can_backfill() { "$HOLOSCOPE_BIN" tsdb create-blocks-from --help >/dev/null 2>&1; }
can_proxy() {
    printf 'gateway:\n  listen: 127.0.0.1:1\n  routes:\n    - model: "*"\n      upstreams: [http://127.0.0.1:2]\n' \
        >"$probe_dir/gw.yml"
    "$HOLOSCOPE_BIN" check config "$probe_dir/gw.yml" >/dev/null 2>&1
}

summary=()
for w in $WORKLOADS; do
    case "$w" in
    http_server)
        "$ROOT/bench/http_server.sh"
        summary+=("http_server: holoscope vs nginx (results in $RESULTS_DIR/http_server.json)")
        ;;
    scrape_ingest | query | proxy)
        case "$w" in
        scrape_ingest) peers="prometheus victoriametrics"; probe=can_scrape; lacks="scraping (scrape_configs)" ;;
        query) peers="prometheus victoriametrics"; probe=can_backfill; lacks="backfill (tsdb create-blocks-from) and /api/v1/query_range" ;;
        proxy) peers="nginx"; probe=can_proxy; lacks="the gateway" ;;
        esac
        if $probe; then
            peers="$peers holoscope"
            summary+=("$w: holoscope measured beside $peers")
        else
            summary+=("$w: peers only; holoscope cannot run it yet (needs $lacks)")
        fi
        if [ "${QUICK:-0}" = 1 ]; then
            export SERIES=${SERIES:-5000} DURATION=${DURATION:-15} WARMUP=${WARMUP:-5} \
                HOURS=${HOURS:-1} RUNS=${RUNS:-5} CONNS=${CONNS:-"1 32"}
        fi
        PEERS="$peers" RATIO_BASE=${RATIO_BASE:-} "$OUT/peers/$w.sh"
        ;;
    *) echo "bench: unknown workload '$w'" >&2; exit 2 ;;
    esac
done
echo
echo "== summary"
for s in "${summary[@]}"; do echo "  $s"; done
