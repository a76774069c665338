#!/usr/bin/env bash
# test_rules_cli.sh - `holoscope rules check` names every problem of a bad
# rule file as FILE:LINE:COL and exits 1, accepts a good one with exit 0
# and a rule count, and `holoscope rules` without a subcommand is a usage
# error (exit 2).  Skips (exit 0, with a message) when the binary is not built.
set -uo pipefail
bin="${HOLOSCOPE_BIN:-}"
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "SKIP: holoscope binary not built"
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0
cat > "$tmp/bad.yml" <<'YML'
groups:
  - name: g
    rules:
      - alert: A
        expr: sum(up
      - record: r
        expr: up
        for: 5m
YML
out="$("$bin" rules check "$tmp/bad.yml" 2>&1)"; rc=$?
[ $rc -eq 1 ] || { echo "bad file: exit $rc, want 1"; fail=1; }
grep -q "bad.yml:5:15: could not parse expression" <<<"$out" || { echo "missing parse error: $out"; fail=1; }
grep -q "bad.yml:8:14: invalid field 'for' in recording rule" <<<"$out" || { echo "missing for error: $out"; fail=1; }
printf 'groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n' > "$tmp/good.yml"
out="$("$bin" rules check "$tmp/good.yml" 2>&1)"; rc=$?
[ $rc -eq 0 ] || { echo "good file: exit $rc: $out"; fail=1; }
grep -q "SUCCESS: 1 rules found" <<<"$out" || { echo "no success line: $out"; fail=1; }
"$bin" rules >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "no subcommand: exit $rc, want 2"; fail=1; }
"$bin" rules check "$tmp/missing.yml" >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ] || { echo "missing file: exit $rc, want 1"; fail=1; }
[ $fail -eq 0 ] && echo "rules cli: all checks passed"
exit $fail
