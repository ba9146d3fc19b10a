/**
 * The start of a request body, read before any server sees the request (docs/http.md, "Request
 * bodies"): a body that ends within `limit` bytes and `windowMs` is forwarded whole with a
 * Content-Length, so a malformed one that arrives at once (a bad chunk size, chunk data longer
 * than its size: what a smuggling attempt sends) is answered 400 and never reaches a server, as
 * nginx's request buffering does; a longer or slower body is streamed, starting with what was
 * read, and a fault later in it aborts the server's request instead (it never sees a complete
 * one, and its connection is not reused).
 */
import type { Clock } from '../../core/clock.ts';

export type BodyStart =
  | { kind: 'whole'; bytes: Uint8Array }
  | { kind: 'stream'; body: ReadableStream<Uint8Array> }
  | { kind: 'failed'; error: unknown };

/** Bodies up to this size that arrive within WHOLE_BODY_WAIT_MS are read whole before they are sent. */
export const WHOLE_BODY_BYTES = 64 * 1024;
/** How long a body may take to arrive whole before it is streamed as it comes (an upload in progress). */
export const WHOLE_BODY_WAIT_MS = 100;

/** One read of the body: its bytes, or the end. */
type Read = { done: true; value?: Uint8Array } | { done: false; value: Uint8Array };

export async function readBodyStart(body: ReadableStream<Uint8Array>, clock: Clock, limit: number = WHOLE_BODY_BYTES, windowMs: number = WHOLE_BODY_WAIT_MS): Promise<BodyStart> {
  const reader = body.getReader() as unknown as { read(): Promise<Read>; cancel(reason?: unknown): Promise<void> };
  const chunks: Uint8Array[] = [];
  let n = 0;
  // A read still under way when the window closes is kept: the stream below starts with it.
  let pending: Promise<Read> | null = null;
  let timer = null as ReturnType<Clock['setTimeout']> | null;
  const expired = new Promise<'expired'>((resolve) => (timer = clock.setTimeout(resolve, windowMs, 'expired')));
  try {
    for (;;) {
      pending ??= reader.read();
      const r = await Promise.race([pending, expired]);
      if (r === 'expired') break;
      pending = null;
      if (r.done) return { kind: 'whole', bytes: join(chunks, n) };
      chunks.push(r.value);
      n += r.value.length;
      if (n > limit) break;
    }
  } catch (error) {
    return { kind: 'failed', error };
  } finally {
    clock.clearTimer(timer);
  }
  // Longer: what was read first, then the rest as the client sends it (pull-driven: backpressure).
  let i = 0;
  const rest = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (i < chunks.length) {
        c.enqueue(chunks[i]!);
        chunks[i++] = EMPTY; // let it go once handed on
        return;
      }
      const r = await (pending ?? reader.read());
      pending = null;
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { kind: 'stream', body: rest };
}

const EMPTY = new Uint8Array(0);

function join(chunks: Uint8Array[], n: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A body already read, as the one-chunk stream the exchange's pump takes. */
export function wholeBody(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(bytes);
      c.close();
    },
  });
}
