#!/usr/bin/env bash
# Instructions per send for the five variants of benches/send.rs, counted by
# callgrind: unlike a time, this figure does not move with the machine's
# load. Needs valgrind.
#
#     benches/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exe=$(cargo bench --bench send --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out" "$exe" --each-once >/dev/null 2>&1
echo "| variant | instructions/send |"
echo "|---|---:|"
callgrind_annotate --inclusive=yes "$out" |
    sed -n 's/^ *\([0-9,]*\) .*send::instructions_\([a-z_]*\) .*/\2 \1/p' | sort |
    while read -r name count; do
        printf '| %s | %.1f |\n' "$name" "$(echo "${count//,/} / 1000000" | bc -l)"
    done
