import { expect, test } from 'bun:test';
import { parseConfigText } from '../../../src/config/yaml/parse.ts';

const file = (workers: string): string => `global:\n  workers: ${workers}\ngroups:\n  app:\n    servers: [127.0.0.1:9001]\nlisteners:\n  - listen: 8080\n    group: app\n`;

test('global.workers: a number of processes, or auto; 1 by default', () => {
  const r3 = parseConfigText(file('3'), 'f.yaml');
  expect('config' in r3 && r3.config.global.workers).toBe(3);
  const auto = parseConfigText(file('auto'), 'f.yaml');
  expect('config' in auto && auto.config.global.workers).toBe('auto');
  const none = parseConfigText('groups:\n  app:\n    servers: [127.0.0.1:9001]\nlisteners:\n  - listen: 8080\n    group: app\n', 'f.yaml');
  expect('config' in none && none.config.global.workers).toBe(1);
  for (const bad of ['0', 'lots', '1000']) {
    const r = parseConfigText(file(bad), 'f.yaml');
    expect('errors' in r && r.errors.map((e) => e.message).join()).toMatch(/a number of processes 1-256, or auto/);
  }
});
