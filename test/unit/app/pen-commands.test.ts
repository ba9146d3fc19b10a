/**
 * pen's command language as the control port answers it: reply texts checked against what the
 * real pen 0.34.1 prints (see docs/penctl.md). No sockets: the balancer is built, not started.
 */
import { expect, test } from 'bun:test';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Balancer, type Diagnostics } from '../../../src/app/balancer.ts';
import { CommandError, PenCommands, type CommandContext } from '../../../src/app/pen-commands.ts';
import { loadCodeFor } from '../../../src/app/on-demand.ts';
import { localTimestamp, penStatusHtml } from '../../../src/app/pen-reports.ts';
import { parsePenArgs } from '../../../src/config/pen-args.ts';

const quiet: Diagnostics = { info() {}, error() {}, debug() {} };

function make(args: string[] = []): { b: Balancer; c: PenCommands } {
  const parsed = parsePenArgs([...args, '127.0.0.1:8080', '127.0.0.1:9001', '127.0.0.1:9002:10:20']);
  const b = new Balancer(parsed.config, quiet);
  return { b, c: new PenCommands(b) };
}

async function fails(c: PenCommands, line: string, ctx: CommandContext = {}): Promise<string> {
  try {
    await c.execute(line, ctx);
  } catch (e) {
    expect(e).toBeInstanceOf(CommandError);
    return (e as Error).message;
  }
  throw new Error(`"${line}" did not fail`);
}

test("servers: pen's line format, without a status field", async () => {
  const { c } = make();
  expect(await c.execute('servers')).toBe(
    '0 addr 127.0.0.1 port 9001 conn 0 max 0 hard 0 weight 0 prio 0 sx 0 rx 0\n' +
      '1 addr 127.0.0.1 port 9002 conn 0 max 10 hard 20 weight 0 prio 0 sx 0 rx 0\n',
  );
  expect(await c.execute('server 1 weight 3 prio 2')).toBe('');
  expect(await c.execute('servers')).toContain('1 addr 127.0.0.1 port 9002 conn 0 max 10 hard 20 weight 3 prio 2 sx 0 rx 0\n');
});

test("mode: pen's order hash, roundrobin, stubborn, weight, prio", async () => {
  const { c } = make();
  expect(await c.execute('mode')).toBe('no hash no roundrobin no stubborn no weight no prio\n');
  for (const cmd of ['hash', 'roundrobin', 'stubborn', 'weight', 'prio']) expect(await c.execute(cmd)).toBe('');
  expect(await c.execute('mode')).toBe('hash roundrobin stubborn weight prio\n');
  for (const cmd of ['no hash', 'no roundrobin', 'no stubborn', 'no weight', 'no prio']) await c.execute(cmd);
  expect(await c.execute('mode')).toBe('no hash no roundrobin no stubborn no weight no prio\n');
});

test('getters answer their value, and the new value when given one (as pen)', async () => {
  const { c, b } = make();
  const cases: [string, string][] = [
    ['blacklist', '30\n'],
    ['blacklist 5', '5\n'],
    ['timeout', '3\n'],
    ['timeout 4', '4\n'],
    ['tracking', '0\n'],
    ['tracking 9', '9\n'],
    ['debug', '0\n'],
    ['debug 2', '2\n'],
    ['conn_max', '500\n'],
    ['conn_max 600', '600\n'],
    ['clients_max', '2048\n'],
    ['clients_max 4096', '4096\n'],
    ['client_acl', '0\n'],
    ['client_acl 3', '3\n'],
    ['control_acl', '0\n'],
    ['control_acl 4', '4\n'],
    ['idle_timeout', 'Idle timeout: 0 seconds\n'],
    ['idle_timeout 7', 'Idle timeout: 7 seconds\n'],
    ['web_stats', ''],
    ['web_stats /tmp/x.html', '/tmp/x.html\n'],
    ['no web_stats', ''],
    ['listen', '127.0.0.1:8080\n'],
    ['pid', `${process.pid}\n`],
    ['tcp_nodelay', ''],
    ['tcp_fastclose both', ''],
    ['acl 1 permit 127.0.0.1', ''],
    ['no acl 1', ''],
  ];
  for (const [line, reply] of cases) expect(`${line} -> ${await c.execute(line)}`).toBe(`${line} -> ${reply}`);
  expect(b.global.maxConnections).toBe(600);
  expect(b.defaultGroup.config.blacklistMs).toBe(5000);
  expect(b.global.idleTimeoutMs).toBe(7000);
  expect(b.global.tcpFastClose).toBe('both');
});

