/**
 * A plain listener reads its client from accept on (HAProxy does too): what the client sends
 * while its server connects is kept for the server, unpaused, up to EARLY_BYTES_MAX; a client
 * that must wait for a server slot (group queue) is paused. Saves the pause and resume of every
 * connection (four epoll_ctl and two setsockopt calls; docs/performance.md).
 */
import { describe, expect, test } from 'bun:test';
import { EARLY_BYTES_MAX } from '../../../src/dataplane/session.ts';
import { CLEAN, play, Rig } from './fake-socket.ts';

describe('early bytes (client not paused at accept)', () => {
  test('bytes sent while the server connects are kept, unpaused, and go out first on connect', () => {
    const rig = new Rig({ pausedAtAccept: false }).begin();
    play(rig, ['c:data:hel', 'c:data:lo']);
    expect(rig.client.ops).toEqual([]);
    expect(rig.session.buffered).toBe(5);
    play(rig, ['s:open']);
    expect(rig.server.written).toBe('hello');
    play(rig, ['c:data:!', 's:data:hi', 's:fin', 'c:fin']);
    expect([rig.server.written, rig.client.written]).toEqual(['hello!', 'hi']);
    expect(rig.client.ops.includes('pause')).toBe(false);
    expect([rig.session.termination, rig.leftovers]).toEqual(['server-closed', CLEAN]);
  });

  test('beyond EARLY_BYTES_MAX the client is paused, and resumed once connected and flushed', () => {
    const rig = new Rig({ pausedAtAccept: false }).begin();
    const big = 'x'.repeat(EARLY_BYTES_MAX - 1);
    play(rig, [`c:data:${big}`]);
    expect(rig.client.ops).toEqual([]);
    play(rig, ['c:data:yy']);
    expect(rig.client.ops).toEqual(['pause']);
    play(rig, ['s:open']);
    expect(rig.server.written.length).toBe(EARLY_BYTES_MAX + 1);
    expect(rig.client.ops.at(-1)).toBe('resume');
  });

  test('a FIN before the connect completes is passed on after the early bytes', () => {
    const rig = new Rig({ pausedAtAccept: false }).begin();
    play(rig, ['c:data:bye', 'c:fin', 's:open']);
    expect(rig.server.ops).toEqual(['write:bye', 'shutdown']);
  });

  test('a client that waits in its group queue is paused (it waits unread)', () => {
    const rig = new Rig({ pausedAtAccept: false, settings: {} });
    rig.servers[0]!.maxConnections = 1;
    rig.servers[0]!.connections = 1; // full
    Object.assign(rig, { enqueue: () => true }); // SessionOwner.enqueue: the group queue takes it
    rig.begin();
    expect([rig.connects.length, rig.session.finished, rig.client.ops]).toEqual([0, false, ['pause']]);
  });
});
