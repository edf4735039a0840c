// The layers of src/, listed from the bottom up: a file may import from its own layer and the
// layers before it, never from one after it (docs/architecture.md). `npm test` runs this check.
const layers = [
  ['core', 'the vocabulary every layer speaks: problems, failure kinds, events'],
  ['config', 'YAML to a validated config (and its JSON Schema)'],
  ['routing|ratelimit|resilience|cache|idempotency', 'policies as pure decisions'],
  ['auth', 'who may use a route: API keys and JWTs (verified as rate-limit jwt keys are)'],
  ['state', 'what outlives a reload: backend state, dispatchers, buckets, route counters'],
  ['balance', 'which ready backend takes a request'],
  ['snapshot', 'the compiled, immutable config, swapped on reload'],
  ['exchange', 'attempts on backends, replay, sinks, tunnels'],
  ['pipeline', 'the stages of one request and the actions that use exchanges'],
  ['telemetry', 'metrics, logs and traces from the events'],
  ['listener', 'sockets, admin listener, the gateway that wires it all'],
  ['cli', 'the process: arguments, signals, exit codes'],
];

const upward = layers.flatMap(([layer], index) => {
  const above = layers.slice(index + 1).map(([name]) => name);
  if (above.length === 0) return [];
  return [
    {
      name: `no-upward-from-${layer.split('|')[0]}`,
      comment: `${layer} (${layers[index][1]}) may not import a layer above it`,
      severity: 'error',
      from: { path: `^src/(${layer})/` },
      to: { path: `^src/(${above.join('|')})/` },
    },
  ];
});

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'no import cycles, not even type-only ones',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-policy-cross-imports',
      comment: 'routing, ratelimit, resilience, cache and idempotency are siblings: none of them imports another',
      severity: 'error',
      from: { path: '^src/(routing|ratelimit|resilience|cache|idempotency)/' },
      to: { path: '^src/(routing|ratelimit|resilience|cache|idempotency)/', pathNot: '^src/$1/' },
    },
    {
      name: 'no-test-or-bench-from-src',
      comment: 'the product never imports tests, bench or the demo',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|demo)/' },
    },
    {
      name: 'core-imports-nothing-of-ours',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/', pathNot: '^src/core/' },
    },
    {
      name: 'no-unknown-folder',
      comment: 'every source file lives in one of the layers (or is src/index.ts)',
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/((${layers.map(([name]) => name).join('|')})/|index\\.ts$)` },
      to: {},
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
