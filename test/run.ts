/**
 * `npm test` after type-check and lint: installs missing peers (pen, HAProxy) for the
 * comparison tests, runs every test file with Bun's runner, and ends with one plain summary line
 * ("N passed, N failed, N skipped") that CI and people can read at a glance.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dir, '..');
spawnSync('bash', [join(root, 'scripts/ensure-peers.sh')], { stdio: 'inherit' });

const dir = mkdtempSync(join(tmpdir(), 'fulcrum-test-'));
const junit = join(dir, 'junit.xml');
const args = process.argv.slice(2);
const targets = args.length > 0 ? args : ['test/unit', 'test/integration', 'test/e2e'];
const run = spawnSync(process.execPath, ['test', ...targets, '--timeout=60000', '--reporter=junit', `--reporter-outfile=${junit}`], {
  cwd: root,
  stdio: 'inherit',
});

let summary = 'no test report was written';
let failed = run.status !== 0;
try {
  const head = /<testsuites[^>]*>/.exec(readFileSync(junit, 'utf8'))?.[0] ?? '';
  const attr = (name: string): number => Number(new RegExp(`${name}="(\\d+)"`).exec(head)?.[1] ?? 0);
  const tests = attr('tests');
  const failures = attr('failures') + attr('errors');
  const skipped = attr('skipped');
  summary = `${tests - failures - skipped} passed, ${failures} failed, ${skipped} skipped`;
  if (tests === 0 || failures > 0) failed = true;
} catch {
  failed = true;
}
rmSync(dir, { recursive: true, force: true });
console.log(summary);
process.exit(failed ? 1 : (run.status ?? 1));
