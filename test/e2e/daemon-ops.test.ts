/**
 * A daemon that can be watched (docs/operations.md): without -f its messages go to syslog (here a
 * socket the test binds, through --diagnostics-log syslog:PATH) or to a file, the start prints
 * the pid and the listeners (or nothing with --quiet), and systemd's readiness messages
 * (READY/RELOADING/STOPPING, STATUS) reach NOTIFY_SOCKET. The test's sockets are Unix datagram
 * sockets bound by python3 (Bun cannot bind one), which prints each datagram as a JSON line.
 */
import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bunPath, freePort, pidAlive, repoRoot, useHarness, waitFor, whoServes, type RunningProcess } from '../harness/index.ts';

setDefaultTimeout(30_000);
const h = useHarness();
const dir = mkdtempSync(join(tmpdir(), 'fulcrum-ops-'));
const python = Bun.which('python3');

const RECEIVER = `
import json, socket, sys
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + p[1:] if p.startswith('@') else p)
print('bound', flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

/** A Unix datagram socket at `path` (`@name`: abstract) and the datagrams it received so far. */
async function receiver(path: string): Promise<{ proc: RunningProcess; got: () => string[] }> {
  const proc = await h.spawn([python!, '-c', RECEIVER, path], { name: 'receiver', readyLine: /^bound$/ });
  const got = (): string[] => proc.lines().filter((l) => l.stream === 'stdout' && l.text.startsWith('"')).map((l) => JSON.parse(l.text) as string);
  return { proc, got };
}

/** Runs `fulcrum ARGS` as a user does (daemonising unless -f), and kills what it leaves. */
function runDaemon(args: string[], pidFile: string): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([join(repoRoot, 'bin/fulcrum'), '-p', pidFile, ...args], { cwd: repoRoot, stdout: 'pipe', stderr: 'pipe' });
  h.defer(() => {
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8'));
    if (pidAlive(pid)) process.kill(pid, 'SIGTERM');
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe.skipIf(python === null)('daemon messages', () => {
  test('without -f: the start line names pid and listener, and messages (start, SIGUSR1, SIGHUP) reach syslog', async () => {
    const log = await receiver(join(dir, 'log.sock'));
    const a = h.identify('A');
    const port = freePort();
    const pidFile = join(dir, 'syslog.pid');
    const r = runDaemon(['--diagnostics-log', `syslog:${join(dir, 'log.sock')}`, `127.0.0.1:${port}`, a.address], pidFile);
    expect(r.code).toBe(0);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(r.stdout).toBe(`fulcrum: pid ${pid}, listening on 127.0.0.1:${port} (group default); messages to syslog (${join(dir, 'log.sock')})\n`);
    expect(await whoServes(port)).toBe('A');
    // RFC 3164 with pen's facility (user) and severity info: <14>, tagged with the daemon's pid.
    const tag = `fulcrum[${pid}]: `;
    await waitFor(() => log.got().find((m) => m.startsWith('<14>') && m.includes(`${tag}pid ${pid}, listening on 127.0.0.1:${port}`)), { what: 'the start line in syslog', details: () => log.got().join('\n') });
    process.kill(pid, 'SIGUSR1');
    await waitFor(() => log.got().find((m) => m.includes(tag) && /default server 0 127\.0\.0\.1:\d+: up/.test(m)), { what: 'the SIGUSR1 report in syslog', details: () => log.got().join('\n') });
    process.kill(pid, 'SIGHUP');
    await waitFor(() => log.got().find((m) => m.includes(`${tag}SIGHUP: `)), { what: 'the reload outcome in syslog' });
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !pidAlive(pid), { what: 'the daemon to exit' });
  });

  test('a file instead (rotated on SIGHUP), and --quiet prints nothing', async () => {
    const a = h.identify('A');
    const port = freePort();
    const pidFile = join(dir, 'file.pid');
    const logFile = join(dir, 'fulcrum.log');
    const r = runDaemon(['--quiet', '-d', '--diagnostics-log', logFile, `127.0.0.1:${port}`, a.address], pidFile);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes(`fulcrum[debug1]: listening on 127.0.0.1:${port}`), { what: 'the debug line in the file' });
    expect(readFileSync(logFile, 'utf8')).not.toContain(`pid ${pid}, listening`); // --quiet
    renameSync(logFile, `${logFile}.1`);
    process.kill(pid, 'SIGHUP');
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('fulcrum: SIGHUP: '), { what: 'the reopened file to get the reload line' });
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !pidAlive(pid), { what: 'the daemon to exit' });
  });

  test('workers write where their primary does', async () => {
    const a = h.identify('A');
    const port = freePort();
    const logFile = join(dir, 'workers.log');
    const p = await h.startFulcrum(['--workers', '2', '-d', '--diagnostics-log', logFile, `127.0.0.1:${port}`, a.address], { port });
    for (const w of [0, 1]) {
      await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes(`fulcrum worker ${w}[debug1]: serving (pid`), { what: `worker ${w}'s line in the file`, details: () => p.describe() });
    }
    expect(p.stderr()).not.toContain('serving (pid');
  });

  test('syslog asked for where no socket exists: the start fails and says so', () => {
    const r = runDaemon(['-f', '--diagnostics-log', `syslog:${join(dir, 'missing.sock')}`, `127.0.0.1:${freePort()}`, '127.0.0.1:1'], join(dir, 'missing.pid'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no socket at ${join(dir, 'missing.sock')}`);
  });

  test('under systemd with stderr on the journal (JOURNAL_STREAM), lines carry a <priority> prefix instead of a time', async () => {
    const a = h.identify('A');
    const port = freePort();
    const errFile = join(dir, 'journal-stderr');
    await Bun.write(errFile, '');
    const st = statSync(errFile);
    const proc = Bun.spawn([bunPath(), 'src/cli/main.ts', '-f', `127.0.0.1:${port}`, a.address], {
      cwd: repoRoot,
      env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
      stdout: 'ignore',
      stderr: Bun.file(errFile),
    });
    h.defer(async () => {
      proc.kill();
      await proc.exited;
    });
    await waitFor(() => readFileSync(errFile, 'utf8').match(/^<6>fulcrum: pid \d+, listening on 127\.0\.0\.1:\d+ \(group default\); messages to the journal/m), { what: 'the start line with <6>', details: () => readFileSync(errFile, 'utf8') });
  });
});

describe.skipIf(python === null)('systemd readiness (sd_notify)', () => {
  test('READY=1 with STATUS once listening, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM', async () => {
    const sock = join(dir, 'notify.sock');
    const n = await receiver(sock);
    const a = h.identify('A');
    const port = freePort();
    const p = await h.startFulcrum([`127.0.0.1:${port}`, a.address], { env: { NOTIFY_SOCKET: sock } });
    const ready = await waitFor(() => n.got().find((m) => m.startsWith('READY=1\n')), { what: 'READY=1', details: () => p.describe() });
    expect(ready).toContain(`STATUS=pid ${p.pid}, listening on 127.0.0.1:${port} (group default)`);
    expect(ready).toContain(`MAINPID=${p.pid}`);
    p.kill('SIGHUP');
    await waitFor(() => n.got().length >= 3, { what: 'RELOADING=1 and READY=1', details: () => n.got().join('\n---\n') });
    expect(n.got()[1]).toStartWith('RELOADING=1\nSTATUS=reloading (SIGHUP)');
    expect(n.got()[2]).toStartWith('READY=1\nSTATUS=reloaded (SIGHUP)');
    p.kill('SIGTERM');
    await waitFor(() => n.got().length >= 4, { what: 'STOPPING=1' });
    expect(n.got()[3]).toStartWith('STOPPING=1\n');
    expect(await p.waitForExit(10_000)).toBe(0);
  });

  test('an abstract NOTIFY_SOCKET (@name), as systemd may give', async () => {
    const name = `@fulcrum-test-${process.pid}-${freePort()}`;
    const n = await receiver(name);
    const a = h.identify('A');
    const port = freePort();
    await h.startFulcrum([`127.0.0.1:${port}`, a.address], { env: { NOTIFY_SOCKET: name } });
    await waitFor(() => n.got().find((m) => m.startsWith('READY=1\n')), { what: 'READY=1 on the abstract socket' });
  });
});
