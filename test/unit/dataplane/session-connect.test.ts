/**
 * The connect phase of a session on fake sockets and a manual clock: connect timeouts and
 * failures with failover, a client that leaves (or half-closes) while its server is being
 * connected, a connect that completes after the client left or after its timeout, and what is
 * sent before the client's bytes (PROXY header, bytes read by a gate).
 */
import { describe, expect, test } from 'bun:test';
import type { TerminationReason } from '../../../src/dataplane/session.ts';
import { CLEAN, play, Rig, type RigOptions } from './fake-socket.ts';

describe('connect timeout (manual clock)', () => {
  test('fires at the timeout, not before; the next server is tried and a late open of the first is closed', () => {
    const rig = new Rig({ servers: 2, connectTimeoutMs: 1000 }).begin();
    expect([rig.connectDeadlines.size, rig.clock.pending]).toEqual([1, 1]);
    rig.clock.advance(999);
    expect(rig.connects.length).toBe(1);
    rig.clock.advance(1);
    expect(rig.connects.length).toBe(2);
    const [s0, s1] = rig.attempted;
    expect(s0).not.toBe(s1);
    expect([s0!.connectTimeouts, s0!.pending, s1!.pending]).toEqual([1, 0, 1]);
    const stale = rig.connects[0]!.socket;
    stale.open(); // the first connect completes after its timeout
    expect(stale.ops).toEqual(['terminate']);
    expect(rig.session.connecting).toBe(true);
    rig.server.open();
    expect(rig.client.ops.at(-1)).toBe('resume');
    expect([rig.connectDeadlines.size, s1!.connections, rig.connectedCalls]).toEqual([0, 1, 1]);
    play(rig, ['c:data:x']);
    expect([stale.written, rig.server.written]).toEqual(['', 'x']);
    stale.close(); // its close is not the session's business
    expect(rig.session.finished).toBe(false);
  });

  test('every server times out: the client is closed with connect-timeout', () => {
    const rig = new Rig({ servers: 2, connectTimeoutMs: 1000 }).begin();
    rig.clock.advance(2000);
    expect(rig.session.finished).toBe(true);
    expect(rig.session.termination).toBe('connect-timeout');
    expect(rig.session.connectErrors).toEqual(['connect timeout', 'connect timeout']);
    expect(rig.session.failedServers).toEqual(rig.attempted);
    expect(new Set(rig.attempted).size).toBe(2);
    expect(rig.client.closes).toEqual(['shutdown']); // FIN, then it lingers (reading) for the client's own (linger.ts)
    expect(rig.leftovers).toEqual(CLEAN);
  });

  test('no connect timeout configured: no deadline and no timer', () => {
    const rig = new Rig({ connectTimeoutMs: 0 }).begin();
    expect([rig.connectDeadlines.size, rig.clock.pending]).toEqual([0, 0]);
  });

  test('the connect takes the session out of the deadlines: the timer fires for nobody and is not armed again', () => {
    const rig = new Rig({ connectTimeoutMs: 1000 }).connected();
    expect(rig.connectDeadlines.size).toBe(0);
    rig.clock.advance(5000);
    expect([rig.session.finished, rig.clock.pending]).toEqual([false, 0]);
  });
});

interface FailRow {
  name: string;
  options: RigOptions;
  /** How each connect attempt fails, in order. */
  failures: ('connect-error' | 'close' | 'reset')[];
  reason: TerminationReason;
  attempts: number;
}

const failRows: FailRow[] = [
  { name: 'refused by both: connect-failed', options: { servers: 2 }, failures: ['connect-error', 'connect-error'], reason: 'connect-failed', attempts: 2 },
  { name: 'closed while connecting counts as a failed connect', options: { servers: 2 }, failures: ['close', 'reset'], reason: 'connect-failed', attempts: 2 },
  { name: 'stubborn: no failover', options: { servers: 2, settings: { stubborn: true } }, failures: ['connect-error'], reason: 'stubborn', attempts: 1 },
  { name: 'retries 0: one attempt', options: { servers: 3, settings: { retries: 0 } }, failures: ['connect-error'], reason: 'connect-failed', attempts: 1 },
  { name: 'retries 1: two attempts', options: { servers: 3, settings: { retries: 1 } }, failures: ['connect-error', 'connect-error'], reason: 'connect-failed', attempts: 2 },
];

describe('failed connects', () => {
  test.each(failRows.map((r) => [r.name, r] as const))('%s', (_name, row) => {
    const rig = new Rig({ connectTimeoutMs: 1000, ...row.options }).begin();
    for (const how of row.failures) {
      expect(rig.session.finished).toBe(false);
      play(rig, [`s:${how}`]);
    }
    expect([rig.session.finished, rig.session.termination, rig.connects.length]).toEqual([true, row.reason, row.attempts]);
    expect(rig.servers.reduce((n, s) => n + s.connectFailures, 0)).toBe(row.attempts);
    expect(rig.client.closes).toEqual(['shutdown']); // FIN, then it lingers (reading) for the client's own (linger.ts)
    expect(rig.leftovers).toEqual(CLEAN);
  });

  test('a failed connect fails over to a server that works; the client sees nothing of it', () => {
    const rig = new Rig({ servers: 2 }).begin();
    play(rig, ['s:connect-error', 's:open', 'c:data:hi']);
    expect(rig.connects.map((c) => c.socket.written)).toEqual(['', 'hi']);
    expect(rig.session.connectErrors).toEqual(['connect ECONNREFUSED']);
    expect(rig.attempted.map((s) => s.connections)).toEqual([0, 1]);
    expect(rig.client.closes).toEqual([]);
  });

  test('no server at all: refused with no-server before any connect', () => {
    const rig = new Rig({ servers: 0 }).begin();
    expect([rig.session.termination, rig.connects.length, rig.client.closes]).toEqual(['no-server', 0, ['shutdown']]);
    expect(rig.leftovers).toEqual(CLEAN);
  });
});

