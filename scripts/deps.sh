#!/bin/sh
# deps.sh - installs what holoscope needs to build, test and benchmark:
# Debian 12 packages with apt-get and the pinned npm packages with `npm ci`.
#
# Idempotent and quiet when nothing is missing.  Works as root or through
# sudo.  `scripts/deps.sh --check` only reports what is missing (exit 1).
set -eu

# Build and test dependencies (Debian 12 package names).
PACKAGES="cmake make gcc clang clang-format libclang-rt-14-dev pkg-config git
libevent-dev libssl-dev libyaml-dev libjansson-dev libpcre2-dev zlib1g-dev libzstd-dev
libsnappy-dev libprotobuf-c-dev protobuf-c-compiler libcmocka-dev
python3 curl ca-certificates openssl prometheus prometheus-alertmanager prometheus-node-exporter nodejs npm chromium"
# Benchmark peers, installed by `make bench` only.
if [ "${HS_DEPS_BENCH:-0}" = 1 ]; then
    PACKAGES="$PACKAGES victoria-metrics nginx wrk"
fi

cd "$(dirname "$0")/.."

missing=""
for p in $PACKAGES; do
    # node and npm may come from elsewhere (e.g. a newer nodejs that bundles
    # npm, which conflicts with Debian's npm package): a working command counts
    case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

need_npm=0
if [ -f package-lock.json ]; then
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        need_npm=1
        command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
    fi
fi

if [ "${1:-}" = "--check" ]; then
    [ -z "$missing" ] && [ "$need_npm" = 0 ] && exit 0
    [ -n "$missing" ] && echo "missing Debian packages:$missing"
    [ "$need_npm" = 1 ] && echo "npm packages are not installed (npm ci)"
    exit 1
fi

if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps: these packages are missing and neither root nor sudo is available:$missing" >&2
        exit 1
    fi
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ "$need_npm" = 1 ]; then
    echo "deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi
