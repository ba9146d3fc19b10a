import { describe, expect, test } from 'bun:test';
import { BodyPump, type BodySink, type PumpUser } from '../../../src/app/http/body-pump.ts';

/** A sink that takes `room` writes and then reports backpressure until drained. */
class Sink implements BodySink {
  written: string[] = [];
  constructor(public room: number) {}
  write(bytes: Uint8Array): boolean {
    this.written.push(Buffer.from(bytes).toString('latin1'));
    return --this.room > 0;
  }
}

/** A client body whose chunks the test hands out, counting how many were asked for. */
function body(): { stream: ReadableStream<Uint8Array>; pulls: () => number; push: (s: string | null) => void; fail: (e: Error) => void; cancelled: () => boolean } {
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  let pulls = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>(
    { start: (c) => void (ctl = c), pull: () => void pulls++, cancel: () => void (cancelled = true) },
    { highWaterMark: 0 },
  );
  return {
    stream,
    pulls: () => pulls,
    push: (s) => (s === null ? ctl.close() : ctl.enqueue(new TextEncoder().encode(s))),
    fail: (e) => ctl.error(e),
    cancelled: () => cancelled,
  };
}

/** Lets the pump's promise chain run to its next wait. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

function user(): PumpUser & { sent: number; failed: unknown[] } {
  return { sent: 0, failed: [], bodySent() { this.sent++; }, bodyFailed(_p, e) { this.failed.push(e); } };
}

describe('the request body pump', () => {
  test('reads no further chunk while the sink waits for a drain (backpressure), then goes on', async () => {
    const b = body();
    const u = user();
    const sink = new Sink(1);
    const p = new BodyPump(b.stream, false, u);
    p.start(sink);
    await settle();
    b.push('one');
    await settle();
    expect(sink.written).toEqual(['one']);
    const asked = b.pulls();
    await settle();
    expect(b.pulls()).toBe(asked); // not reading the client while the server is full
    b.push('two'); // the client sent more: it stays queued in the stream
    await settle();
    expect(sink.written).toEqual(['one']);
    sink.room = 10;
    p.drained();
    await settle();
    expect(sink.written).toEqual(['one', 'two']);
    b.push(null);
    await settle();
    expect(u.sent).toBe(1);
  });

  test('frames chunks and ends with the last chunk when chunked', async () => {
    const b = body();
    const u = user();
    const sink = new Sink(10);
    new BodyPump(b.stream, true, u).start(sink);
    b.push('abc');
    b.push(null);
    await settle();
    expect(sink.written).toEqual(['3\r\nabc\r\n', '0\r\n\r\n']);
    expect(u.sent).toBe(1);
  });

  test('detached, it holds what it read for the next sink; cancelled, it drops the client body', async () => {
    const b = body();
    const u = user();
    const p = new BodyPump(b.stream, false, u);
    const first = new Sink(10);
    p.start(first);
    p.detach();
    b.push('held');
    await settle();
    expect(first.written).toEqual([]);
    expect(p.taken).toBe(false);
    const second = new Sink(10);
    p.start(second);
    await settle();
    expect(second.written).toEqual(['held']);
    expect(p.taken).toBe(true);
    p.cancel();
    await settle();
    expect(b.cancelled()).toBe(true);
    expect(u.sent + u.failed.length).toBe(0);
  });

  test('a client body that errors (the client went away, or over the limit) is reported, not sent', async () => {
    const b = body();
    const u = user();
    const p = new BodyPump(b.stream, false, u);
    p.start(new Sink(10));
    b.push('part');
    await settle();
    const e = new Error('Request body exceeded maxRequestBodySize');
    b.fail(e);
    await settle();
    expect(u.failed).toEqual([e]);
    expect(u.sent).toBe(0);
    expect(p.over).toBe(true);
  });
});
