/**
 * A hurried operator (issue 13): start-up mistakes are one line with the file or address and the
 * fix (exit 1, no stack trace), `check` reports what a start would meet, oversized files are
 * refused, the command line overrides the config file by one rule, a reload survives a log file
 * it cannot reopen, and SIGTERM says how many connections it closed.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot, useHarness, waitFor } from '../harness/index.ts';

setDefaultTimeout(30_000);
const h = useHarness();
const dir = mkdtempSync(join(tmpdir(), 'fulcrum-ops-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const asRoot = process.getuid?.() === 0;

function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([join(repoRoot, 'bin/fulcrum'), ...args], { cwd: repoRoot, stdout: 'pipe', stderr: 'pipe', timeout: 20_000 });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** One line on stderr, no stack trace. */
function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at |sonic boom/);
  return lines[0]!;
}

describe('start-up mistakes are one line and exit 1', () => {
  test('a missing access-log directory', () => {
    const r = run(['-f', '--access-log', join(dir, 'nodir', 'a.log'), `127.0.0.1:${freePort()}`, '127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe(`fulcrum: cannot write the access log ${join(dir, 'nodir', 'a.log')}: no such directory ${join(dir, 'nodir')} (create it or choose another path)`);
  });

  test('a port in use, with an access log configured', () => {
    const echo = h.echo();
    const r = run(['-f', '--access-log', join(dir, 'inuse.log'), `127.0.0.1:${echo.port}`, '127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe(`fulcrum: cannot listen on 127.0.0.1:${echo.port}: address already in use (another process is listening there; choose another port or stop it)`);
  });

  test.skipIf(!asRoot)('a pid file -u nobody cannot write (written after dropping privileges, as pen)', () => {
    const root = join(dir, 'rootonly');
    mkdirSync(root, { mode: 0o755 });
    const pid = join(root, 'f.pid');
    const r = run(['-f', '-u', 'nobody', '-p', pid, `127.0.0.1:${freePort()}`, '127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe(`fulcrum: cannot write the pid file ${pid}: permission denied (user nobody may not write there; choose a path it may write or change the permissions)`);
  });
});

describe('files are read up to a cap', () => {
  test('check /dev/zero and -F /dev/zero stop at 4 MiB with a clear error', () => {
    const c = run(['check', '/dev/zero']);
    expect(c.code).toBe(1);
    expect(c.stderr).toBe('/dev/zero: the config file is larger than 4 MiB, the most Fulcrum reads (is it the right file?)\n');
    const f = run(['-f', '-F', '/dev/zero', `127.0.0.1:${freePort()}`]);
    expect(f.code).toBe(1);
    expect(oneLine(f.stderr)).toContain('/dev/zero: the command file is larger than 4 MiB');
  });
});

describe('fulcrum check reports what a start would meet', () => {
  test('unwritable locations, a missing token, certificate, and an unresolvable name, all at once with positions', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'global:',
        `  pid_file: ${dir}/nodir/f.pid`,
        'admin:',
        '  listen: 127.0.0.1:9900',
        `  token_file: ${dir}/missing.token`,
        'access_log:',
        `  file: ${dir}/nodir2/access.log`,
        'groups:',
        '  app:',
        '    servers:',
        '      - no-such-host.invalid:80',
        'listeners:',
        '  - listen: 127.0.0.1:8443',
        '    group: app',
        '    tls:',
        '      certificates:',
        `        - cert: ${dir}/missing.pem`,
        '',
      ].join('\n'),
    );
    const r = run(['check', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${file}:2:13: global.pid_file: cannot write the pid file ${dir}/nodir/f.pid: no such directory`);
    expect(r.stderr).toContain(`${file}:5:15: admin.token_file: cannot read the admin token file`);
    expect(r.stderr).toContain(`${file}:7:9: access_log.file: cannot write the access log`);
    expect(r.stderr).toMatch(new RegExp(`${file}:11:\\d+: groups\\.app\\.servers\\[0\\]: cannot resolve server host name "no-such-host.invalid"`));
    expect(r.stderr).toMatch(new RegExp(`${file}:17:\\d+: listeners\\[0\\]\\.tls\\.certificates\\[0\\]: cannot read the certificate file`));
  });
});

describe('the command line overrides the config file', () => {
  test('-u, -x and -l given with --config apply (and pen group options are refused)', async () => {
    const a = h.identify('A');
    const port = freePort();
    const file = join(dir, 'over.yaml');
    const fileLog = join(dir, 'file.log');
    const cliLog = join(dir, 'cli.log');
    writeFileSync(file, `global:\n  max_connections: 7\n  log_file: ${fileLog}\ngroups:\n  app:\n    servers: ["${a.address}"]\nlisteners:\n  - listen: 127.0.0.1:${port}\n    group: app\n`);
    const refused = run(['--config', file, '-t', '5']);
    expect(refused.code).toBe(2);
    expect(oneLine(refused.stderr)).toContain('-t: with --config, set this in the file');
    const uid = asRoot ? 'nobody' : String(process.getuid?.());
    const control = join(dir, 'ctl.sock');
    const p = await h.startFulcrum(['--config', file, '-u', uid, '-x', '3', '-l', cliLog, '-C', control], { port });
    const status = Bun.spawnSync([join(repoRoot, 'bin/fulcrum'), 'ctl', control, 'conn_max'], { cwd: repoRoot, stdout: 'pipe', timeout: 10_000 });
    expect(status.stdout.toString().trim()).toBe('3');
    if (asRoot) expect(readFileSync(`/proc/${p.pid}/status`, 'utf8')).toMatch(/\nUid:\s+65534\b/);
    const c = await h.connect(port);
    expect(await c.readLine()).toBe('A');
    // pen's -l line is written per request the client sends (docs/logging.md).
    await c.write('GET /over HTTP/1.0\r\n\r\n');
    await c.end();
    await waitFor(() => readFileSync(cliLog, 'utf8').includes('GET /over'), { what: 'a line in the -l log given on the command line' });
  });
});

describe('reloads and stops are reported, and the balancer keeps serving', () => {
  test.skipIf(!asRoot)('-u nobody: SIGHUP and ctl reload cannot reopen the logs; reported, old files kept, still serving', async () => {
    const a = h.identify('A', { after: 'echo' });
    const port = freePort();
    const accessLog = join(dir, 'access.log');
    const penLog = join(dir, 'pen.log');
    const control = join(dir, 'reload.sock');
    const p = await h.startFulcrum(['-u', 'nobody', '-l', penLog, '--access-log', accessLog, '-C', control, `127.0.0.1:${port}`, a.address], { port });
    p.kill('SIGHUP');
    await p.waitForLine(/cannot reopen the access log .*permission denied.*still writing to the old file/, 5000);
    const r = Bun.spawnSync([join(repoRoot, 'bin/fulcrum'), 'ctl', control, 'reload'], { cwd: repoRoot, stdout: 'pipe', stderr: 'pipe', timeout: 10_000 });
    expect(r.stdout.toString()).toContain(`warning: cannot reopen the log file ${penLog}: permission denied`);
    const c = await h.connect(port);
    expect(await c.readLine()).toBe('A');
    await c.end();
    await waitFor(() => readFileSync(accessLog, 'utf8').includes('"end"'), { what: 'the old access log to keep getting lines' });
    expect(p.running).toBe(true);
  });

  test('SIGTERM with a connection open says how many were closed', async () => {
    const a = h.identify('A', { after: 'echo' });
    const port = freePort();
    const p = await h.startFulcrum([`127.0.0.1:${port}`, a.address]);
    const c = await h.connect(port);
    expect(await c.readLine()).toBe('A');
    p.kill('SIGTERM');
    await p.waitForLine(/SIGTERM: stopped accepting; closed 1 connections \(0 waiting\)/, 5000);
    expect(await p.waitForExit(5000)).toBe(0);
  });
});
