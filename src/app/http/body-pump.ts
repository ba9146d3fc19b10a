/**
 * A request body streamed from the client to the server (docs/http.md): one chunk read from the
 * client's body at a time, framed (as is under a Content-Length, or chunked) and written; while
 * the server's socket has not drained, nothing more is read, so the runtime stops reading the
 * client (backpressure). The exchange hears when the body is all sent or could not be read (the
 * client went away, or its chunked body went over `max_body_size`).
 */
import { chunkFrame, LAST_CHUNK } from '../../protocol/http1-request.ts';

/** Where the body goes (a BackendConnection fits). */
export interface BodySink {
  /** False when the bytes wait for a drain (the pump waits for drained()). */
  write(bytes: Uint8Array): boolean;
}

/** Who hears how the body ended (the exchange). */
export interface PumpUser {
  bodySent(p: BodyPump): void;
  bodyFailed(p: BodyPump, e: unknown): void;
}

/** The part of a stream reader the pump uses. */
interface Reader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(): Promise<void>;
}

export class BodyPump {
  /** True once body bytes were written to a sink (the request can no longer be sent again). */
  taken = false;
  /** True once the pump stopped: sent, failed or cancelled. */
  over = false;
  /** Body bytes read from the client (before framing), for the access log. */
  bytes = 0;
  #reader: Reader | null = null;
  #sink: BodySink | null = null;
  #wake: (() => void) | null = null;

  constructor(
    readonly body: ReadableStream<Uint8Array>,
    readonly chunked: boolean,
    readonly user: PumpUser,
  ) {}

  /** Sends into `sink`: starts, or goes on into a new sink after detach() (a request sent again). */
  start(sink: BodySink): void {
    if (this.over) return;
    this.#sink = sink;
    if (this.#reader === null) {
      const reader: Reader = this.body.getReader();
      this.#reader = reader;
      void this.#run(reader);
    } else this.drained();
  }

  /** The sink failed before any byte went to it: hold what is read until the next start(). */
  detach(): void {
    this.#sink = null;
  }

  /** The sink drained: the next chunk may be read. */
  drained(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Stops reading and drops the rest (the request was aborted or answered early). */
  cancel(): void {
    if (this.over) return;
    this.over = true;
    this.drained();
    if (this.#reader !== null) this.#reader.cancel().catch(ignore);
    else this.body.cancel().catch(ignore);
  }

  async #run(reader: Reader): Promise<void> {
    try {
      for (;;) {
        const r = await reader.read();
        if (this.over) return;
        if (r.done || r.value === undefined) break;
        if (r.value.length === 0) continue;
        this.bytes += r.value.length;
        if (!(await this.#write(this.chunked ? chunkFrame(r.value) : r.value))) return;
      }
      if (this.chunked && !(await this.#write(LAST_CHUNK))) return;
      this.over = true;
      this.user.bodySent(this);
    } catch (e) {
      if (this.over) return;
      this.over = true;
      this.user.bodyFailed(this, e);
    }
  }

  /** Writes to the sink (waiting for one while detached, then for its drain); false once over. */
  async #write(bytes: Uint8Array): Promise<boolean> {
    while (this.#sink === null && !this.over) await this.#sleep();
    if (this.over) return false;
    this.taken = true;
    if (!this.#sink!.write(bytes)) await this.#sleep();
    return !this.over;
  }

  #sleep(): Promise<void> {
    return new Promise<void>((res) => (this.#wake = res));
  }
}

function ignore(): void {}
