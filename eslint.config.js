// Lint rules that encode the architecture: core/, protocol/ and config/ are pure decision code,
// so they may not import sockets or read the clock themselves (time and randomness are injected).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    files: ['src/core/**', 'src/protocol/**', 'src/config/**'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:net', 'node:tls', 'node:dgram', 'net', 'tls', 'dgram'], message: 'core/protocol/config are pure: sockets live in src/dataplane/.' },
          { group: ['**/dataplane/**', '**/app/**', '**/cli/**', '**/control/**'], message: 'dependencies point inwards: cli → app → control/dataplane → core.' },
        ],
      }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'inject a Clock instead' },
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