test('control answers the -C address as written; without -C it is an error', async () => {
  expect(await make(['-C', '10080']).c.execute('control')).toBe('10080\n');
  expect(await make(['-C', '/run/x.ctl']).c.execute('control')).toBe('/run/x.ctl\n');
  expect(await fails(make().c, 'control')).toContain('no control port');
});

test("connection N and close N of a connection that is not open: pen's unused-slot and out-of-range texts", async () => {
  const { c } = make();
  expect(await c.execute('connection 7')).toBe('Connection 7:\nstate = 0\ndownfd = -1, upfd = -1\nclient = 0, server = 0\npend = 0\n');
  expect(await c.execute('close 7')).toBe('Connection 7 out of range\n');
  expect(await fails(c, 'connection x')).toContain('not an integer');
  expect(await fails(c, 'close')).toContain('missing number');
});

test('recent lists nothing without clients; a bad number is an error, not pen\'s atoi', async () => {
  const { c } = make();
  expect(await c.execute('recent')).toBe('');
  expect(await c.execute('recent 10')).toBe('');
  expect(await fails(c, 'recent abc')).toContain('recent: expected a whole number of seconds');
});

test('exit needs -X and says so in pen\'s words; with it, the exit hook runs', async () => {
  const { c } = make();
  expect(await fails(c, 'exit')).toBe('Exit is not enabled; restart with -X flag');
  let exited = 0;
  expect(await c.execute('exit', { allowExit: true, exit: () => exited++ })).toBe('');
  expect(exited).toBe(1);
});

test('reload is a control-port command; its report comes from the hook', async () => {
  const { c } = make();
  expect(await fails(c, 'reload')).toContain('control port');
  expect(await c.execute('reload', { reload: async () => 're-read x\n' })).toBe('re-read x\n');
});

test('commands that cannot apply answer why', async () => {
  const { c } = make();
  for (const cmd of ['select', 'poll', 'kqueue', 'dsr_if eth0', 'tarpit_acl 1', 'socket 3']) {
    expect(await fails(c, cmd)).toContain('not supported');
  }
  expect(await fails(c, 'bogus')).toBe('unknown command "bogus"');
});

test('a bad setter changes nothing', async () => {
  const { c, b } = make();
  expect(await fails(c, 'client_acl 11')).toContain('outside 0-9');
  expect(await fails(c, 'server 1 weight 3 port 99999')).toContain('port');
  expect(b.defaultGroup.config.clientAcl).toBe(0);
  expect(b.defaultGroup.servers[1]!.weight).toBe(0);
});

