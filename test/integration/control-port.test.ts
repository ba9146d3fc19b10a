/**
 * The control port's protocol over real loopback sockets, in process: one line per connection,
 * reply then close, and the bounds that keep a misbehaving client from holding anything up
 * (line length, time, number of connections). The e2e tests drive the same port with penctl.
 */
import { expect, test } from 'bun:test';
import { ControlPort, type ControlPortOptions, type ControlReply, type LineListen } from '../../src/control/control-port.ts';
import { listenLines } from '../../src/dataplane/control-socket.ts';
import { requestLine } from '../../src/dataplane/control-client-socket.ts';
import { systemClock } from '../../src/dataplane/system-clock.ts';
import { useHarness, waitFor, withTimeout, type Client } from '../harness/index.ts';

/** The line listener with the system clock, as app/control-service.ts wires it. */
const listenWithClock: LineListen = (address, service, limits) => listenLines(address, service, { ...limits, clock: systemClock });

const h = useHarness();

function start(opts: Partial<ControlPortOptions> & { run?: (line: string) => Promise<ControlReply> } = {}): { port: ControlPort; lines: string[]; logs: string[] } {
  const lines: string[] = [];
  const logs: string[] = [];
  const port = new ControlPort({
    address: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    permits: () => true,
    run: async (line) => {
      lines.push(line);
      return { reply: `you said ${line}\n` };
    },
    log: (_level, m) => logs.push(m),
    timeoutMs: 300,
    ...opts,
    listen: opts.listen ?? listenWithClock,
  });
  port.start();
  h.defer(() => port.stop());
  return { port, lines, logs };
}

const tcp = (p: ControlPort) => ({ kind: 'tcp' as const, host: '127.0.0.1', port: p.port });

test('one command per connection: the reply, then the server closes', async () => {
  const { port, lines } = start();
  const c = await h.connect(port.port);
  await c.write('servers\r\nmode\n');
  expect((await c.readAll()).toString()).toBe('you said servers\n');
  expect(c.closeKind).toBe('fin');
  expect(lines).toEqual(['servers']); // like pen, only the first line is a command
  expect(port.stats.commands).toBe(1);
});

test('EOF without a line end: what came is the command (printf cmd | nc -N)', async () => {
  const { port } = start();
  const c = await h.connect(port.port);
  await c.end('pid');
  expect((await c.readAll()).toString()).toBe('you said pid\n');
});

test('an empty connection is closed without a reply', async () => {
  const { port, lines } = start();
  const c = await h.connect(port.port);
  await c.end();
  expect((await c.readAll()).toString()).toBe('');
  expect(lines).toEqual([]);
});

test('a failing command answers an error line; the next command still runs', async () => {
  const { port } = start({
    run: async (line) => {
      if (line === 'bad') throw new Error('no such thing');
      return { reply: 'ok\n' };
    },
  });
  expect(await requestLine(tcp(port), 'bad', 2000)).toBe('error: no such thing\n');
  expect(await requestLine(tcp(port), 'good', 2000)).toBe('ok\n');
  expect(port.stats.errors).toBe(1);
});

test('commands run one at a time, in order of arrival', async () => {
  const order: string[] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const { port } = start({
    timeoutMs: 5000,
    run: async (line) => {
      order.push(`start ${line}`);
      if (line === 'slow') await gate;
      order.push(`end ${line}`);
      return { reply: `${line}\n` };
    },
  });
  const slow = requestLine(tcp(port), 'slow', 3000);
  await waitFor(() => order.length === 1, { what: 'the slow command to start' });
  const fast = requestLine(tcp(port), 'fast', 3000);
  await Bun.sleep(50);
  expect(order).toEqual(['start slow']);
  release();
  expect(await fast).toBe('fast\n');
  expect(await slow).toBe('slow\n');
  expect(order).toEqual(['start slow', 'end slow', 'start fast', 'end fast']);
});

test('binary garbage gets an error reply and is counted; nothing runs', async () => {
  const { port, lines } = start();
  const c = await h.connect(port.port);
  await c.write(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00]));
  expect((await c.readAll()).toString()).toBe('error: binary data is not a command\n');
  const d = await h.connect(port.port);
  await d.write(new Uint8Array([0x73, 0xff, 0xfe, 0x0a])); // not UTF-8
  expect((await d.readAll()).toString()).toBe('error: binary data is not a command\n');
  expect(lines).toEqual([]);
  expect(port.stats.binary).toBe(2);
});

test('a line longer than the bound gets an error reply with at most the bound buffered', async () => {
  const { port, lines } = start({ maxLineBytes: 100 });
  const c = await h.connect(port.port);
  void c.write('x'.repeat(100_000)).catch(() => undefined); // the server closes mid-write
  expect((await c.readAll()).toString()).toBe('error: command longer than 100 bytes\n');
  expect(await requestLine(tcp(port), 'x'.repeat(100), 2000)).toBe(`you said ${'x'.repeat(100)}\n`);
  expect(await requestLine(tcp(port), 'x'.repeat(101), 2000)).toBe('error: command longer than 100 bytes\n');
  expect(lines).toEqual(['x'.repeat(100)]);
  expect(port.stats.tooLong).toBe(2);
});

test('a client that never finishes its line is answered and closed after the timeout', async () => {
  const { port, lines } = start({ timeoutMs: 200 });
  const silent = await h.connect(port.port);
  const partial = await h.connect(port.port);
  await partial.write('serv');
  expect((await silent.readAll(3000)).toString()).toBe('error: no command within 0.2 s\n');
  expect((await partial.readAll(3000)).toString()).toBe('error: no command within 0.2 s\n');
  expect(lines).toEqual([]);
  expect(port.stats.timeouts).toBe(2);
  // The clients keep their sockets open after the reply: the server's wait for them is bounded too.
  await waitFor(() => port.openConnections === 0, { timeoutMs: 3000, what: 'the control connections to be dropped' });
});

