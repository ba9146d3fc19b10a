/** The `fulcrum` command as a user runs it: signals, files, -F reloads, daemonising, the config file. */
import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bunPath, freePort, pidAlive, repoRoot, useHarness, waitFor, whoServes } from '../harness/index.ts';

setDefaultTimeout(30_000);
const h = useHarness();
const dir = mkdtempSync(join(tmpdir(), 'fulcrum-cli-'));

function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([join(repoRoot, 'bin/fulcrum'), ...args], { cwd: repoRoot, stdout: 'pipe', stderr: 'pipe' });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe('command line', () => {
  test('--help and --version', () => {
    const help = run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('[host:]port');
    expect(help.stdout).toContain('maglev');
    expect(run(['--version']).stdout).toMatch(/^fulcrum \d+\.\d+\.\d+ \(bun /);
  });

  test('mistakes exit 2 with a clear message, and nothing listens', () => {
    for (const [args, msg] of [
      [[], /missing the listen address/],
      [['-x', 'lots', '8080', 'a:1'], /-x: "lots" is not an integer/],
      [['-C', 'host:port', '8080', 'a:1'], /-C: listen address "host:port"/],
      [['-L', 'ssl3', '-E', 'c.pem', '443', 'a:80'], /SSLv3 is insecure and refused/],
      [['-j', '/var/empty', '8080', 'a:1'], /chroot/],
    ] as const) {
      const r = run([...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });

  test('a listen address in use is reported and the exit code is 1', async () => {
    const echo = h.echo();
    const r = run(['-f', `127.0.0.1:${echo.port}`, '127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot listen on 127\.0\.0\.1:\d+/);
  });
});

describe('signals and files', () => {
  test('-p pid file names the serving process; -l logs each connection; USR1 writes -w; TERM stops and removes the pid file', async () => {
    const a = h.identify('A', { after: 'echo' }); // the server keeps a connection open until the client ends it
    const port = freePort();
    const pidFile = join(dir, 'f.pid');
    const logFile = join(dir, 'f.log');
    const statusFile = join(dir, 'status.html');
    const p = await h.startFulcrum(['-p', pidFile, '-l', logFile, '--log-format', 'fulcrum', '-w', statusFile, `127.0.0.1:${port}`, a.address]);
    await waitFor(() => existsSync(pidFile), { what: 'the pid file' });
    expect(Number(readFileSync(pidFile, 'utf8'))).toBe(p.pid);
    expect(await whoServes(port)).toBe('A');
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('end='), { what: 'a log line' });
    expect(readFileSync(logFile, 'utf8')).toMatch(/client=127\.0\.0\.1:\d+ server=127\.0\.0\.1:\d+ why="algorithm" .* end=client-closed/);
    p.kill('SIGUSR1');
    await p.waitForLine(/1 accepted/, 5000);
    await waitFor(() => existsSync(statusFile), { what: 'the status file' });
    // pen's status page: the address and the port in cells of their own.
    expect(readFileSync(statusFile, 'utf8')).toContain(`<td>127.0.0.1</td>\n<td>0</td>\n<td>${a.port}</td>\n`);
    const open = await h.connect(port);
    expect(await open.readLine()).toBe('A');
    p.kill('SIGTERM');
    expect(await p.waitForExit(5000)).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
    expect(await open.waitClosed()).toBe('fin'); // closed cleanly, not reset
  });

  test('SIGHUP re-reads the -F file without dropping an established connection, and reopens the log', async () => {
    const echo = h.echo();
    const b = h.identify('B');
    const port = freePort();
    const cmdFile = join(dir, 'pen.cfg');
    const logFile = join(dir, 'hup.log');
    writeFileSync(cmdFile, `# pen commands\nserver 0 address 127.0.0.1 port ${echo.port}\n`);
    const p = await h.startFulcrum(['-r', '-F', cmdFile, '-l', logFile, `127.0.0.1:${port}`, `127.0.0.1:${echo.port}`]);
    const live = await h.connect(port);
    await live.write('before ');
    expect((await live.readExactly(7)).toString()).toBe('before ');
    // Rotate the log and point server 0 somewhere else.
    Bun.spawnSync(['mv', logFile, logFile + '.1']);
    writeFileSync(cmdFile, `server 0 address 127.0.0.1 port ${b.port}\n`);
    p.kill('SIGHUP');
    await p.waitForLine(/SIGHUP: re-read/, 5000);
    expect(await whoServes(port)).toBe('B'); // new connections follow the new file
    await live.write('after');
    expect((await live.readExactly(5)).toString()).toBe('after'); // the old one still works
    await live.end();
    expect((await live.readAll()).length).toBe(0);
    // pen's -l format: a line per chunk from the client, written when it arrives.
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes(' after\n'), { what: 'the reopened log to get a line' });
  });

  test('a broken -F file at start is reported with file and line', () => {
    const cmdFile = join(dir, 'broken.cfg');
    writeFileSync(cmdFile, 'timeout 5\nfrobnicate 3\n');
    const r = run(['-f', '-F', cmdFile, `127.0.0.1:${freePort()}`, '127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${cmdFile}:2: unknown command "frobnicate"`);
  });

  test('without -f, like pen, it detaches: the command returns and the pid file names the daemon', async () => {
    const a = h.identify('A');
    const port = freePort();
    const pidFile = join(dir, 'daemon.pid');
    const r = Bun.spawnSync([join(repoRoot, 'bin/fulcrum'), '-p', pidFile, `127.0.0.1:${port}`, a.address], { cwd: repoRoot, stdout: 'pipe', stderr: 'pipe' });
    expect(r.exitCode).toBe(0);
    await waitFor(() => existsSync(pidFile), { what: 'the daemon pid file' });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    h.defer(() => {
      if (pidAlive(pid)) process.kill(pid, 'SIGTERM');
    });
    expect(await whoServes(port)).toBe('A');
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !pidAlive(pid), { what: 'the daemon to exit' });
  });

  test('a daemon that cannot start reports why, and the command fails', () => {
    const busy = freePort();
    const blocker = Bun.listen({ hostname: '127.0.0.1', port: busy, socket: { data() {} } });
    try {
      const r = run([`127.0.0.1:${busy}`, '127.0.0.1:1']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/cannot listen on 127\.0\.0\.1/);
    } finally {
      blocker.stop(true);
    }
  });
});

describe('the config file', () => {
  const yaml = (serverPort: number, listenPort: number, extra = ''): string => `
groups:
  app:
    algorithm: leastconn
    servers:
      - 127.0.0.1:${serverPort}
${extra}
listeners:
  - name: front
    listen: 127.0.0.1:${listenPort}
    group: app
`;

  test('fulcrum check validates and names every mistake with file:line', () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, yaml(9001, 8080));
    const ok = run(['check', good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('OK (1 listener(s), 1 group(s))');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, yaml(9001, 8080).replace('leastconn', 'fastest').replace('group: app', 'group: ap'));
    const r = run(['check', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${bad}:4:16: groups\\.app\\.algorithm: .*leastconn`));
    expect(r.stderr).toMatch(/listeners\[0\]\.group: unknown group 'ap' \(did you mean 'app'\?\)/);
  });

  test('--config runs it; SIGHUP reloads it as one transaction and a broken edit is rejected whole', async () => {
    const a = h.identify('A');
    const b = h.identify('B');
    const port = freePort();
    const file = join(dir, 'run.yaml');
    writeFileSync(file, yaml(a.port, port));
    const p = await h.startFulcrum(['--config', file], { port });
    expect(await whoServes(port)).toBe('A');
    writeFileSync(file, yaml(b.port, port));
    p.kill('SIGHUP');
    await p.waitForLine(/reloaded/, 5000);
    expect(await whoServes(port)).toBe('B');
    writeFileSync(file, yaml(a.port, port).replace('algorithm: leastconn', 'algorithm: 7'));
    p.kill('SIGHUP');
    await p.waitForLine(/reload failed, keeping the running configuration/, 5000);
    expect(await whoServes(port)).toBe('B');
  });
});

test('the bin is the serving process (exec, no wrapper)', async () => {
  const a = h.identify('A');
  const port = freePort();
  const proc = Bun.spawn([join(repoRoot, 'bin/fulcrum'), '-f', `127.0.0.1:${port}`, a.address], { cwd: repoRoot, stdout: 'ignore', stderr: 'pipe' });
  h.defer(() => proc.kill());
  await waitFor(async () => (await whoServes(port).catch(() => '')) === 'A', { what: 'the balancer to serve' });
  const cmdline = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8');
  expect(cmdline).toContain('src/cli/main.ts'); // the pid we started is Bun running the balancer
  expect(bunPath()).toBeTruthy();
});

test('-dd dumps what flows (hex, or ASCII with -a)', async () => {
  const echo = h.echo();
  const port = freePort();
  const p = await h.startFulcrum(['-dd', '-a', `127.0.0.1:${port}`, echo.address]);
  const c = await h.connect(port);
  await c.write('hello dump');
  expect((await c.readExactly(10)).toString()).toBe('hello dump');
  await p.waitForLine(/client -> server 10 bytes/, 5000);
  await p.waitForLine(/^hello dump$/, 5000);
});

test.skipIf(process.getuid?.() !== 0)('-u drops to the given user after binding', async () => {
  const echo = h.echo();
  const port = freePort();
  const p = await h.startFulcrum(['-u', 'nobody', `127.0.0.1:${port}`, echo.address]);
  await waitFor(() => /Uid:\s+65534\b/.test(readFileSync(`/proc/${p.pid}/status`, 'utf8')), { what: 'the process to run as nobody' });
  const c = await h.connect(port);
  await c.write('still serving');
  expect((await c.readExactly(13)).toString()).toBe('still serving');
});
