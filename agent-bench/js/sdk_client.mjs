// openai-agents-js' side of agent-bench's three-client comparison (BENCHMARKS.md §5).
//
// Plays the turns scenario (agent-bench/scenarios/turns.scenarios.toml) against agent-testkit
// with `@openai/agents-realtime`: a RealtimeSession on the WebSocket transport, its URL pointed
// at the scripted server. One typed message per turn; the scripted model answers with three
// `calculate` calls in one response, then a spoken answer (audio deltas). A turn is over once
// this turn's three tools have ended, an answer (a response with a message) is done, and no
// response the client saw start is still running, so the next message never overlaps the turn.
// Prints one JSON line with what it saw; the bench checks the work from the server's side too.
//
// The bench installs the package into target/bench-node and copies this file there, so the
// import resolves against that folder:
//
//     node sdk_client.mjs ws://127.0.0.1:PORT/v1/realtime TURNS "user text"

import { RealtimeAgent, RealtimeSession, OpenAIRealtimeWebSocket, tool } from '@openai/agents-realtime';
import { z } from 'zod';
import { calculateTool } from './bench_tools.mjs';

const [url, turnsArg, text] = process.argv.slice(2);
const turns = Number.parseInt(turnsArg, 10);

const calculate = calculateTool(tool, z);

const agent = new RealtimeAgent({
  name: 'bench',
  instructions: 'A benchmark agent: call the tools you are asked to, then answer.',
  tools: [calculate],
});

const session = new RealtimeSession(agent, {
  // The scripted server takes any key; this placeholder is not a credential.
  transport: new OpenAIRealtimeWebSocket({ url, useInsecureApiKey: true }),
  model: 'gpt-realtime',
  tracingDisabled: true,
  config: { outputModalities: ['audio'] },
});

const seen = { responses: 0, audio_chunks: 0, tool_calls: 0, errors: 0 };
let turn = { tools: 0, answers: 0, open: 0 };
let wake = () => {};

session.on('audio', () => {
  seen.audio_chunks += 1;
});
session.on('agent_tool_end', () => {
  seen.tool_calls += 1;
  turn.tools += 1;
  wake();
});
session.on('error', () => {
  seen.errors += 1;
});
session.on('transport_event', (event) => {
  if (event.type === 'response.created') {
    turn.open += 1;
  } else if (event.type === 'response.done') {
    seen.responses += 1;
    turn.open = Math.max(0, turn.open - 1);
    const output = event.response?.output ?? [];
    if (output.some((item) => item.type === 'message')) {
      turn.answers += 1;
    }
    wake();
  }
});

const turnOver = () => turn.tools >= 3 && turn.answers >= 1 && turn.open === 0;

async function main() {
  await session.connect({ apiKey: 'bench-placeholder', url });
  const started = performance.now();
  for (let i = 0; i < turns; i += 1) {
    turn = { tools: 0, answers: 0, open: 0 };
    const done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`turn ${i} did not end in 60 s`)), 60_000);
      wake = () => {
        if (turnOver()) {
          clearTimeout(timer);
          resolve();
        }
      };
    });
    session.sendMessage(text);
    await done;
  }
  const seconds = (performance.now() - started) / 1000;
  session.close();
  console.log(JSON.stringify({ turns, ...seen, seconds }));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(String(error?.stack ?? error));
    process.exit(1);
  },
);
