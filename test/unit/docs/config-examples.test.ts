/**
 * Every ```yaml block in docs/*.md and README.md is a config an operator may copy, so each must
 * pass the config loader's schema and cross-field rules (what `fulcrum check` checks, short of
 * the files the examples name, which need not exist here). A block that is deliberately a part
 * of a config says so with a `# fragment` comment and is skipped.
 */
import { expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIssue, parseConfigText } from '../../../src/config/yaml/parse.ts';

const root = join(import.meta.dir, '../../..');
const files = [...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), 'README.md'];

interface Example {
  where: string;
  text: string;
}

function examples(): Example[] {
  const out: Example[] = [];
  for (const file of files) {
    const lines = readFileSync(join(root, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]!.trim() !== '```yaml') continue;
      const start = i + 1;
      let end = start;
      while (end < lines.length && lines[end]!.trim() !== '```') end++;
      out.push({ where: `${file}:${start + 1}`, text: lines.slice(start, end).join('\n') });
      i = end;
    }
  }
  return out;
}

const all = examples();

test('the docs have config examples to check', () => {
  expect(all.length).toBeGreaterThanOrEqual(5);
});

for (const ex of all) {
  const fragment = /^\s*# fragment\b/m.test(ex.text);
  test.skipIf(fragment)(`${ex.where} is a valid config`, () => {
    const r = parseConfigText(ex.text, ex.where);
    expect('errors' in r ? r.errors.map(formatIssue) : []).toEqual([]);
  });
}
