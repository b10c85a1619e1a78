#!/usr/bin/env python3
"""Writes each fuzz target's seed corpus into fuzz/corpus/<target>/ from the project's own
files and the Realtime spec's examples. Run it once before a first fuzzing session; the corpus
committed in git is the minimized result of seeds plus fuzzing (see the README's "Fuzzing").

Usage: python3 fuzz/seed.py [PATH_TO_REALTIME_SPEC]   (default: ../shared/realtime-spec)
"""
import hashlib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "../shared/realtime-spec")
CORPUS = ROOT / "fuzz" / "corpus"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def spec_events():
    for name in ["examples-ga.jsonl", "examples-beta.jsonl", *sorted(
            p.name for p in (SPEC / "transcripts").glob("*.jsonl"))]:
        path = SPEC / name if (SPEC / name).exists() else SPEC / "transcripts" / name
        for line in path.read_text().splitlines():
            if line.strip():
                yield line


for line in spec_events():
    kind = json.loads(line).get("type", "")
    client = kind in {
        "session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
        "input_audio_buffer.clear", "conversation.item.create", "conversation.item.retrieve",
        "conversation.item.truncate", "conversation.item.delete", "response.create",
        "response.cancel", "output_audio_buffer.clear", "transcription_session.update",
    }
    put("client_event" if client else "server_event", line)

for path in sorted((ROOT / "agents").glob("*.toml")):
    put("scenario" if ".scenarios." in path.name else "agent_file", path.read_text())

for template, args in [
    ("https://api.example.com/v1/users/{id}/profile", {"id": "42"}),
    ("https://api.example.com/v1/users/{id}/profile", {"id": ".."}),
    ("https://api.example.com/v1/users/{id}/profile", {"id": "%2e%2e"}),
    ("http://127.0.0.1:8080/items/{a}/{b}?q={q}", {"a": "x/y", "b": 7, "q": "a&b=c"}),
    ("https://h/{x}", {"x": True}),
    ("https://h/search?q={q}#frag", {"q": "ü ñ"}),
]:
    put("http_url", template + "\n" + json.dumps(args))

for expression in ["1 + 2 * 3", "(2 ^ 10) % 7", "-(-3.5e2) / 0", "sqrt(2) * pi", "((((1))))",
                   "2 ^ 2 ^ 2 ^ 2 ^ 2", "1e308 * 10", "abs(-4) + floor(2.7)"]:
    put("calculator", expression)

put("history_import", json.dumps([
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "calculate", "arguments": "{\"expression\":\"1+1\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "2"},
    {"role": "assistant", "content": "It is 2."},
]))
put("history_import", "\n".join(json.dumps(item) for item in [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    {"type": "function_call", "call_id": "c1", "name": "calculate", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c1", "output": "2"},
]))
print("seeded", ", ".join(f"{p.name}: {len(list(p.iterdir()))}" for p in sorted(CORPUS.iterdir())))
