#!/usr/bin/env bash
# Instructions per send for the six variants of benches/send.rs, counted by
# callgrind: unlike a time, this figure does not move with the machine's
# load. Needs valgrind.
#
#     benches/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exe=$(cargo bench --profile "${PROFILE:-bench}" --bench send --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\/send-[0-9a-f]*\)".*/\1/p' | tail -1)
if [ -z "$exe" ]; then
    echo "instructions.sh: could not find the send bench executable" >&2
    exit 1
fi
out=$(mktemp)
trap 'rm -f "$out" "$out.log"' EXIT
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind" >&2; exit 1; }
valgrind --tool=callgrind --callgrind-out-file="$out" "$exe" --each-once >/dev/null 2>"$out.log" ||
    { cat "$out.log" >&2; exit 1; }
echo "| matcher | variant | instructions/send |"
echo "|---|---|---:|"
callgrind_annotate --inclusive=yes "$out" |
    sed -n 's/^ *\([0-9,]*\) .*send::instructions_\([a-z]*\)_\([a-z_]*\) .*/\2 \3 \1/p' |
    sort -r -k1,1 -s | sort -k1,1r -k2,2 |
    while read -r matcher variant count; do
        printf '| %s | %s | %.1f |\n' "$matcher" "$variant" "$(echo "${count//,/} / 1000000" | bc -l)"
    done
