// The documented vocabulary stays complete: every error code (src/core/errors.ts) is explained in
// docs/errors.md, every termination reason in docs/termination-codes.md, and docs/errors.md lists
// no code that no longer exists.
import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODE_LIST, ERROR_CODES } from '../../src/core/errors.ts';
import { TERMINATION_REASONS } from '../../src/dataplane/session.ts';

const docs = (name: string): string => readFileSync(join(import.meta.dir, '../../docs', name), 'utf8');

/** The codes in the first column of a Markdown table: rows starting with | `code` |. */
function tableCodes(doc: string): string[] {
  return [...doc.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
}

test('every error code is documented in docs/errors.md, and only those', () => {
  const documented = tableCodes(docs('errors.md'));
  const missing = ERROR_CODE_LIST.filter((c) => !documented.includes(c));
  expect(missing).toEqual([]);
  expect(documented.filter((c) => !Object.hasOwn(ERROR_CODES, c))).toEqual([]);
  expect(new Set(documented).size).toBe(documented.length);
});

test('every termination reason is documented in docs/termination-codes.md', () => {
  const documented = tableCodes(docs('termination-codes.md'));
  expect(TERMINATION_REASONS.filter((r) => !documented.includes(r))).toEqual([]);
});

test('error codes are E_ names with a one-line description', () => {
  for (const [code, description] of Object.entries(ERROR_CODES)) {
    expect(code).toMatch(/^E_[A-Z_]+$/);
    expect(description.length).toBeGreaterThan(10);
    expect(description).not.toContain('\n');
  }
});
