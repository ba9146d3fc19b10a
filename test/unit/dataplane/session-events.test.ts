/**
 * A connected session on fake sockets: what each order of data, FIN, close, reset, drain and
 * idle timeout on either side does to the other side's socket, how the connection ends, and
 * that it always ends once and cleanly (no timer, no counted connection left).
 */
import { describe, expect, test } from 'bun:test';
import type { TerminationReason } from '../../../src/dataplane/session.ts';
import { CLEAN, play, Rig, type RigOptions } from './fake-socket.ts';

interface Row {
  name: string;
  options?: RigOptions;
  steps: string[];
  /** Ops on each socket caused by the steps (the connect's own ops are left out). */
  client: string[];
  server: string[];
  /** The termination reason, or null while the connection is still open. */
  reason: TerminationReason | null;
}

/** A connected session whose sockets' op logs start empty. */
function connected(options: RigOptions = {}): Rig {
  const rig = new Rig(options).connected();
  rig.client.ops.length = 0;
  rig.server.ops.length = 0;
  return rig;
}

const rows: Row[] = [
  { name: 'client data goes to the server', steps: ['c:data:GET /'], client: [], server: ['write:GET /'], reason: null },
  { name: 'server data goes to the client', steps: ['s:data:200 OK'], client: ['write:200 OK'], server: [], reason: null },
  {
    name: 'client FIN, then server FIN: each passed on, then both closed',
    steps: ['c:data:q', 'c:fin', 's:data:a', 's:fin'],
    client: ['write:a', 'shutdown', 'end'],
    server: ['write:q', 'shutdown', 'end'],
    reason: 'client-closed',
  },
  {
    name: 'server FIN, then client FIN',
    steps: ['s:data:a', 's:fin', 'c:data:q', 'c:fin'],
    client: ['write:a', 'shutdown', 'end'],
    server: ['write:q', 'shutdown', 'end'],
    reason: 'server-closed',
  },
  { name: 'half-closed client still receives', steps: ['c:fin', 's:data:late'], client: ['write:late'], server: ['shutdown'], reason: null },
  { name: 'half-closed server still receives', steps: ['s:fin', 'c:data:late'], client: ['shutdown'], server: ['write:late'], reason: null },
  {
    name: 'client closes without a FIN event (a clean close is a FIN); the server finishes its side',
    steps: ['c:close', 's:data:dropped', 's:fin'],
    client: [],
    server: ['shutdown', 'end'],
    reason: 'client-closed',
  },
  {
    name: 'server closes without a FIN event',
    steps: ['s:close', 'c:data:dropped', 'c:fin'],
    client: ['shutdown', 'end'],
    server: [],
    reason: 'server-closed',
  },
  { name: 'client and server both close', steps: ['c:close', 's:close'], client: [], server: ['shutdown'], reason: 'client-closed' },
  { name: 'client reset is passed on as a reset', steps: ['c:reset'], client: [], server: ['terminate'], reason: 'client-reset' },
  { name: 'server reset is passed on as a reset', steps: ['s:reset'], client: ['terminate'], server: [], reason: 'server-reset' },
  { name: 'a client socket error is a reset', steps: ['c:error'], client: [], server: ['terminate'], reason: 'client-reset' },
  { name: 'a server socket error is a reset', steps: ['s:error'], client: ['terminate'], server: [], reason: 'server-reset' },
  {
    name: 'reset after the client FIN: still passed on as a reset, the FIN named the end',
    steps: ['c:fin', 'c:reset'],
    client: [],
    server: ['shutdown', 'terminate'],
    reason: 'client-closed',
  },
  {
    name: 'an error after both directions ended is a clean close',
    steps: ['c:fin', 's:fin', 'c:reset', 's:reset'],
    client: ['shutdown', 'end'],
    server: ['shutdown', 'end'],
    reason: 'client-closed',
  },
  {
    name: 'events after the end change nothing',
    steps: ['s:reset', 'c:data:x', 'c:fin', 'c:drain', 'c:idle', 'c:close', 's:data:y', 's:close'],
    client: ['terminate'],
    server: [],
    reason: 'server-reset',
  },
  {
    name: 'a drain with nothing pending resumes the reader',
    steps: ['s:drain', 'c:drain'],
    client: ['resume'],
    server: ['resume'],
    reason: null,
  },
  {
    name: 'idle timer while the other direction was busy: re-armed for the rest',
    options: { idleTimeoutMs: 10_000 },
    steps: ['advance:4000', 's:data:x', 'advance:2000', 'c:idle'],
    client: ['write:x', 'timeout:8'],
    server: [],
    reason: null,
  },
  {
    name: 'idle timer after the idle time: both closed',
    options: { idleTimeoutMs: 10_000 },
    steps: ['advance:10000', 's:idle'],
    client: ['end'],
    server: ['end'],
    reason: 'idle-timeout',
  },
  { name: 'idle event without an idle timeout is ignored', steps: ['advance:100000', 'c:idle'], client: [], server: [], reason: null },
  { name: 'fast close both: a client FIN closes everything', options: { fastClose: 'both' }, steps: ['c:fin'], client: ['end'], server: ['end'], reason: 'client-closed' },
  { name: 'fast close both: a server FIN closes everything', options: { fastClose: 'both' }, steps: ['s:fin'], client: ['end'], server: ['end'], reason: 'server-closed' },
  { name: 'fast close down: a client FIN closes everything', options: { fastClose: 'down' }, steps: ['c:fin'], client: ['end'], server: ['end'], reason: 'client-closed' },
  { name: 'fast close down: a server FIN is a half-close', options: { fastClose: 'down' }, steps: ['s:fin'], client: ['shutdown'], server: [], reason: null },
  { name: 'fast close up: a server FIN closes everything', options: { fastClose: 'up' }, steps: ['s:fin'], client: ['end'], server: ['end'], reason: 'server-closed' },
  { name: 'fast close up: a client FIN is a half-close', options: { fastClose: 'up' }, steps: ['c:fin'], client: [], server: ['shutdown'], reason: null },
];

