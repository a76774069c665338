#!/bin/sh
# check-banned.sh - fails when src/ uses a function the style bans
# (unbounded or error-hiding C library calls; abort/exit outside main.c and cli/).
cd "$(dirname "$0")/.." || exit 2
status=0
banned='\b(atoi|atol|atoll|sprintf|vsprintf|strcpy|strcat|strncpy|strtok|gets)[[:space:]]*\('
if grep -rnE "$banned" src --include='*.c' --include='*.h' | grep -vE '^\S+:[0-9]+:\s*(\*|//)'; then
    echo "banned function used in src/ (see STYLE: Formatting and mechanics)" >&2
    status=1
fi
if grep -rnE '\b(abort|exit)[[:space:]]*\(' src --include='*.c' | grep -vE '^src/(main\.c|cli/)' \
    | grep -vE '^\S+:[0-9]+:\s*(\*|//)'; then
    echo "abort/exit used outside src/main.c and src/cli/" >&2
    status=1
fi
exit $status
