// The tool agent-bench's JS peers give their agents: `calculate`, a no-op that returns a
// constant, like the other clients' tools. Each peer passes its own package's `tool` and its
// `zod` (the two peers install different packages), and the bench copies this file next to
// each peer's script.

export function calculateTool(tool, z) {
  return tool({
    name: 'calculate',
    description: 'Evaluate an arithmetic expression (a no-op benchmark tool).',
    parameters: z.object({ expression: z.string() }),
    execute: async () => 'ok',
  });
}
