/**
 * Issue 13: a duration beyond the runtime's longest timer (~24.8 days) once overflowed to 1 ms,
 * so `-t 3000000` closed every client at once and ejected healthy servers. Every source refuses
 * it with one rule (src/core/duration.ts): pen's command line, -o and the control port, the
 * config file.
 */
import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, freePort, repoRoot, useHarness, whoServes } from '../harness/index.ts';

setDefaultTimeout(30_000);
const h = useHarness();
const dir = mkdtempSync(join(tmpdir(), 'fulcrum-durations-'));
/** As root, a network control port needs -u (pen's rule); -u root keeps the test's privileges. */
const userArgs = process.getuid?.() === 0 ? ['-u', 'root'] : [];

function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([join(repoRoot, 'bin/fulcrum'), ...args], { cwd: repoRoot, stdout: 'pipe', stderr: 'pipe', timeout: 20_000 });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** One pen control-port command over a raw connection: pen answers and closes. */
async function control(port: number, command: string): Promise<string> {
  const c = await connect(port);
  await c.write(`${command}\n`);
  return (await c.readAll()).toString();
}

describe('durations beyond the longest timer are refused where they are written', () => {
  test('fulcrum -f -t 3000000 exits 2 with one line naming the option and the range', () => {
    const echo = h.echo();
    const r = run(['-f', '-t', '3000000', `127.0.0.1:${freePort()}`, `127.0.0.1:${echo.port}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('fulcrum: -t: expected a duration from 1 to 2147483 s (about 24.8 days), got 3000000 s\n');
  });

  test('-o "timeout 3000000" is refused at start with the same rule', () => {
    const echo = h.echo();
    const r = run(['-f', '-o', 'timeout 3000000', `127.0.0.1:${freePort()}`, `127.0.0.1:${echo.port}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toBe('fulcrum: timeout: expected a duration from 1 to 2147483 s (about 24.8 days), got 3000000 s\n');
  });

  test('the control port answers an error, changes nothing, and clients are still served', async () => {
    const a = h.identify('A');
    const port = freePort();
    const ctl = freePort();
    await h.startFulcrum([...userArgs, '-C', `127.0.0.1:${ctl}`, '-t', '3', `127.0.0.1:${port}`, a.address]);
    expect(await control(ctl, 'timeout 3000000')).toContain('timeout: expected a duration from 1 to 2147483 s (about 24.8 days), got 3000000 s');
    expect(await control(ctl, 'blacklist 3000000')).toContain('blacklist: expected a duration up to 2147483 s');
    expect(await control(ctl, 'timeout')).toBe('3\n');
    expect(await control(ctl, 'blacklist')).toBe('30\n');
    expect(await whoServes(port)).toBe('A');
  });

  test('the config file: a positioned issue naming the field and the range', () => {
    const file = join(dir, 'long.yaml');
    writeFileSync(file, ['groups:', '  app:', '    connect_timeout: 800h', '    servers: [127.0.0.1:9001]', 'listeners:', '  - listen: 127.0.0.1:8080', '    group: app', ''].join('\n'));
    const r = run(['check', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:3:22: groups.app.connect_timeout: expected a duration up to 2147483647 ms (about 24.8 days), got "800h"`);
  });
});
