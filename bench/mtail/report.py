#!/usr/bin/env python3
"""results.tsv -> results.md and the "## Versus mtail" section of docs/performance.md.

report.py RESULTS.tsv RESULTS.md PERFORMANCE.md MTAIL_VERSION MACHINE
"""
import csv
import datetime
import statistics
import sys
from collections import defaultdict

results, out_md, perf_md, mtail_version, machine = sys.argv[1:6]
runs = defaultdict(list)
for r in csv.DictReader(open(results), delimiter="\t"):
    key = (int(r["lines"]), int(r["pods"]), r["style"], r["tool"])
    runs[key].append(
        (float(r["user"]) + float(r["sys"]), float(r["wall"]), int(r["rss_kb"]) / 1024, int(r["bytes"]))
    )

def med(key):
    xs = runs[key]
    return (
        statistics.median(x[0] for x in xs),
        statistics.median(x[1] for x in xs),
        max(x[2] for x in xs),
        xs[0][3],
    )

rows = []
cases = sorted({k[:3] for k in runs})
for lines, pods, style in cases:
    e = med((lines, pods, style, "exporter"))
    m = med((lines, pods, style, "mtail"))
    e_lps = lines / max(e[0], 0.01)
    m_lps = lines / max(m[0], 0.01)
    # Each repetition runs the exporter, then mtail, right after: their ratio is paired (the
    # VM's drift between repetitions cancels), and its range shows the run-to-run noise.
    paired = sorted(
        mx[0] / max(ex[0], 0.01)
        for ex, mx in zip(runs[(lines, pods, style, "exporter")], runs[(lines, pods, style, "mtail")])
    )
    rows.append(
        f"| {lines:,} lines, {pods} pod{'s' if pods > 1 else ''}, {style} ({e[3] / 1e6:,.0f} MB) "
        f"| {e_lps:,.0f} | {m_lps:,.0f} | **{e_lps / m_lps:.1f}×** "
        f"| {paired[0]:.1f}–{paired[-1]:.1f}× "
        f"| {e[0]:.2f} / {m[0]:.2f} | {e[1]:.2f} / {m[1]:.2f} | {e[2]:.1f} / {m[2]:.1f} |"
    )

n_reps = max(len(v) for v in runs.values())
table = "\n".join(
    [
        "| input | exporter lines per CPU-s | mtail lines per CPU-s | ratio | per-run ratios | CPU s (exporter / mtail) | wall s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
)
section = f"""## Versus mtail

```sh
bench/mtail/run.sh                       # all cases below; SIZES=1000000 REPS=3 for a quick one
```

The script generates OpenAB logs as `kubectl logs --timestamps` prints them (the mix of the
replay benchmark: 70 % `batch dispatched`, 10 % `denied user`, 20 % other INFO lines; plain
and with tracing-subscriber's ANSI colours; one pod file, or the same number of lines over 8
pod files), then runs on the same files, one after the other in the same run:

- the exporter's whole parse-and-correlate path: `discord-gateway-exporter replay --format json
  DIR` (release build, `auto` profile: every built-in library's rules, JSON and logfmt
  detection, redaction, the engine and its detectors, the JSON report);
- `mtail -one_shot` with [`bench/mtail/progs/discord.mtail`](../bench/mtail/progs/discord.mtail),
  which does the part of the job mtail can do: per pod (file), count connects by bot and
  handled messages, keep the last message's time (it has to step over the colour codes in its
  regexes itself).

Both report the same number of handled messages (checked by the script). CPU seconds are
user + system and peak RSS the maximum resident set size, from `/usr/bin/time -v`; the figures
are the median of {n_reps} run(s) per case (peak RSS: the largest); "per-run ratios" is the range
of the ratios of each repetition's exporter run and the mtail run right after it. {mtail_version}; {machine};
measured {datetime.date.today().isoformat()}.

{table}

Aim: at least 15 times mtail's lines per CPU-second, and no more peak memory than mtail.
"""
import os
notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
if os.path.exists(notes):
    section += "\n" + open(notes).read()
open(out_md, "w").write(section)

doc = open(perf_md).read()
start = doc.find("## Versus mtail")
if start == -1:
    doc = doc.rstrip("\n") + "\n\n" + section
else:
    nxt = doc.find("\n## ", start + 1)
    doc = doc[:start] + section + (doc[nxt + 1 :] if nxt != -1 else "")
open(perf_md, "w").write(doc.rstrip("\n") + "\n")
