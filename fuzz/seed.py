#!/usr/bin/env python3
"""Seed corpus for the fuzz targets: slices of the recorded examples and reference lines of
every library (first byte of a log_lines input picks the profile and framing)."""
import hashlib
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

def put(target, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)

def head(path, n=3000):
    b = path.read_bytes()[:n]
    return b[: b.rfind(b"\n") + 1] if b"\n" in b else b

LINES = [
    "2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker",
    "\x1b[2m2026-04-19T04:15:58.364881Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[1mdispatch\x1b[0m\x1b[1m{\x1b[0m\x1b[3mchannel\x1b[0m\x1b[2m=\x1b[0m1\x1b[1m}\x1b[0m\x1b[2m:\x1b[0m \x1b[2mopenab::dispatch\x1b[0m\x1b[2m:\x1b[0m batch dispatched",
    "DEBUG serenity::gateway::shard: [ShardInfo { id: ShardId(0), total: 1 }] Received Ready",
    "DEBUG shard{id=[0, 1]}: twilight_gateway::shard: received dispatch event_type=READY sequence=1",
    "DEBUG twilight_gateway::shard: received WebSocket close message frame=Some(CloseFrame { code: 4014, reason: \"x\" })",
    "[2026-04-19 04:12:27] [INFO    ] discord.gateway: Shard ID None has connected to Gateway (Session ID: 388b).",
    "[2026-04-19 04:12:27] [DEBUG   ] discord.gateway: For Shard ID None: WebSocket Event: {'t': 'READY', 's': 1, 'd': {'user': {'username': 'H'}, 'session_id': '5'}}",
    "[WS => Shard 0] Destroying shard\n\tReason: none\n\tCode: 4014\n\tRecover: none",
    "[WS => Shard 0] Identifying\n\tshard id: 0",
    "[main] INFO JDA - Login Successful!",
    "WARN  WebSocketClient - Got disconnected from WebSocket (Code 1000). Appending to reconnect queue",
    '{"timestamp":"2026-04-19T04:12:04Z","level":"INFO","fields":{"message":"discord bot connected","user":"A"},"target":"openab::discord","spans":[{"name":"s","id":"[0, 1]"}]}',
    '{"level":20,"time":1776572163000,"msg":"[WS => Shard 0] Destroying shard\\n\\tCode: 4014"}',
    'time=2026-04-19T04:16:06Z level=info target=openab::discord msg="discord bot connected" user=Helper',
    "MTA1NjY3ODk2MjU4NzY1ODE4OA.GhI3kL.abcdefghijklmnopqrstuvwxyz0123456789AB",
]
KUBECTL = "2026-04-19T09:09:09.123456789Z "
CRI = ["2026-04-19T09:09:09.5Z stdout P ", "2026-04-19T09:09:09.6Z stdout F "]

for sel in range(10):
    body = "\n".join(LINES).encode()
    put("log_lines", bytes([sel]) + body)
    put("log_lines", bytes([sel | 0x10]) + "\n".join(KUBECTL + l for l in LINES).encode())
    put("log_lines", bytes([sel | 0x20]) + "\n".join(CRI[i % 2] + l for i, l in enumerate(LINES)).encode())
for p in sorted((ROOT / "examples").rglob("*.log")):
    put("log_lines", bytes([len(p.name) % 256]) + head(p))
for l in LINES:
    put("structured", l.encode())
for p in sorted((ROOT / "examples").rglob("*.json*")):
    put("kube_json", head(p, 4000))
    put("structured", head(p, 1000))
print({t: len(os.listdir(CORPUS / t)) for t in ("log_lines", "structured", "kube_json")})
