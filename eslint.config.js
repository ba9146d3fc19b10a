// Lint rules that encode the architecture: core/, protocol/ and config/ are pure decision code,
// so they may not import sockets or read the clock themselves (time and randomness are injected);
// and in all of src/ time has one source, the injected Clock, whose system implementation
// (src/dataplane/system-clock.ts) is the only file that reads the wall clock or arms timers.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const INJECT_CLOCK = 'use the injected Clock (src/core/clock.ts); only src/dataplane/system-clock.ts reads time';
/** Time read or timers armed behind the Clock's back. */
const TIME_PROPERTIES = [
  { object: 'Date', property: 'now', message: INJECT_CLOCK },
  { object: 'performance', property: 'now', message: INJECT_CLOCK },
  { object: 'Bun', property: 'sleep', message: INJECT_CLOCK },
  { object: 'Bun', property: 'nanoseconds', message: INJECT_CLOCK },
  ...['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'].map((property) => ({ object: 'globalThis', property, message: INJECT_CLOCK })),
];
/** The runtime's socket APIs: only src/dataplane/ calls them (the adapter another runtime would replace). */
const SOCKETS_IN_DATAPLANE = 'only src/dataplane/ touches the runtime\'s socket APIs: add or use an adapter there';
const SOCKET_PROPERTIES = ['listen', 'connect', 'serve', 'udpSocket'].map((property) => ({ object: 'Bun', property, message: SOCKETS_IN_DATAPLANE }));
const TIME_GLOBALS = ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'].map((name) => ({ name, message: INJECT_CLOCK }));
const TIME_SYNTAX = [
  { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: `new Date() reads the clock: ${INJECT_CLOCK}` },
  { selector: "CallExpression[callee.name='Date']", message: `Date() reads the clock: ${INJECT_CLOCK}` },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'bench/results/**', 'docs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-properties': 'off',
    },
  },
  {
    files: ['src/**'],
    ignores: [
      'src/dataplane/system-clock.ts',
    ],
    rules: {
      'no-restricted-globals': ['error', ...TIME_GLOBALS],
      'no-restricted-properties': ['error', ...TIME_PROPERTIES],
      'no-restricted-syntax': ['error', ...TIME_SYNTAX],
    },
  },
  {
    // Outside the data plane neither time nor sockets (this block's list replaces the one above).
    files: ['src/app/**', 'src/control/**', 'src/cli/**'],
    rules: {
      'no-restricted-properties': ['error', ...TIME_PROPERTIES, ...SOCKET_PROPERTIES],
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['node:net', 'node:tls', 'node:dgram', 'net', 'tls', 'dgram', 'node:http', 'node:https'], message: SOCKETS_IN_DATAPLANE }],
      }],
    },
  },
  {
    files: ['src/core/**', 'src/protocol/**', 'src/config/**'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:net', 'node:tls', 'node:dgram', 'net', 'tls', 'dgram'], message: 'core/protocol/config are pure: sockets live in src/dataplane/.' },
          { group: ['**/dataplane/**', '**/app/**', '**/cli/**', '**/control/**'], message: 'dependencies point inwards: cli → app → control/dataplane → core.' },
        ],
      }],
      // Replaces the src/ list for these folders (a later block's rule wins), so it repeats it.
      'no-restricted-properties': ['error',
        ...TIME_PROPERTIES,
        ...SOCKET_PROPERTIES,
        { object: 'Math', property: 'random', message: 'inject a Random instead' },
      ],
    },
  },
  {
    files: ['test/**'],
    rules: {
      'no-restricted-syntax': ['error',
        { selector: "CallExpression[callee.property.name='only']", message: '.only must not be committed' },
      ],
    },
  },
);
