"""openai-agents-python's side of agent-bench's three-client comparison (BENCHMARKS.md §5).

Plays the turns scenario (agent-bench/scenarios/turns.scenarios.toml) against agent-testkit with
`openai-agents`' RealtimeRunner: one typed message per turn; the scripted model answers with
three `calculate` calls in one response, then a spoken answer (audio deltas). A turn is over once
this turn's three tools have ended, an answer (a response with a message) is done, and no
response the client saw start is still running, so the next message never overlaps the turn
(counting `response.done` events alone is not enough: the SDK asks for a response after each
tool output, and the extra responses the server then plays would end the turn early). Prints one
JSON line with what it saw; the bench checks the work from the server's side too.

    python sdk_client.py ws://127.0.0.1:PORT/v1/realtime TURNS "user text"
"""

import asyncio
import json
import sys
import time

from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner


@function_tool
def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression (a no-op benchmark tool)."""
    return "ok"


class Turn:
    """What the current turn has seen so far."""

    def __init__(self) -> None:
        self.tools = 0
        self.answers = 0
        self.open = 0
        self.over = asyncio.Event()

    def check(self) -> None:
        if self.tools >= 3 and self.answers >= 1 and self.open == 0:
            self.over.set()


async def main(url: str, turns: int, text: str) -> None:
    agent = RealtimeAgent(
        name="bench",
        instructions="A benchmark agent: call the tools you are asked to, then answer.",
        tools=[calculate],
    )
    runner = RealtimeRunner(
        agent,
        config={
            "model_settings": {"model_name": "gpt-realtime", "output_modalities": ["audio"]},
            "tracing_disabled": True,
        },
    )
    session = await runner.run(model_config={"url": url, "headers": {"X-Bench": "1"}})
    seen = {"responses": 0, "audio_chunks": 0, "tool_calls": 0, "errors": 0}
    turn = Turn()

    async with session:

        async def consume() -> None:
            async for event in session:
                if event.type == "audio":
                    seen["audio_chunks"] += 1
                elif event.type == "tool_end":
                    seen["tool_calls"] += 1
                    turn.tools += 1
                elif event.type == "error":
                    seen["errors"] += 1
                elif event.type == "raw_model_event" and event.data.type == "raw_server_event":
                    raw = event.data.data
                    kind = raw.get("type")
                    if kind == "response.created":
                        turn.open += 1
                    elif kind == "response.done":
                        seen["responses"] += 1
                        turn.open = max(0, turn.open - 1)
                        output = (raw.get("response") or {}).get("output") or []
                        if any(item.get("type") == "message" for item in output):
                            turn.answers += 1
                turn.check()

        consumer = asyncio.create_task(consume())
        started = time.monotonic()
        for _ in range(turns):
            turn = Turn()
            await session.send_message(text)
            await asyncio.wait_for(turn.over.wait(), timeout=60)
        elapsed = time.monotonic() - started
        consumer.cancel()
    print(json.dumps({"turns": turns, **seen, "seconds": elapsed}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
