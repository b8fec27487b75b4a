#!/usr/bin/env bash
# Hostile inputs through `replay` (the streaming reader, the bounded line splitter, framing,
# profiles, the engine): a 10 MB single line, 1 GB of logs whose last line has no newline, and
# 100 MB of random bytes. Prints each file's counted outcomes (matched / ignored / malformed),
# wall time and peak RSS (/usr/bin/time -v).
#
#   bench/bad_input/run.sh            # data under target/bench-data/bad-input
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DATA=${DATA:-$TARGET/bench-data/bad-input}
(cd "$ROOT" && cargo build --release --bin discord-gateway-exporter)
BIN=$TARGET/release/discord-gateway-exporter
mkdir -p "$DATA"

line='2026-04-19T04:15:58.364881000Z 2026-04-19T04:15:58.364881Z  INFO dispatch{channel=1}: openab::dispatch: batch dispatched thread_key=discord:1'
# 1: a good line, one 10 MB line (no newline inside), a good line.
f1=$DATA/agentbroker-10mb-line.log
if [ ! -f "$f1" ]; then
  { echo "$line"; head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' 'x'; echo; echo "$line"; } > "$f1"
fi
# 2: 1 GB of OpenAB lines, the last one without its newline.
f2=$DATA/agentbroker-1gb-unterminated.log
if [ ! -f "$f2" ]; then
  python3 "$ROOT/bench/mtail/gen.py" "$DATA/gen" 4400000 1 plain
  mv "$DATA"/gen/*.log "$f2"; rmdir "$DATA/gen"
  truncate -s -1 "$f2"
fi
# 3: 100 MB of random bytes.
f3=$DATA/agentbroker-random.log
[ -f "$f3" ] || head -c $((100 * 1024 * 1024)) /dev/urandom > "$f3"

for f in "$f1" "$f2" "$f3"; do
  t=$(mktemp)
  /usr/bin/time -v -o "$t" "$BIN" replay --format json "$f" > "$t.json"
  python3 - "$f" "$t" "$t.json" <<'PY'
import json, os, sys
f, t, j = sys.argv[1:4]
v = dict(l.strip().rpartition(": ")[::2] for l in open(t) if ": " in l)
r = json.load(open(j))["inputs"][0]
nl = 0
with open(f, "rb") as fh:
    while chunk := fh.read(1 << 24):
        nl += chunk.count(b"\n")
with open(f, "rb") as fh:
    fh.seek(-1, 2)
    unterminated = fh.read(1) != b"\n"
lines = nl + (1 if unterminated else 0)
total = r["matched"] + r["ignored"] + r["malformed"]
print(f"{os.path.basename(f)}: {os.path.getsize(f) / 1e6:,.1f} MB, {lines:,} lines"
      f"{' (last unterminated)' if unterminated else ''}: matched {r['matched']:,}, "
      f"ignored {r['ignored']:,}, malformed {r['malformed']:,} (counted {total:,}); "
      f"wall {v['Elapsed (wall clock) time (h:mm:ss or m:ss)']}, "
      f"CPU {float(v['User time (seconds)']) + float(v['System time (seconds)']):.2f} s, "
      f"peak RSS {int(v['Maximum resident set size (kbytes)']) / 1024:.1f} MB; "
      f"problems: {r['problems'][:1]}")
assert total == lines, "every line counted once"
PY
  rm -f "$t" "$t.json"
done