describe('the client leaves while its server is being connected', () => {
  test('client reset: the session ends at once, the late server socket is closed, nothing is counted', () => {
    const rig = new Rig({ connectTimeoutMs: 1000 }).begin();
    play(rig, ['c:reset']);
    expect([rig.session.finished, rig.session.termination]).toEqual([true, 'client-reset']);
    expect(rig.leftovers).toEqual(CLEAN); // the reservation is returned and the timer cleared
    const late = rig.server;
    play(rig, ['s:open']);
    expect(late.ops).toEqual(['terminate']);
    play(rig, ['s:close', 'advance:5000']);
    expect([rig.connectedCalls, rig.servers[0]!.totalConnections]).toEqual([0, 0]);
    expect(rig.leftovers).toEqual(CLEAN);
  });

  test('client reset, then the connect fails: nothing more happens', () => {
    const rig = new Rig({ servers: 2 }).begin();
    play(rig, ['c:reset', 's:connect-error']);
    expect([rig.connects.length, rig.attempted[0]!.connectFailures]).toEqual([1, 0]);
    expect(rig.leftovers).toEqual(CLEAN);
  });

  test('client FIN: once connected, the server gets the FIN and the reply still reaches the client', () => {
    const rig = new Rig().begin();
    play(rig, ['c:fin', 's:open']);
    expect(rig.server.ops).toEqual(['shutdown']);
    expect(rig.client.ops).toEqual(['pause']); // not resumed: it has nothing more to send
    play(rig, ['s:data:bye', 's:fin']);
    expect(rig.client.ops).toEqual(['pause', 'write:bye', 'shutdown', 'end']);
    expect([rig.session.termination, rig.leftovers]).toEqual(['client-closed', CLEAN]);
  });

  test('client clean close: the server still gets the bytes owed and a FIN, then the session ends', () => {
    const rig = new Rig().begin();
    rig.session.preload(new TextEncoder().encode('hello'));
    play(rig, ['c:close']);
    expect(rig.session.finished).toBe(false);
    play(rig, ['s:open']);
    expect(rig.server.ops).toEqual(['write:hello', 'shutdown']);
    play(rig, ['s:data:dropped', 's:fin']);
    expect([rig.session.termination, rig.client.written, rig.leftovers]).toEqual(['client-closed', '', CLEAN]);
  });

  test('client clean close and the connect times out: ends cleanly, named by the client’s close', () => {
    const rig = new Rig({ connectTimeoutMs: 1000 }).begin();
    play(rig, ['c:close', 'advance:1000']);
    expect([rig.session.termination, rig.leftovers]).toEqual(['client-closed', CLEAN]);
  });
});

describe('what the server gets first', () => {
  test('bytes read before the session (a gate’s ClientHello) go before the client’s own', () => {
    const rig = new Rig().begin();
    rig.session.preload(new TextEncoder().encode('HELLO'));
    play(rig, ['s:open', 'c:data:+more']);
    expect(rig.server.written).toBe('HELLO+more');
    expect(rig.servers[0]!.bytesToServer).toBe(10);
  });

  test('the PROXY header goes before everything', () => {
    const rig = new Rig({ sendProxy: 'v1' }).begin();
    rig.session.preload(new TextEncoder().encode('HELLO'));
    play(rig, ['s:open']);
    expect(rig.server.written).toBe('PROXY TCP4 198.51.100.7 192.0.2.1 40000 8080\r\nHELLO');
  });

  test('at connect: no-delay and the idle timer on both sockets, then the client is resumed', () => {
    const rig = new Rig({ tcpNoDelay: true, idleTimeoutMs: 2500 }).connected();
    expect(rig.server.ops).toEqual(['nodelay', 'timeout:3']);
    expect(rig.client.ops).toEqual(['pause', 'nodelay', 'timeout:3', 'resume', 'resume']);
    expect([rig.connectedCalls, rig.servers[0]!.connections]).toEqual([1, 1]);
  });

  test('timestamps come from the injected clock', () => {
    const rig = new Rig({ connectTimeoutMs: 1000 });
    const start = rig.clock.now();
    rig.clock.advance(10);
    rig.begin();
    rig.clock.advance(25);
    play(rig, ['s:open']);
    rig.clock.advance(100);
    play(rig, ['c:reset']);
    const s = rig.session;
    expect([s.startMs, s.connectStartMs - start, s.connectedMs - s.connectStartMs, s.endMs - s.connectedMs]).toEqual([start, 10, 25, 100]);
  });
});
