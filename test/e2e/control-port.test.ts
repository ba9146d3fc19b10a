/**
 * pen's control port (-C) driven by the real penctl(1) from Debian's pen package, as a user's
 * scripts would: every command's reply and effect, side by side with the real pen 0.34.1 where
 * the replies are meant to match byte for byte (docs/penctl.md lists what deliberately differs).
 * Skips with a message when penctl is missing (scripts/ensure-peers.sh installs it as root).
 */
import { describe, expect, test } from 'bun:test';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bunPath,
  connect,
  freePort,
  penAvailable,
  pendingAfter,
  repoRoot,
  sequence,
  spawnProcess,
  transfer,
  useHarness,
  waitFor,
  type Client,
  type RunningProcess,
} from '../harness/index.ts';

const PENCTL = '/usr/bin/penctl';
const havePenctl = existsSync(PENCTL);
const asRoot = process.getuid?.() === 0;
/** As root, a network control port needs -u (pen's rule); -u root keeps the test's privileges. */
const userArgs = asRoot ? ['-u', 'root'] : [];

const h = useHarness();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function run(cmd: string[], timeoutMs = 10_000): Promise<Run> {
  const p = Bun.spawn(cmd, { cwd: repoRoot, stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' });
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  await p.exited;
  clearTimeout(timer);
  return { code: p.exitCode, stdout, stderr };
}

/** Runs the real penctl; its output, or a thrown error naming the command. */
async function penctl(addr: string, command: string): Promise<string> {
  const r = await run([PENCTL, addr, ...command.split(' ')]);
  if (r.code !== 0) throw new Error(`penctl ${addr} ${command}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function fulcrumCtl(...args: string[]): Promise<Run> {
  return run([bunPath(), 'src/cli/main.ts', 'ctl', ...args]);
}

interface Lb {
  proc: RunningProcess;
  port: number;
  ctl: string;
}

async function startLb(program: 'pen' | 'fulcrum', options: string[], servers: string[], control?: string): Promise<Lb> {
  const port = freePort();
  const ctl = control ?? `127.0.0.1:${freePort()}`;
  const args = [...userArgs, '-C', ctl, ...options, `127.0.0.1:${port}`, ...servers];
  const proc = program === 'pen' ? await h.startPen(args) : await h.startFulcrum(args);
  return { proc, port, ctl };
}

function tempFile(name: string): string {
  const path = join(tmpdir(), `fulcrum-ctl-${process.pid}-${Math.random().toString(36).slice(2)}-${name}`);
  h.defer(() => rmSync(path, { force: true }));
  return path;
}

/** The numbers in the first column of pen's "Active connections" table. */
function connectionIds(status: string): number[] {
  const part = status.split('<h2>Active connections</h2>')[1] ?? '';
  return [...part.matchAll(/<tr>\n<td>(\d+)<\/td>\n/g)].map((m) => Number(m[1]));
}

/**
 * Masks what legitimately differs between two status pages: the time, client ages, and pen's
 * slot and file descriptor numbers for connections (Fulcrum has session ids and no fds).
 */
function normaliseStatus(html: string): string {
  const [head = '', conns = ''] = html.split('<h2>Active connections</h2>');
  const [servers = '', clients = ''] = head.split('<h2>Active clients</h2>');
  const maskCells = (text: string, cells: number[]): string =>
    text.replace(/<tr>\n((?:<td>[^<]*<\/td>\n)+)<\/tr>/g, (_m, body: string) => {
      const tds = body.split('\n').filter((l) => l !== '');
      return '<tr>\n' + tds.map((td, i) => (cells.includes(i) ? '<td>*</td>' : td)).join('\n') + '\n</tr>';
    });
  return (
    servers.replace(/^Time [^,]+,/m, 'Time *,') +
    '<h2>Active clients</h2>' +
    maskCells(clients, [2]) +
    '<h2>Active connections</h2>' +
    maskCells(conns.replace(/\d+ last<p>/, '* last<p>'), [0, 1, 2])
  );
}

function normaliseConnection(text: string): string {
  return text.replace(/^Connection \d+:/m, 'Connection *:').replace(/^downfd = .*$/m, 'downfd = *');
}

/** A client through the balancer that has sent and received `hello\n` and stays open. */
async function openEcho(port: number): Promise<Client> {
  const c = await h.connect(port);
  await c.write('hello\n');
  expect((await c.readLine()).toString()).toBe('hello');
  return c;
}

describe.skipIf(!havePenctl)('penctl against Fulcrum', () => {
  describe.skipIf(!penAvailable())('the same replies as pen 0.34.1', () => {
    test('getters and setters: byte for byte', async () => {
      const a = h.echo();
      const b = h.echo();
      const servers = [a.address, `${b.address}:10:20`];
      const pen = await startLb('pen', ['-x', '50', '-c', '30', '-b', '20', '-t', '2', '-T', '60'], servers);
      const ful = await startLb('fulcrum', ['-x', '50', '-c', '30', '-b', '20', '-t', '2', '-T', '60'], servers);
      const commands = [
        'servers', 'mode', 'blacklist', 'blacklist 7', 'blacklist', 'timeout', 'timeout 4', 'tracking', 'tracking 9',
        'debug', 'debug 0', 'conn_max', 'conn_max 60', 'clients_max', 'clients_max 40', 'client_acl', 'client_acl 3', 'client_acl 0',
        'control_acl', 'control_acl 0', 'idle_timeout', 'idle_timeout 6', 'idle_timeout 0', 'log', 'web_stats', 'recent', 'recent 60',
        'connection 5', 'close 400', 'hash', 'roundrobin', 'stubborn', 'weight', 'prio', 'mode', 'no hash', 'no roundrobin',
        'no stubborn', 'no weight', 'no prio', 'mode', 'server 1 weight 3', 'server 0 max 5 hard 6', 'server 1 prio 2', 'server 0 acl 0', 'servers',
        'acl 1 permit 127.0.0.1', 'acl 1 deny 10.0.0.0 255.0.0.0', 'no acl 1', 'tcp_nodelay', 'no tcp_nodelay', 'tcp_fastclose both',
        'tcp_fastclose off', 'pending_max 50', 'ascii', 'no ascii', 'no log', 'no web_stats',
      ];
      const differences: string[] = [];
      for (const c of commands) {
        const [p, f] = [await penctl(pen.ctl, c), await penctl(ful.ctl, c)];
        if (p !== f) differences.push(`${c}:\n  pen:     ${JSON.stringify(p)}\n  fulcrum: ${JSON.stringify(f)}`);
      }
      expect(differences).toEqual([]);
      // Replies that name each one's own port, file or pid.
      for (const lb of [pen, ful]) {
        expect(await penctl(lb.ctl, 'listen')).toBe(`127.0.0.1:${lb.port}\n`);
        expect(await penctl(lb.ctl, 'control')).toBe(`${lb.ctl}\n`);
        expect(await penctl(lb.ctl, 'pid')).toBe(`${lb.proc.pid}\n`);
        const log = tempFile('log');
        expect(await penctl(lb.ctl, `log ${log}`)).toBe(`${log}\n`);
        expect(await penctl(lb.ctl, 'log')).toBe(`${log}\n`);
        const web = tempFile('web.html');
        expect(await penctl(lb.ctl, `web_stats ${web}`)).toBe(`${web}\n`);
        expect(await penctl(lb.ctl, 'web_stats')).toBe(`${web}\n`);
      }
    });

    test('status, servers, recent, connection and close with a connection open', async () => {
      const a = h.echo();
      const b = h.echo();
      const servers = [a.address, b.address];
      const pen = await startLb('pen', ['-w', tempFile('pen.html')], servers);
      const ful = await startLb('fulcrum', ['-w', tempFile('fulcrum.html')], servers);
      // Nothing yet.
      expect(normaliseStatus(await penctl(ful.ctl, 'status'))).toBe(normaliseStatus(await penctl(pen.ctl, 'status')));
      const clients = { pen: await openEcho(pen.port), fulcrum: await openEcho(ful.port) };
      for (const c of ['servers', 'recent', 'recent 60']) expect(`${c}: ${await penctl(ful.ctl, c)}`).toBe(`${c}: ${await penctl(pen.ctl, c)}`);
      const [penStatus, fulStatus] = [await penctl(pen.ctl, 'status'), await penctl(ful.ctl, 'status')];
      expect(normaliseStatus(fulStatus)).toBe(normaliseStatus(penStatus));
      const [penId] = connectionIds(penStatus);
      const [fulId] = connectionIds(fulStatus);
      expect(penId).toBeDefined();
      expect(fulId).toBeDefined();
      const penConn = await penctl(pen.ctl, `connection ${penId}`);
      const fulConn = await penctl(ful.ctl, `connection ${fulId}`);
      expect(fulConn).toMatch(/^Connection \d+:\nstate = 2\ndownfd = -1, upfd = -1\nclient = 0, server = 1\npend = 0\n$/);
      expect(normaliseConnection(fulConn)).toBe(normaliseConnection(penConn));
      // close N: the same reply, and the client sees its connection end.
      expect(await penctl(pen.ctl, `close ${penId}`)).toBe(`Forcibly closing connection ${penId}\n`);
      expect(await penctl(ful.ctl, `close ${fulId}`)).toBe(`Forcibly closing connection ${fulId}\n`);
      for (const c of [clients.pen, clients.fulcrum]) expect(['fin', 'reset']).toContain(await c.waitClosed(5000));
      expect(await penctl(ful.ctl, `connection ${fulId}`)).toBe(`Connection ${fulId}:\nstate = 0\ndownfd = -1, upfd = -1\nclient = 0, server = 0\npend = 0\n`);
      // The client table remembers the bytes after the connection ended.
      await waitFor(async () => (await penctl(ful.ctl, 'recent')) === '127.0.0.1 connects 1 sx 6 rx 6\n', { what: 'recent after close' });
    });
  });

  test('close N closes that connection and no other', async () => {
    const lb = await startLb('fulcrum', [], [h.echo().address]);
    const first = await openEcho(lb.port);
    const second = await openEcho(lb.port);
    const ids = connectionIds(await penctl(lb.ctl, 'status'));
    expect(ids.length).toBe(2);
    expect(await penctl(lb.ctl, `close ${ids[0]}`)).toBe(`Forcibly closing connection ${ids[0]}\n`);
    expect(await first.waitClosed(5000)).toBe('fin');
    await second.write('still here\n');
    expect((await second.readLine()).toString()).toBe('still here');
    expect(await penctl(lb.ctl, `close ${ids[0]}`)).toBe(`Connection ${ids[0]} out of range\n`);
  });

  test('server N weight/max/prio/blacklist change what servers shows and where clients go', async () => {
    const lb = await startLb('fulcrum', ['-r'], [h.identify('A').address, h.identify('B').address]);
    expect(await penctl(lb.ctl, 'server 1 weight 3 max 9 hard 12 prio 4')).toBe('');
    expect((await penctl(lb.ctl, 'servers')).split('\n')[1]).toMatch(/^1 addr 127\.0\.0\.1 port \d+ conn 0 max 9 hard 12 weight 3 prio 4 sx 0 rx 0$/);
    expect(await penctl(lb.ctl, 'server 0 blacklist 60')).toBe('');
    expect(await sequence(lb.port, 3)).toEqual(['B', 'B', 'B']);
    expect(await penctl(lb.ctl, 'server 0 blacklist 0')).toBe('');
    expect((await sequence(lb.port, 4)).sort()).toEqual(['A', 'A', 'B', 'B']);
    // pen grows the table on demand: a new server takes clients once it has an address and a port.
    const c = h.identify('C');
    expect(await penctl(lb.ctl, `server 2 address 127.0.0.1 port ${c.port}`)).toBe('');
    expect((await sequence(lb.port, 6)).sort()).toEqual(['A', 'A', 'B', 'B', 'C', 'C']);
  });

  test('server N acl keeps a server from the clients its ACL denies', async () => {
    const lb = await startLb('fulcrum', ['-r'], [h.identify('A').address, h.identify('B').address]);
    expect(await penctl(lb.ctl, 'acl 3 deny 127.0.0.2')).toBe('');
    expect(await penctl(lb.ctl, 'server 0 acl 3')).toBe('');
    expect(await sequence(lb.port, 4, { sourceIp: '127.0.0.2' })).toEqual(['B', 'B', 'B', 'B']);
    expect((await sequence(lb.port, 4, { sourceIp: '127.0.0.3' })).sort()).toEqual(['A', 'A', 'B', 'B']);
  });

  test('conn_max and idle_timeout take effect on new connections', async () => {
    const lb = await startLb('fulcrum', [], [h.echo().address]);
    expect(await penctl(lb.ctl, 'conn_max 1')).toBe('1\n');
    const first = await openEcho(lb.port);
    const second = await h.connect(lb.port);
    await second.write('waiting\n');
    const echoed = second.readLine(5000);
    expect(await pendingAfter(echoed, 300)).toBe(true); // held unread at the limit
    await first.close();
    expect((await echoed).toString()).toBe('waiting');
    await second.close();
    expect(await penctl(lb.ctl, 'conn_max 500')).toBe('500\n');
    expect(await penctl(lb.ctl, 'idle_timeout 1')).toBe('Idle timeout: 1 seconds\n');
    const idle = await openEcho(lb.port);
    expect(await idle.waitClosed(10_000)).toBe('fin');
  });

  test('acl / client_acl / no acl change who is served', async () => {
    const lb = await startLb('fulcrum', [], [h.identify('A', { after: 'hold' }).address]);
    const served = async (): Promise<string> => {
      const c = await h.connect(lb.port, { localAddress: '127.0.0.2' });
      try {
        return (await c.readLine(3000)).toString();
      } catch {
        return `closed (${c.closeKind ?? 'open'})`;
      } finally {
        await c.close();
      }
    };
    expect(await served()).toBe('A');
    expect(await penctl(lb.ctl, 'acl 1 deny 127.0.0.2')).toBe('');
    expect(await penctl(lb.ctl, 'client_acl 1')).toBe('1\n');
    expect(await served()).toMatch(/^closed/);
    expect(await penctl(lb.ctl, 'no acl 1')).toBe('');
    expect(await served()).toBe('A');
  });

  test('roundrobin / no roundrobin switch client tracking', async () => {
    const lb = await startLb('fulcrum', [], [h.identify('A').address, h.identify('B').address]);
    const one = (await sequence(lb.port, 4)).join('');
    expect(new Set(one).size).toBe(1); // tracked: the same client, the same server
    expect(await penctl(lb.ctl, 'roundrobin')).toBe('');
    expect(await penctl(lb.ctl, 'mode')).toBe('no hash roundrobin no stubborn no weight no prio\n');
    expect((await sequence(lb.port, 4)).sort()).toEqual(['A', 'A', 'B', 'B']);
  });

  test('listen rebinds the listener while an established connection keeps transferring', async () => {
    const lb = await startLb('fulcrum', [], [h.echo().address]);
    const established = await openEcho(lb.port);
    const newPort = freePort();
    expect(await penctl(lb.ctl, `listen 127.0.0.1:${newPort}`)).toBe(`127.0.0.1:${newPort}\n`);
    expect(await penctl(lb.ctl, 'listen')).toBe(`127.0.0.1:${newPort}\n`);
    expect((await transfer(newPort, 256 * 1024)).bytes).toBe(256 * 1024);
    await expect(connect(lb.port, { timeoutMs: 2000 })).rejects.toThrow();
    // The connection accepted on the old port still carries data both ways.
    const big = 'x'.repeat(200_000) + '\n';
    await established.write(big);
    expect((await established.readExactly(big.length)).toString()).toBe(big);
    // A bad address changes nothing.
    expect(await penctl(lb.ctl, 'listen 127.0.0.1:notaport')).toMatch(/^error: listen: /);
    expect(await penctl(lb.ctl, 'listen')).toBe(`127.0.0.1:${newPort}\n`);
  });

  test('exit stops Fulcrum only with -X', async () => {
    const plain = await startLb('fulcrum', [], [h.echo().address]);
    expect(await penctl(plain.ctl, 'exit')).toBe('error: Exit is not enabled; restart with -X flag\n');
    // Commands that cannot apply here say why (and do not stop anything).
    for (const c of ['select', 'poll', 'kqueue', 'dsr_if eth0', 'tarpit_acl 1']) {
      expect(await penctl(plain.ctl, c)).toMatch(new RegExp(`^error: ${c.split(' ')[0]}: not supported: .+\n$`));
    }
    expect(await penctl(plain.ctl, 'pid')).toBe(`${plain.proc.pid}\n`);
    const withX = await startLb('fulcrum', ['-X'], [h.echo().address]);
    expect(await penctl(withX.ctl, 'exit')).toBe('');
    expect(await withX.proc.waitForExit(5000)).toBe(0);
  });

  test('control_acl: clients of the control port are checked against that ACL', async () => {
    const lb = await startLb('fulcrum', [], [h.echo().address]);
    expect(await penctl(lb.ctl, 'acl 2 deny 127.0.0.2')).toBe('');
    expect(await penctl(lb.ctl, 'control_acl 2')).toBe('2\n');
    const [host, port] = [lb.ctl.split(':')[0]!, Number(lb.ctl.split(':')[1])];
    const denied = await connect({ host, port }, { localAddress: '127.0.0.2' });
    await denied.write('servers\n').catch(() => undefined);
    expect((await denied.readAll()).toString()).toBe('error: not permitted by control_acl\n');
    expect(await penctl(lb.ctl, 'control_acl')).toBe('2\n'); // 127.0.0.1 is still permitted
    await denied.close();
  });

  test('a Unix socket control port; fulcrum ctl prints what penctl prints', async () => {
    const path = h.socketPath('ctl');
    const lb = await startLb('fulcrum', [], [h.echo().address], path);
    await openEcho(lb.port);
    for (const c of ['servers', 'mode', 'recent', 'control', 'blacklist 9']) {
      const viaPenctl = await penctl(path, c);
      const viaCtl = await fulcrumCtl(path, ...c.split(' '));
      expect(viaCtl).toEqual({ code: 0, stdout: viaPenctl, stderr: '' });
    }
    expect(await penctl(path, 'control')).toBe(`${path}\n`);
    const tcp = await fulcrumCtl(`127.0.0.1:${freePort()}`, 'servers');
    expect(tcp.code).toBe(1);
    expect(tcp.stderr).toContain('fulcrum ctl: 127.0.0.1:');
    const bad = await fulcrumCtl(path, 'bogus');
    expect(bad).toEqual({ code: 1, stdout: 'error: unknown command "bogus"\n', stderr: '' });
    expect((await fulcrumCtl(path)).code).toBe(2);
  });

  test.skipIf(!asRoot)("as root, a network control port without -u is refused (pen's rule); a Unix socket is not", async () => {
    const port = freePort();
    const proc = await spawnProcess([bunPath(), 'src/cli/main.ts', '-f', '-C', `127.0.0.1:${freePort()}`, `127.0.0.1:${port}`, h.echo().address], {
      cwd: repoRoot,
      readiness: false,
    });
    h.add(proc);
    expect(await proc.waitForExit(10_000)).not.toBe(0);
    expect(proc.stderr()).toContain('refusing to open the control port');
    expect(proc.stderr()).toContain('-u');
    const path = h.socketPath('root-ctl');
    const unix = await h.startFulcrum(['-C', path, `127.0.0.1:${freePort()}`, h.echo().address]);
    expect(await penctl(path, 'pid')).toBe(`${unix.pid}\n`);
  });

  test('junk on the control port gets an error reply, is counted, and the traffic keeps flowing', async () => {
    const lb = await startLb('fulcrum', [], [h.echo().address]);
    const established = await openEcho(lb.port);
    const [host, port] = [lb.ctl.split(':')[0]!, Number(lb.ctl.split(':')[1])];
    // A client that never sends a line: other control clients and the traffic go on meanwhile.
    const silent = await connect({ host, port });
    h.add(silent);
    expect(await penctl(lb.ctl, 'servers')).toMatch(/^0 addr 127\.0\.0\.1 port \d+ conn 1 /);
    // A TLS ClientHello where a command should be.
    const tls = await connect({ host, port });
    await tls.write(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    expect((await tls.readAll()).toString()).toBe('error: binary data is not a command\n');
    // A megabyte without a line end.
    const huge = await connect({ host, port });
    void huge.write('a'.repeat(1 << 20)).catch(() => undefined);
    expect((await huge.readAll()).toString()).toBe('error: command longer than 4096 bytes\n');
    // An unknown command, and what penctl cannot send: a line with pen's maximum length.
    expect(await penctl(lb.ctl, 'rm -rf /')).toBe('error: unknown command "rm"\n');
    await established.write('after the junk\n');
    expect((await established.readLine()).toString()).toBe('after the junk');
    expect((await transfer(lb.port, 128 * 1024)).bytes).toBe(128 * 1024);
    // SIGUSR1 reports the control port's counters.
    lb.proc.kill('SIGUSR1');
    await lb.proc.waitForLine(/control: \d+ connections, \d+ commands, 1 errors, 0 denied by control_acl, 0 refused \(busy\), 1 binary, 1 too long, 0 timed out/, 5000);
  });

  test('40 idle control connections do not lock the operator out: fulcrum ctl still gets its answer at once', async () => {
    const lb = await startLb('fulcrum', [], [h.echo().address]);
    const [host, port] = [lb.ctl.split(':')[0]!, Number(lb.ctl.split(':')[1])];
    // More silent connections than the 32 slots; before, every slot was held until the 10 s timeout.
    for (let i = 0; i < 40; i++) h.add(await connect({ host, port }));
    const r = await fulcrumCtl('-t', '5', lb.ctl, 'servers');
    expect(r.stdout).toMatch(/^0 addr 127\.0\.0\.1 port \d+ conn 0 /);
    expect(r.code).toBe(0);
    lb.proc.kill('SIGUSR1');
    await lb.proc.waitForLine(/control: \d+ connections, 1 commands, .* 0 refused \(busy\), .* idle given up for room/, 5000);
  });

  test('reload re-reads the YAML config as one transaction and answers what changed or why not', async () => {
    const a = h.identify('A');
    const b = h.identify('B');
    const port = freePort();
    const cport = freePort();
    const file = tempFile('fulcrum.yaml');
    const yaml = (weight: number, extra = ''): string =>
      `${asRoot ? 'global:\n  user: root\n' : ''}groups:\n  app:\n    algorithm: weight\n    servers:\n      - ${a.address}:0:0:1\n      - ${b.address}:0:0:${weight}\n${extra}listeners:\n  - listen: 127.0.0.1:${port}\n    group: app\n`;
    writeFileSync(file, yaml(1));
    await h.startFulcrum(['--config', file, '-C', `127.0.0.1:${cport}`], { port });
    const ctl = `127.0.0.1:${cport}`;
    expect(await penctl(ctl, 'reload')).toBe(`reloaded ${file} (no changes)\n`);
    writeFileSync(file, yaml(3));
    expect(await penctl(ctl, 'reload')).toBe(`reloaded ${file}\nserver ${b.address} weight 1 -> 3\n`);
    expect(await penctl(ctl, 'servers')).toContain(' weight 3 ');
    writeFileSync(file, yaml(5, '    wieght: 2\n'));
    const broken = await penctl(ctl, 'reload');
    expect(broken).toStartWith('error: reload failed, keeping the running configuration: ');
    expect(broken).toContain('wieght');
    expect(await penctl(ctl, 'servers')).not.toContain(' weight 5 ');
    expect(await penctl(ctl, 'control')).toBe(`${ctl}\n`); // the control port survives reloads
  });

  test('reload with -F re-runs the command file; include and write', async () => {
    const cfg = tempFile('pen.cfg');
    writeFileSync(cfg, 'blacklist 11\n');
    const lb = await startLb('fulcrum', ['-F', cfg], [h.echo().address, h.echo().address]);
    expect(await penctl(lb.ctl, 'blacklist')).toBe('11\n');
    writeFileSync(cfg, 'blacklist 12\n');
    expect(await penctl(lb.ctl, 'reload')).toBe(`re-read ${cfg}\n`);
    expect(await penctl(lb.ctl, 'blacklist')).toBe('12\n');
    const inc = tempFile('inc.cfg');
    writeFileSync(inc, 'server 1 weight 7\ntimeout 9\n');
    expect(await penctl(lb.ctl, `include ${inc}`)).toBe('');
    expect(await penctl(lb.ctl, 'timeout')).toBe('9\n');
    const out = tempFile('written.cfg');
    expect(await penctl(lb.ctl, `write ${out}`)).toBe('');
    const written = readFileSync(out, 'utf8');
    expect(written).toContain('blacklist 12\n');
    expect(written).toMatch(/\nserver 1 acl 0 address 127\.0\.0\.1 port \d+ max 0 hard 0 weight 7 prio 0\n/);
    expect(written).toContain('timeout 9\n');
  });

  test('debug N turns on debugging output, status writes the web_stats file', async () => {
    const web = tempFile('status.html');
    const lb = await startLb('fulcrum', ['-w', web], [h.echo().address]);
    expect(await penctl(lb.ctl, 'debug 2')).toBe('2\n');
    const status = await penctl(lb.ctl, 'status');
    await lb.proc.waitForLine(/control: 127\.0\.0\.1: status/, 5000);
    expect(status).toStartWith('<html>\n<head>\n<title>Pen status page</title>');
    expect(readFileSync(web, 'utf8')).toBe(status);
  });
});

// Reported as skipped only when it really is: with penctl installed this placeholder does not exist.
if (!havePenctl) test.skip('penctl is not installed: control port tests skipped (scripts/ensure-peers.sh installs pen as root)', () => {});
