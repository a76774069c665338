#!/usr/bin/env bash
# test_default_pack.sh - the default rule pack (rules/default.yml) passes
# `promtool check rules` and its unit tests (rules/default_test.yml) pass
# under `promtool test rules`.  When the holoscope binary has been built,
# `holoscope rules check` accepts the pack too and `holoscope rules default`
# prints exactly the file.  Skips (exit 0, with a message) without promtool.
set -euo pipefail
src="${HS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
promtool="${PROMTOOL:-/usr/bin/promtool}"
rc=0
if [ -x "$promtool" ]; then
    (cd "$src/rules" && "$promtool" check rules default.yml) || rc=1
    (cd "$src/rules" && "$promtool" test rules default_test.yml) || rc=1
else
    echo "SKIP: $promtool not found (install Debian's prometheus package); promtool checks not run"
fi
bin="${HOLOSCOPE_BIN:-}"
if [ -n "$bin" ] && [ -x "$bin" ]; then
    "$bin" rules check "$src/rules/default.yml" || rc=1
    "$bin" rules default | cmp - "$src/rules/default.yml" || { echo "rules default differs from rules/default.yml"; rc=1; }
else
    echo "note: holoscope binary not built; 'holoscope rules' checks not run"
fi
exit $rc
