#!/usr/bin/env python3
"""Checks parse/tests/corpus/<library>/<layout>.{log,expect} against `parse`.

Temporary stand-in for the corpus test (parse/tests/it/corpus.rs on another branch): runs
`discord-gateway-exporter parse --profile P` on each layout (every line behind a
`kubectl logs --timestamps` prefix, so lines without a time of their own are read too) and
compares each row with its `.expect` line: `irrelevant` / `continuation` = no event counted;
`<event> key=value ...` = that event with those values (shard included when given).

Usage: tools/corpus/check.py [--profile auto] [--bin target/debug/discord-gateway-exporter]
       [library ...]. Prints per layout and per library: relevant lines, read as expected,
irrelevant lines counted; exits 1 when a library is under 95 % or counts an irrelevant line.
"""
import argparse, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, 'parse', 'tests', 'corpus')
ROW = re.compile(r'^\s*(\d+) (matched|ignored|malformed)\s+(.*)$')


def rows(binary, profile, lines):
    with tempfile.NamedTemporaryFile('w', suffix='.log', delete=False) as f:
        for i, line in enumerate(lines):
            f.write(f'2026-04-19T04:00:{i % 60:02d}.{i:06d}Z {line}\n')
        path = f.name
    try:
        out = subprocess.run([binary, 'parse', '--profile', profile, path],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(path)
    got = {}
    for r in out.splitlines():
        m = ROW.match(r)
        if not m:
            continue
        n, outcome, rest = int(m.group(1)), m.group(2), m.group(3)
        if outcome != 'matched':
            got[n] = None
            continue
        event = re.match(r'([a-z_]+)', rest).group(1)
        caps = dict(re.findall(r'\b(\w+)="([^"]*)"', rest))
        # The event's own values (`invalid_session(resumable=true)`), fixed ones included.
        shown = re.match(r'[a-z_]+\((.*?)\)\s+rule=', rest)
        if shown:
            for k, v in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\s)]+)', shown.group(1)):
                caps.setdefault(k, v.strip('"'))
        got[n] = (event, caps)
    return got


def agrees(expect, got):
    parts = expect.split()
    if parts[0] in ('irrelevant', 'continuation'):
        return got is None
    if got is None or got[0] != parts[0]:
        return False
    for kv in parts[1:]:
        k, v = kv.split('=', 1)
        if got[1].get(k) != v:
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--profile')
    ap.add_argument('--bin', default=os.path.join(ROOT, 'target', 'debug', 'discord-gateway-exporter'))
    ap.add_argument('--verbose', action='store_true')
    ap.add_argument('libraries', nargs='*')
    a = ap.parse_args()
    libs = a.libraries or sorted(os.listdir(CORPUS))
    bad = False
    for lib in libs:
        d = os.path.join(CORPUS, lib)
        if not os.path.isdir(d):
            continue
        profile = a.profile or lib
        tot_rel = tot_ok = tot_irr = tot_lines = tot_real_rel = 0
        for name in sorted(os.listdir(d)):
            if not name.endswith('.log'):
                continue
            layout = name[:-4]
            lines = open(os.path.join(d, name)).read().split('\n')[:-1]
            expects = open(os.path.join(d, layout + '.expect')).read().split('\n')[:-1]
            sources = open(os.path.join(d, layout + '.sources')).read().split('\n')[:-1]
            assert len(lines) == len(expects) == len(sources), layout
            got = rows(a.bin, profile, lines)
            rel = ok = irr = 0
            for i, (line, exp) in enumerate(zip(lines, expects), 1):
                g = got.get(i)
                relevant = exp.split()[0] not in ('irrelevant', 'continuation')
                good = agrees(exp, g)
                rel += relevant
                ok += relevant and good
                irr += (not relevant) and g is not None
                if not good and (a.verbose or True):
                    print(f'  {lib}/{layout}:{i}: expected {exp!r}, got {g!r}\n    {line!r}')
            real = 'reconstructed' not in layout
            print(f'{lib}/{layout}: {len(lines)} lines, {rel} relevant, {ok} read as expected, '
                  f'{irr} irrelevant counted{"" if real else " (reconstructed)"}')
            tot_lines += len(lines) if real else 0
            tot_real_rel += rel if real else 0
            tot_rel += rel
            tot_ok += ok
            tot_irr += irr
        pct = 100.0 * tot_ok / tot_rel if tot_rel else 100.0
        print(f'== {lib} (--profile {profile}): {tot_rel} relevant lines, {tot_ok} read as expected '
              f'({pct:.1f} %), {tot_irr} irrelevant counted; real (not reconstructed): '
              f'{tot_lines} lines, {tot_real_rel} relevant')
        bad |= pct < 95.0 or tot_irr > 0
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