describe('session event orders (connected)', () => {
  test.each(rows.map((r) => [r.name, r] as const))('%s', (_name, row) => {
    const rig = connected(row.options);
    play(rig, row.steps);
    expect({ client: rig.client.ops, server: rig.server.ops, reason: rig.session.finished ? rig.session.termination : null }).toEqual({
      client: row.client,
      server: row.server,
      reason: row.reason,
    });
    if (row.reason !== null) expect(rig.leftovers).toEqual(CLEAN);
    else expect(rig.leftovers).toEqual({ timers: 0, pending: 0, connections: 1, endedCalls: 0 });
  });
});

/** Every interleaving of two sequences, order within each kept. */
function interleavings<T>(a: readonly T[], b: readonly T[]): T[][] {
  if (a.length === 0) return [[...b]];
  if (b.length === 0) return [[...a]];
  return [...interleavings(a.slice(1), b).map((r) => [a[0]!, ...r]), ...interleavings(a, b.slice(1)).map((r) => [b[0]!, ...r])];
}

describe('every interleaving of both sides sending, ending and closing', () => {
  const cases: [string, string[]][] = [];
  for (const cEnd of ['close', 'reset'])
    for (const sEnd of ['close', 'reset'])
      for (const order of interleavings(['c:data:ping', 'c:fin', `c:${cEnd}`], ['s:data:pong', 's:fin', `s:${sEnd}`])) cases.push([order.join(' '), order]);

  test.each(cases)('%s', (_name, steps) => {
    const rig = connected();
    // A simple model: bytes reach the other side unless the connection was reset first or the
    // receiver had already closed; a reset reaches the other side as a reset unless it is gone.
    let resetBy: string | null = null;
    const closed = { c: false, s: false };
    const expected = { c: '', s: '' };
    const ends = { c: false, s: false };
    for (const step of steps) {
      const [who, what, arg] = step.split(':') as ['c' | 's', string, string?];
      const other = who === 'c' ? 's' : 'c';
      if (resetBy !== null) continue;
      if (what === 'data' && !closed[other]) expected[other] += arg;
      if (what === 'fin') ends[who] = true;
      if (what === 'reset' && !(ends[who] && ends[other])) resetBy = who;
      if (what === 'close' || what === 'reset') closed[who] = true;
    }
    play(rig, steps);

    expect(rig.session.finished).toBe(true);
    expect(rig.leftovers).toEqual(CLEAN);
    expect([rig.client.written, rig.server.written]).toEqual([expected.c, expected.s]);
    const first = steps.find((s) => /:(fin|close|reset)$/.test(s))!;
    expect(rig.session.termination).toMatch(first.startsWith('c') ? /^client-/ : /^server-/);
    for (const sock of [rig.client, rig.server]) {
      // Closed at most once, and nothing written after a FIN or a close.
      expect(sock.ops.filter((o) => o === 'end' || o === 'terminate').length).toBeLessThanOrEqual(1);
      const firstClose = sock.ops.findIndex((o) => o === 'shutdown' || o === 'end' || o === 'terminate');
      if (firstClose >= 0) expect(sock.ops.slice(firstClose).some((o) => o.startsWith('write:'))).toBe(false);
    }
    if (resetBy !== null) {
      const peer = resetBy === 'c' ? rig.server : rig.client;
      const peerClosedFirst = steps.indexOf(`${resetBy === 'c' ? 's' : 'c'}:close`) >= 0 && steps.indexOf(`${resetBy === 'c' ? 's' : 'c'}:close`) < steps.indexOf(`${resetBy}:reset`);
      if (!peerClosedFirst) expect(peer.ops).toContain('terminate');
    }
  });
});
