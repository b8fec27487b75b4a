#!/usr/bin/env bash
# The exporter's parse-and-correlate path against mtail, on the same generated logs, in the
# same run: lines per CPU-second, wall time and peak RSS (/usr/bin/time -v), and the ratio.
#
#   bench/mtail/run.sh                 # 1,000,000 and 5,000,000 lines; 1 and 8 pods; plain, ANSI
#   SIZES=1000000 REPS=3 bench/mtail/run.sh
#
# Writes bench/mtail/results.md and the "## Versus mtail" section of docs/performance.md.
# Needs: Debian's mtail (installed when missing, as root), python3, a Rust toolchain.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/mtail
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DATA=${DATA:-$TARGET/bench-data/mtail}
SIZES=${SIZES:-"1000000 5000000"}
PODS=${PODS:-"1 8"}
STYLES=${STYLES:-"plain ansi"}
REPS=${REPS:-1}
RESULTS=$HERE/results.tsv

if ! command -v mtail >/dev/null; then
  apt-get install -y --no-install-recommends mtail
fi
[ -x /usr/bin/time ] || apt-get install -y --no-install-recommends time
(cd "$ROOT" && cargo build --release --bin discord-gateway-exporter)
BIN=$TARGET/release/discord-gateway-exporter
mkdir -p "$DATA"

# One measured run: prints "user sys wall_s maxrss_kb".
measure() {
  local tf
  tf=$(mktemp)
  /usr/bin/time -v -o "$tf" "$@" >/dev/null 2>"$tf.err" || { cat "$tf.err" >&2; return 1; }
  python3 - "$tf" <<'PY'
import sys
v = {}
for l in open(sys.argv[1]):
    k, _, x = l.strip().rpartition(": ")
    v[k] = x
def wall(s):
    p = [float(x) for x in s.split(":")]
    return p[-1] + 60 * p[-2] + (3600 * p[-3] if len(p) > 2 else 0)
print(v["User time (seconds)"], v["System time (seconds)"],
      wall(v["Elapsed (wall clock) time (h:mm:ss or m:ss)"]), v["Maximum resident set size (kbytes)"])
PY
  rm -f "$tf" "$tf.err"
}

echo -e "lines\tpods\tstyle\ttool\tuser\tsys\twall\trss_kb\tbytes" > "$RESULTS"
for n in $SIZES; do
  for pods in $PODS; do
    for style in $STYLES; do
      dir=$DATA/$n-$pods-$style
      if [ ! -f "$dir/.done" ]; then
        rm -rf "$dir"
        python3 "$HERE/gen.py" "$dir" "$n" "$pods" "$style"
        touch "$dir/.done"
      fi
      bytes=$(cat "$dir"/*.log | wc -c)
      # Sanity: both tools see the same number of handled messages.
      ours_msgs=$("$BIN" replay --format json "$dir" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(s.get("events",0) for s in d.get("sessions",[])))' 2>/dev/null || echo "?")
      mtail_msgs=$(mtail -one_shot -one_shot_format prometheus -progs "$HERE/progs" -logs "$dir/*.log" -port 0 2>/dev/null | awk '/^discord_messages_total/ {s+=$2} END {print s+0}')
      echo "== $n lines, $pods pod(s), $style ($((bytes / 1000000)) MB): handled messages: exporter $ours_msgs, mtail $mtail_msgs" >&2
      for rep in $(seq "$REPS"); do
        read -r u s w r <<<"$(measure "$BIN" replay --format json "$dir")"
        echo -e "$n\t$pods\t$style\texporter\t$u\t$s\t$w\t$r\t$bytes" >> "$RESULTS"
        echo "   exporter: user $u s, sys $s s, wall $w s, peak RSS $r kB" >&2
        read -r u s w r <<<"$(measure mtail -one_shot -one_shot_format prometheus -progs "$HERE/progs" -logs "$dir/*.log" -port 0)"
        echo -e "$n\t$pods\t$style\tmtail\t$u\t$s\t$w\t$r\t$bytes" >> "$RESULTS"
        echo "   mtail:    user $u s, sys $s s, wall $w s, peak RSS $r kB" >&2
      done
    done
  done
done

python3 "$HERE/report.py" "$RESULTS" "$HERE/results.md" "$ROOT/docs/performance.md" \
  "$(mtail --version 2>&1 | head -1)" "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
cat "$HERE/results.md"