test('a silent client does not hold up other control clients (pen would block in recv)', async () => {
  const { port } = start({ timeoutMs: 5000 });
  const silent = await h.connect(port.port);
  expect(await requestLine(tcp(port), 'servers', 2000)).toBe('you said servers\n');
  expect(silent.closeKind).toBeUndefined();
});

test('beyond maxConnections with every slot running a command, a new connection is refused with an error line', async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const { port } = start({ maxConnections: 2, timeoutMs: 5000, run: async (line) => (await gate, { reply: `done ${line}\n` }) });
  const first = requestLine(tcp(port), 'a', 5000);
  const second = requestLine(tcp(port), 'b', 5000);
  await waitFor(() => port.stats.commands === 2, { what: 'two running control commands' });
  expect(await requestLine(tcp(port), 'servers', 2000)).toBe('error: too many control connections, try again\n');
  expect(port.stats.busy).toBe(1);
  release();
  expect(await first).toBe('done a\n');
  expect(await second).toBe('done b\n');
});

test('idle connections on every slot do not lock the operator out: the silent one longest open is given up first', async () => {
  // The defaults (32 connections, 10 s for the line): the operator must not wait for any timer.
  const { port } = start({ timeoutMs: 10_000 });
  const partial = await h.connect(port.port);
  await partial.write('serv'); // a begun line: given up only after every silent connection
  const silent: Client[] = [];
  for (let i = 0; i < 40; i++) silent.push(await h.connect(port.port));
  await waitFor(() => port.stats.connections === 41, { what: '41 control connections accepted' });
  expect(port.openConnections).toBe(32);
  expect(await requestLine(tcp(port), 'servers', 2000)).toBe('you said servers\n');
  expect(port.stats.busy).toBe(0);
  expect(port.stats.evicted).toBe(10);
  // The oldest silent ones went first; the partial line and the newest silent ones are still open.
  await waitFor(() => silent[9]!.closeKind !== undefined, { what: 'the 10th silent connection to be given up' });
  expect(silent[10]!.closeKind).toBeUndefined();
  expect(silent[39]!.closeKind).toBeUndefined();
  expect(partial.closeKind).toBeUndefined();
});

test('a connection that sends nothing has a shorter timeout than one that has begun its line', async () => {
  const { port } = start({ timeoutMs: 5000, firstByteTimeoutMs: 200 });
  const silent = await h.connect(port.port);
  const partial = await h.connect(port.port);
  await partial.write('serv');
  expect((await silent.readAll(3000)).toString()).toBe('error: no command within 0.2 s\n');
  expect(partial.closeKind).toBeUndefined();
  await partial.end('ers\n');
  expect((await partial.readAll(3000)).toString()).toBe('you said servers\n');
});

test('control_acl: a client the check refuses gets an error and nothing runs', async () => {
  const { port, lines } = start({ permits: (ip) => ip.key !== '127.0.0.2' });
  const c = await h.connect(port.port, { localAddress: '127.0.0.2' });
  await c.write('servers\n').catch(() => undefined);
  expect((await c.readAll()).toString()).toBe('error: not permitted by control_acl\n');
  expect(await requestLine(tcp(port), 'servers', 2000)).toBe('you said servers\n');
  expect(lines).toEqual(['servers']);
  expect(port.stats.denied).toBe(1);
});

test('a client that stops reading a big reply is cut off after the timeout', async () => {
  const big = 'y'.repeat(64 * 1024 * 1024);
  const { port } = start({ timeoutMs: 300, run: async () => ({ reply: big }) });
  const c = await h.connect(port.port, { timeoutMs: 10_000 });
  c.pause();
  await c.write('status\n');
  await waitFor(() => port.openConnections === 0, { timeoutMs: 5000, what: 'the stalled control connection to be dropped' });
  expect(c.bytesReceived).toBeLessThan(big.length);
});

test('the after hook (exit) runs once the reply is out and the connection closed', async () => {
  let ran = 0;
  const { port } = start({ run: async () => ({ reply: '', after: () => ran++ }) });
  expect(await requestLine(tcp(port), 'exit', 2000)).toBe('');
  await waitFor(() => ran === 1, { what: 'the after hook' });
});

test('a Unix socket control port; a stale socket file is replaced, anything else is not', async () => {
  const path = h.socketPath('ctl');
  const first = new ControlPort({ address: { kind: 'unix', path }, listen: listenWithClock, permits: () => true, run: async () => ({ reply: 'one\n' }), log: () => {} });
  first.start();
  expect(await requestLine({ kind: 'unix', path }, 'pid', 2000)).toBe('one\n');
  // A crashed process leaves its socket file behind: simulate by binding over it.
  const second = new ControlPort({ address: { kind: 'unix', path }, listen: listenWithClock, permits: () => true, run: async () => ({ reply: 'two\n' }), log: () => {} });
  second.start();
  h.defer(() => second.stop());
  expect(await withTimeout(requestLine({ kind: 'unix', path }, 'pid', 2000), 3000, 'reply')).toBe('two\n');
  await Bun.write(path + '.txt', 'not a socket');
  const third = new ControlPort({ address: { kind: 'unix', path: path + '.txt' }, listen: listenWithClock, permits: () => true, run: async () => ({ reply: '' }), log: () => {} });
  expect(() => third.start()).toThrow('is not a socket');
  first.stop();
});
