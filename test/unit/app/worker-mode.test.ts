import { expect, test } from 'bun:test';
import { workerModeProblem } from '../../../src/app/listeners.ts';
import { parseConfigText } from '../../../src/config/yaml/parse.ts';

// UDP and HTTP listeners run in one process: --workers with one of them is refused at start.
const listeners = (extra: string): string => `groups:\n  app:\n    servers: [127.0.0.1:9001]\nlisteners:\n  - listen: 127.0.0.1:8080\n    group: app\n${extra}`;

test.each([
  ['', null],
  ['    protocol: udp\n', /UDP, which runs in one process/],
  ['    mode: http\n', /HTTP mode, which runs in one process/],
] as const)('listener %p', (extra, expected) => {
  const r = parseConfigText(listeners(extra), 'f.yaml');
  if ('errors' in r) throw new Error(JSON.stringify(r.errors));
  const problem = workerModeProblem(r.config.listeners[0]!);
  if (expected === null) expect(problem).toBeNull();
  else expect(problem).toMatch(expected);
});
