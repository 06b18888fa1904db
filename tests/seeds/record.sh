#!/bin/sh
# Records the expected output of each seed program: runs the ported seed
# (py/) with CPython 3.11 in data/ (the shipped access-log and
# allroutes.xml) and keeps its stdout in expected/NAME.out.
# Usage: tests/seeds/record.sh  (from the repository root)
set -u
here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "$here/../../data" && pwd)
py=${PYTHON:-python3.11}
run() { # name [head -n N]
    name=$1; shift
    (cd "$data" && PYTHONPATH="$here/py" PYTHONDONTWRITEBYTECODE=1 \
        "$py" "$here/py/$name.py" 2>/dev/null) | "$@" > "$here/expected/$name.out"
}
for n in countdown follow pipeline grep coroutine grepclose bogus cofollow \
         copipe cobroadcast cobroadcast2 basicsax cosax buses coexpat iterbus \
         cothread coprocess trampoline pyos1 taskcrash pyos3 pyos4 pyos5 pyos6; do
    run "$n" cat
done
# pyos2 never ends (two tasks taking turns forever): its first 20 lines.
run pyos2 head -n 20
# pyos7 and pyos8 (their mains are ports' additions, NOTES.md): the
# iotask keeps mainloop spinning after the last line, so each is stopped
# after 3 s; -u so that nothing is left in the buffer when it is.
for n in pyos7 pyos8; do
    (cd "$data" && PYTHONPATH="$here/py" PYTHONDONTWRITEBYTECODE=1 \
        timeout 3 "$py" -u "$here/py/$n.py" 2>/dev/null) > "$here/expected/$n.out"
done
