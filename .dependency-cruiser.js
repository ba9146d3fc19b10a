// The planes of src/ and the one way their dependencies point (docs/architecture.md), checked by
// `npm run deps` and `npm test`. A rule names what a folder may NOT import; node_modules and the
// runtime's built-in modules are out of scope (ESLint keeps the pure planes off sockets and clocks).
/** Any file of ours under src/ outside the folders given. */
const ours = (allowed) => `^src/(?!(${allowed.join('|')})/)`;

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No two files import each other, directly or through others.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-imports-only-core-protocol',
      comment: 'core/ is pure decisions: it imports nothing of ours but itself and the pure codecs of protocol/ (a check kind judges what a codec reads).',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: ours(['core', 'protocol']) },
    },
    {
      name: 'protocol-imports-only-protocol',
      comment: 'protocol/ is pure codecs: it imports nothing of ours outside itself.',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { path: ours(['protocol']) },
    },
    {
      name: 'config-imports-only-core',
      comment: 'config/ is the config model and its parsers: it reads core/ only.',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: ours(['config', 'core']) },
    },
    {
      name: 'dataplane-imports-core-protocol',
      comment: 'dataplane/ (the only code on the runtime\'s sockets) reads core/ and protocol/ only.',
      severity: 'error',
      from: { path: '^src/dataplane/' },
      to: { path: ours(['dataplane', 'core', 'protocol']) },
    },
    {
      name: 'control-imports-core-protocol-config',
      comment: 'control/ reads core/, protocol/, config/ and the interfaces it declares itself; app injects the rest.',
      severity: 'error',
      from: { path: '^src/control/' },
      to: { path: ours(['control', 'core', 'protocol', 'config']) },
    },
    {
      name: 'app-is-not-the-cli',
      comment: 'app/ composes every plane but never the command line that starts it.',
      severity: 'error',
      from: { path: '^src/app/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'cli-imports-only-app',
      comment: 'cli/ parses argv and forwards signals; everything else is behind app/.',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: ours(['cli', 'app']) },
    },
    {
      name: 'src-imports-no-tests',
      comment: 'Nothing in src/ depends on the tests, benchmarks or scripts.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
