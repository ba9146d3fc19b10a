/**
 * The dashboard's live feed (server-sent events): one timer for all subscribers, which builds
 * one snapshot per tick, encodes it once and sends it to each; the timer runs only while
 * someone listens.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';

export class LiveFeed {
  readonly #subscribers = new Set<ReadableStreamDefaultController<Uint8Array>>();
  readonly #encoder = new TextEncoder();
  readonly #clock: Clock;
  readonly #intervalMs: number;
  /** The snapshot of this moment, as a JSON-serialisable value. */
  readonly #snapshot: () => unknown;
  #timer: TimerHandle | null = null;

  constructor(clock: Clock, intervalMs: number, snapshot: () => unknown) {
    this.#clock = clock;
    this.#intervalMs = intervalMs;
    this.#snapshot = snapshot;
  }

  /** A new subscriber's answer; `noTimeout` lifts the listener's idle timeout for it. */
  subscribe(req: Request, noTimeout: (req: Request) => void): Response {
    noTimeout(req); // a feed is quiet between ticks only briefly, but never time it out
    let self: ReadableStreamDefaultController<Uint8Array> | null = null;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        self = controller;
        this.#subscribers.add(controller);
        controller.enqueue(this.#encoder.encode(`retry: 2000\n\n${this.#frame()}`));
        this.#start();
      },
      cancel: () => {
        if (self !== null) this.#subscribers.delete(self);
        this.#stopIfIdle();
      },
    });
    req.signal.addEventListener('abort', () => {
      if (self !== null) this.#subscribers.delete(self);
      this.#stopIfIdle();
    });
    return new Response(stream, {
      headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' },
    });
  }

  /** Ends every subscription and the timer. */
  close(): void {
    this.#clock.clearTimer(this.#timer);
    this.#timer = null;
    for (const c of this.#subscribers) {
      try {
        c.close();
      } catch {
        // already closed by the client
      }
    }
    this.#subscribers.clear();
  }

  #frame(): string {
    return `event: snapshot\ndata: ${JSON.stringify(this.#snapshot())}\n\n`;
  }

  #start(): void {
    if (this.#timer !== null) return;
    this.#timer = this.#clock.setInterval(() => {
      if (this.#subscribers.size === 0) return this.#stopIfIdle();
      const bytes = this.#encoder.encode(this.#frame());
      for (const c of this.#subscribers) {
        try {
          c.enqueue(bytes);
        } catch {
          this.#subscribers.delete(c);
        }
      }
    }, this.#intervalMs);
  }

  #stopIfIdle(): void {
    if (this.#subscribers.size > 0 || this.#timer === null) return;
    this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }
}
