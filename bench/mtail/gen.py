#!/usr/bin/env python3
"""Generate OpenAB logs as `kubectl logs --timestamps` shows them, the same mix as the
replay_openab benchmark: 70 % `batch dispatched`, 10 % `denied user`, the rest other INFO
lines that must be read and ignored, one `discord bot connected` at each pod's start.

gen.py OUT_DIR LINES PODS plain|ansi   (LINES in total, split evenly over PODS files)
"""
import os
import sys
from datetime import datetime, timedelta, timezone

out_dir, total, pods, style = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ansi = style == "ansi"
dim, reset, green, italic = ("\x1b[2m", "\x1b[0m", "\x1b[32m", "\x1b[3m") if ansi else ("", "", "", "")
os.makedirs(out_dir, exist_ok=True)

connect = f"{dim}openab::discord{reset}{dim}:{reset} discord bot connected {italic}user{reset}{dim}={reset}AgentBroker"
msgs = [
    "dispatch{channel=1496011987654321098 adapter=\"discord\"}: " + f"{dim}openab::dispatch{reset}{dim}:{reset} batch dispatched {italic}thread_key{reset}{dim}={reset}discord:1496011987654321098 events_per_dispatch=1 packed_block_count=2 agent_dispatch_ms=%d tokens_per_event=[37] wait_ms=[4] senders=[\"alice\"]",
    f"{dim}openab::discord{reset}{dim}:{reset} denied user, ignoring user_id=%d",
    f"{dim}openab::discord{reset}{dim}:{reset} registered guild slash commands guild_id=1491295327620169908",
    f"{dim}openab::acp{reset}{dim}:{reset} agent session refreshed pool_size=3 idle_ms=%d",
    f"{dim}openab::discord{reset}{dim}:{reset} failed to create thread: A thread has already been created for this message",
]
# x % 10 -> message: 0..5 batch, 6 denied, 7 guild, 8 acp, 9 failed (as the Rust bench).
table = [0] * 6 + [1, 2, 3, 4]
start = datetime(2026, 4, 19, tzinfo=timezone.utc)
per_pod = total // pods
for p in range(pods):
    name = f"agentbroker-6c9f7d8b4-{p:05d}.log"
    x = 42 + p
    with open(os.path.join(out_dir, name), "w", buffering=1 << 20) as w:
        buf = []
        for i in range(per_pod):
            t = start + timedelta(microseconds=i * 100_000 * pods + p * 1000 + (i % 7) * 311)
            base = t.strftime("%Y-%m-%dT%H:%M:%S")
            k = f"{base}.{t.microsecond:06d}{i % 1000:03d}Z"
            ts = f"{base}.{t.microsecond:06d}Z"
            x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
            x ^= x >> 7
            x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
            if i == 0:
                msg = connect
            else:
                m = table[x % 10]
                tpl = msgs[m]
                msg = tpl % (x % 20000) if m == 0 else tpl % (x % 1_000_000_000) if m == 1 else tpl % (x % 5000) if m == 3 else tpl
            buf.append(f"{k} {dim}{ts}{reset} {green} INFO{reset} {msg}\n")
            if len(buf) >= 10000:
                w.write("".join(buf))
                buf.clear()
        w.write("".join(buf))
