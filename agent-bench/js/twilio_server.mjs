// openai-agents-js's side of agent-bench's telephony benchmark (BENCHMARKS.md, telephony).
//
// A media-stream server as the SDK's Twilio example builds one: every WebSocket Twilio opens
// gets a RealtimeSession on `TwilioRealtimeTransportLayer` (npm `@openai/agents-extensions`),
// its model URL pointed at agent-testkit's scripted Realtime server. The agent has one tool,
// `calculate`, a no-op like the one `agent serve` runs in the same benchmark. No webhook:
// the bench's callers open the stream directly (the webhook is a one-off per call and the
// benchmark measures the steady state).
//
// The bench installs the packages into target/bench-node-twilio and copies this file there:
//
//     node twilio_server.mjs ws://127.0.0.1:PORT/v1/realtime
//
// Prints `listening on http://127.0.0.1:PORT` once it accepts streams.

import { WebSocketServer } from 'ws';
import { RealtimeAgent, RealtimeSession, tool } from '@openai/agents/realtime';
import { TwilioRealtimeTransportLayer } from '@openai/agents-extensions';
import { z } from 'zod';
import { calculateTool } from './bench_tools.mjs';

const [url] = process.argv.slice(2);

const calculate = calculateTool(tool, z);

const agent = new RealtimeAgent({
  name: 'phone',
  instructions: 'You answer the phone.',
  tools: [calculate],
});

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });

server.on('connection', async (twilioWebSocket) => {
  const transport = new TwilioRealtimeTransportLayer({ twilioWebSocket, url });
  const session = new RealtimeSession(agent, {
    transport,
    model: 'gpt-realtime',
    tracingDisabled: true,
    config: {
      audio: { input: { turnDetection: { type: 'server_vad', silenceDurationMs: 300 } } },
    },
  });
  session.on('error', () => {});
  try {
    // The scripted server takes any key; this placeholder is not a credential.
    await session.connect({ apiKey: 'bench-placeholder', url });
  } catch {
    twilioWebSocket.close();
  }
});

server.on('listening', () => {
  const { port } = server.address();
  console.log(`listening on http://127.0.0.1:${port}`);
});

process.on('SIGTERM', () => process.exit(0));
