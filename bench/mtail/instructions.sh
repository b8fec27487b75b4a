#!/usr/bin/env bash
# Instructions per line of the exporter's replay (valgrind cachegrind): the figure to compare
# two builds by. The VM's CPU time drifts by up to a third from run to run; instruction
# counts do not (they leave out cache misses and the kernel's copy of the file).
#
#   bench/mtail/instructions.sh [BIN]     # after bench/mtail/run.sh has generated the logs
#
# Runs BIN (default: the release build) on a 100,000-line cut of each 1,000,000-line case
# (the first lines of every pod file) and on an empty directory, and prints
# (instructions - instructions on the empty directory) / lines: the per-line cost without the
# start-up (profile compilation), which is printed on its own.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DATA=${DATA:-$TARGET/bench-data/mtail}
CUT=$TARGET/bench-data/mtail-cut
BIN=${1:-$TARGET/release/discord-gateway-exporter}
LINES=100000
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }

count() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    "$BIN" replay --format json "$1" 2>&1 >/dev/null | awk '/I *refs/ {gsub(",", "", $NF); print $NF}'
}

mkdir -p "$CUT/empty"
base=$(count "$CUT/empty")
echo "start-up: $base instructions"
for case in 1-plain 1-ansi 8-plain 8-ansi; do
  src=$DATA/1000000-$case
  [ -d "$src" ] || { echo "missing $src: run bench/mtail/run.sh first" >&2; exit 1; }
  dst=$CUT/$case
  if [ ! -f "$dst/.done" ]; then
    rm -rf "$dst" && mkdir -p "$dst"
    files=("$src"/*.log)
    for f in "${files[@]}"; do
      head -n $((LINES / ${#files[@]})) "$f" > "$dst/$(basename "$f")"
    done
    touch "$dst/.done"
  fi
  n=$(count "$dst")
  echo "$case: $(( (n - base) / LINES )) instructions per line"
done
