/**
 * Backpressure and half-close with bytes in flight, in both directions (the pump is symmetric,
 * so every row runs once from the client and once from the server): a partial write keeps the
 * rest and pauses the reading side until the writer drains; a FIN is passed on only after the
 * bytes before it.
 */
import { describe, expect, test } from 'bun:test';
import { CLEAN, FakeSocket, play, Rig } from './fake-socket.ts';
import type { Side } from '../../../src/dataplane/session.ts';

/** Steps written from the reader's point of view: `r:` the reading side, `w:` the writing side. */
interface Row {
  name: string;
  /** Capacities the writing socket gets, one per step (undefined: unchanged). */
  steps: [step: string, writerCapacity?: number][];
  reader: string[];
  writer: string[];
  written: string;
}

const rows: Row[] = [
  {
    name: 'partial write: the reader is paused, the rest goes out on drain, then the reader resumes',
    steps: [['r:data:hello', 3], ['w:drain', Infinity]],
    reader: ['pause', 'resume'],
    writer: ['write:hel', 'write:lo'],
    written: 'hello',
  },
  {
    name: 'a partial flush on drain keeps the reader paused',
    steps: [['r:data:hello', 1], ['w:drain', 2], ['w:drain', Infinity]],
    reader: ['pause', 'resume'],
    writer: ['write:h', 'write:el', 'write:lo'],
    written: 'hello',
  },
  {
    name: 'bytes that arrive while paused queue behind the rest, in order',
    steps: [['r:data:abc', 0], ['r:data:def'], ['r:data:ghi'], ['w:drain', 4], ['w:drain', Infinity]],
    reader: ['pause', 'pause', 'pause', 'resume'],
    writer: ['write:abcd', 'write:efghi'],
    written: 'abcdefghi',
  },
  {
    name: 'a full write does not pause',
    steps: [['r:data:abc', 3], ['r:data:d', 1]],
    reader: [],
    writer: ['write:abc', 'write:d'],
    written: 'abcd',
  },
  {
    name: 'a FIN waits for the pending bytes, and the reader is not resumed after it',
    steps: [['r:data:abc', 1], ['r:fin'], ['w:drain', Infinity]],
    reader: ['pause'],
    writer: ['write:a', 'write:bc', 'shutdown'],
    written: 'abc',
  },
  {
    name: 'a FIN waits through several partial drains',
    steps: [['r:data:abcd', 0], ['r:fin'], ['w:drain', 1], ['w:drain', 1], ['w:drain', Infinity]],
    reader: ['pause'],
    writer: ['write:a', 'write:b', 'write:cd', 'shutdown'],
    written: 'abcd',
  },
  {
    name: 'a reset drops the pending bytes and is passed on',
    steps: [['r:data:abc', 0], ['r:reset']],
    reader: ['pause'],
    writer: ['terminate'],
    written: '',
  },
  {
    name: 'a writer that closed (write returns -1) does not pause the reader',
    steps: [['w:closed'], ['r:data:abc']],
    reader: [],
    writer: [],
    written: '',
  },
];

for (const direction of ['client to server', 'server to client'] as const) {
  describe(`backpressure, ${direction}`, () => {
    test.each(rows.map((r) => [r.name, r] as const))('%s', (_name, row) => {
      const rig = new Rig().connected();
      const fromClient = direction === 'client to server';
      const reader: FakeSocket<Side> = fromClient ? rig.client : rig.server;
      const writer: FakeSocket<Side> = fromClient ? rig.server : rig.client;
      reader.ops.length = 0;
      writer.ops.length = 0;
      for (const [step, capacity] of row.steps) {
        if (capacity !== undefined) writer.capacity = capacity;
        if (step === 'w:closed') {
          writer.closed = true;
          continue;
        }
        const [who, ...rest] = step.split(':');
        play(rig, [`${(who === 'r') === fromClient ? 'c' : 's'}:${rest.join(':')}`]);
      }
      expect({ reader: reader.ops, writer: writer.ops, written: writer.written }).toEqual({ reader: row.reader, writer: row.writer, written: row.written });
    });
  });
}

describe('half-close with bytes in flight both ways', () => {
  test('each FIN follows its own direction’s bytes; the connection ends when both are done', () => {
    const rig = new Rig().connected();
    rig.client.capacity = 0;
    rig.server.capacity = 0;
    play(rig, ['c:data:request', 'c:fin', 's:data:response', 's:fin']);
    expect([rig.client.closes, rig.server.closes]).toEqual([[], []]);
    rig.server.capacity = Infinity;
    play(rig, ['s:drain']);
    expect(rig.server.ops.slice(-2)).toEqual(['write:request', 'shutdown']);
    expect(rig.session.finished).toBe(false); // the response is still pending
    rig.client.capacity = Infinity;
    play(rig, ['c:drain']);
    expect(rig.client.ops.slice(-3)).toEqual(['write:response', 'shutdown', 'end']);
    expect(rig.server.ops.at(-1)).toBe('end');
    expect(rig.session.termination).toBe('client-closed');
    expect(rig.leftovers).toEqual(CLEAN);
  });

  test('a peer that closes cleanly still gets the bytes owed to it before its FIN', () => {
    const rig = new Rig().connected();
    rig.server.capacity = 0;
    play(rig, ['c:data:last words', 'c:close']);
    expect(rig.server.closes).toEqual([]);
    rig.server.capacity = Infinity;
    play(rig, ['s:drain']);
    expect(rig.server.ops.slice(-2)).toEqual(['write:last words', 'shutdown']);
    play(rig, ['s:fin']);
    expect(rig.session.finished).toBe(true);
    expect(rig.leftovers).toEqual(CLEAN);
  });

  test('byte counters follow each direction, and the server’s', () => {
    const rig = new Rig().connected();
    play(rig, ['c:data:12345', 's:data:123', 's:data:45678']);
    expect([rig.session.client.bytesRead, rig.session.serverSide.bytesRead]).toEqual([5, 8]);
    expect([rig.servers[0]!.bytesToServer, rig.servers[0]!.bytesFromServer]).toEqual([5, 8]);
  });
});