test('every time a command sets follows the one duration rule, and a refused one changes nothing', async () => {
  // -E makes a TLS listener: its code loads first, as resolveConfig does (whatever ran before in this process).
  await loadCodeFor(parsePenArgs(['-E', '/nonexistent.pem', '127.0.0.1:8080', '127.0.0.1:9001']).config);
  const { c, b } = make(['-E', '/nonexistent.pem']);
  const g = b.defaultGroup;
  const before = [g.config.connectTimeoutMs, g.config.blacklistMs, g.config.trackingMs, b.global.idleTimeoutMs];
  // 3000000 s overflows the runtime's timer (it would fire at once): refused with the range.
  expect(await fails(c, 'timeout 3000000')).toBe('timeout: expected a duration from 1 to 2147483 s (about 24.8 days), got 3000000 s');
  expect(await fails(c, 'timeout 0')).toContain('timeout: expected a duration from 1 to');
  expect(await fails(c, 'blacklist 2147484')).toBe('blacklist: expected a duration up to 2147483 s (about 24.8 days), got 2147484 s');
  expect(await fails(c, 'tracking 99999999999999999999')).toContain('tracking: expected a duration up to 2147483 s');
  expect(await fails(c, 'idle_timeout 3000000')).toContain('idle_timeout: expected a duration up to 2147483 s');
  expect(await fails(c, 'idle_timeout -5')).toContain('idle_timeout: expected a whole number of seconds');
  expect(await fails(c, 'recent 3000000')).toContain('recent: expected a duration up to 2147483 s');
  expect(await fails(c, 'ssl_client_renegotiation_interval 3000000')).toContain('ssl_client_renegotiation_interval: expected a duration up to 2147483 s');
  expect(await fails(c, 'server 0 weight 3 blacklist 3000000')).toContain('server blacklist: expected a duration up to 2147483 s');
  expect([g.config.connectTimeoutMs, g.config.blacklistMs, g.config.trackingMs, b.global.idleTimeoutMs]).toEqual(before);
  expect(g.servers[0]!.weight).toBe(0);
  expect(g.servers[0]!.blacklistedUntilMs).toBe(0);
  // The longest accepted value is taken as given.
  expect(await c.execute('timeout 2147483')).toBe('2147483\n');
  expect(g.config.connectTimeoutMs).toBe(2_147_483_000);
});

test("status: pen's HTML status page, tag for tag", () => {
  const { b } = make(['-x', '77']);
  const now = new Date(2026, 0, 2, 3, 4, 5);
  const html = penStatusHtml(b, b.defaultGroup, now);
  expect(localTimestamp(now)).toBe('2026-01-02 03:04:05');
  expect(html.startsWith('<html>\n<head>\n<title>Pen status page</title>\n</head>\n<body bgcolor="#ffffff"><h1>Pen status page</h1>\nTime 2026-01-02 03:04:05, 2 servers, 0 current<p>\n<table bgcolor="#c0c0c0">\n<tr>\n<td bgcolor="#80f080">server</td>\n')).toBe(true);
  expect(html).toContain('<tr>\n<td>1</td>\n<td>127.0.0.1</td>\n<td>0</td>\n<td>9002</td>\n<td>0</td>\n<td>10</td>\n<td>20</td>\n<td>0</td>\n<td>0</td>\n<td>0</td>\n<td>0</td>\n</tr>\n');
  expect(html).toContain('<h2>Active clients</h2>Max number of clients: 2048<p><table bgcolor="#c0c0c0">\n');
  expect(html).toContain('<h2>Active connections</h2>Number of connections: 77 max, 0 used, 0 last<p><table bgcolor="#c0c0c0">\n');
  expect(html.endsWith('</table>\n</body>\n</html>\n')).toBe(true);
});

test("status: a blacklisted server's status is the time its blacklisting began, as in pen", async () => {
  const { b, c } = make(['-b', '30']);
  await c.execute('server 0 blacklist 10');
  const until = b.defaultGroup.servers[0]!.blacklistedUntilMs;
  expect(until).toBeGreaterThan(Date.now());
  const html = penStatusHtml(b, b.defaultGroup);
  expect(html).toContain(`<td>0</td>\n<td>127.0.0.1</td>\n<td>${Math.floor(until / 1000 - 30)}</td>\n`);
});

test("log: a file answers its path; pen's host:port network log and unopenable files are refused, keeping the old log", async () => {
  const { c, b } = make();
  const dir = `${tmpdir()}/fulcrum-log-${process.pid}`;
  mkdirSync(dir, { recursive: true });
  try {
    expect(await c.execute(`log ${dir}/a.log`)).toBe(`${dir}/a.log\n`);
    expect(await fails(c, 'log 10.0.0.1:514')).toContain('network log');
    expect(await fails(c, `log ${dir}/missing/b.log`)).toContain('cannot open');
    expect(await c.execute('log')).toBe(`${dir}/a.log\n`);
    expect(b.log?.path).toBe(`${dir}/a.log`);
    expect(await c.execute('no log')).toBe('');
    expect(await c.execute('log')).toBe('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
