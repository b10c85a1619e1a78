"""The reference Python SDK's side of agent-bench's side-by-side run (see BENCHMARKS.md).

Plays the scripted conversation against agent-testkit with `openai-agents`' RealtimeRunner:
one typed message per turn; the scripted model answers with three function calls in one
response, then a spoken answer (audio deltas); the turn ends when both responses are done.
Prints one JSON line with what it saw, so the bench can check both clients did the same work.

    python sdk_client.py ws://127.0.0.1:PORT/v1/realtime 100
"""

import asyncio
import json
import sys
import time

from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner


@function_tool
def tool_a() -> str:
    """A no-op benchmark tool."""
    return "ok"


@function_tool
def tool_b() -> str:
    """A no-op benchmark tool."""
    return "ok"


@function_tool
def tool_c() -> str:
    """A no-op benchmark tool."""
    return "ok"


async def main(url: str, turns: int) -> None:
    agent = RealtimeAgent(
        name="bench",
        instructions="A benchmark agent.",
        tools=[tool_a, tool_b, tool_c],
    )
    runner = RealtimeRunner(
        agent,
        config={
            "model_settings": {"model_name": "gpt-realtime", "output_modalities": ["audio"]},
            "tracing_disabled": True,
        },
    )
    session = await runner.run(
        model_config={"url": url, "headers": {"X-Bench": "1"}},
    )
    responses_done = 0
    audio_chunks = 0
    tool_calls = 0
    errors = 0
    turn_done = asyncio.Event()
    wanted = 0

    async with session:

        async def consume() -> None:
            nonlocal responses_done, audio_chunks, tool_calls, errors
            async for event in session:
                if event.type == "audio":
                    audio_chunks += 1
                elif event.type == "tool_end":
                    tool_calls += 1
                elif event.type == "error":
                    errors += 1
                elif event.type == "raw_model_event":
                    data = event.data
                    if data.type == "raw_server_event" and data.data.get("type") == "response.done":
                        responses_done += 1
                        if responses_done >= wanted:
                            turn_done.set()

        consumer = asyncio.create_task(consume())
        started = time.monotonic()
        for turn in range(turns):
            wanted = 2 * (turn + 1)
            turn_done.clear()
            await session.send_message(f"turn {turn}")
            await asyncio.wait_for(turn_done.wait(), timeout=60)
        elapsed = time.monotonic() - started
        consumer.cancel()
    print(
        json.dumps(
            {
                "turns": turns,
                "responses": responses_done,
                "audio_chunks": audio_chunks,
                "tool_calls": tool_calls,
                "errors": errors,
                "seconds": elapsed,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
