/**
 * pen's -H on one connection: the client's bytes pass through `rewrite` until its job is done.
 * Each request head gets `X-Forwarded-Proto` and `X-Forwarded-For` lines (those it lacks) before
 * its empty line, as pen writes them; the head is held until complete (at most HTTP_HEAD_MAX
 * bytes), the body is counted past without being looked at, and the next request of a
 * keep-alive connection is rewritten too. Anything that is not HTTP, a head over the bound, or a
 * body whose end we cannot tell by its length (chunked, an upgrade, CONNECT) ends the job: from
 * there on the side drops this object and its pump is untouched. Only -H listeners create one.
 */
import { forwardedLines, RequestHeadScanner, UNFRAMED } from '../protocol/http-head.ts';
import { concat } from './bytes.ts';

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

export class ForwardedFor {
  readonly #scanner = new RequestHeadScanner();
  readonly #clientAddress: string;
  readonly #proto: 'http' | 'https';
  /** The start of a head not yet complete. */
  #held: Uint8Array | null = null;
  /** Body bytes of the current request still to pass before the next head. */
  #skip = 0;
  /** Its job is over: the side stops calling it. */
  done = false;

  constructor(clientAddress: string, proto: 'http' | 'https') {
    this.#clientAddress = clientAddress;
    this.#proto = proto;
  }

  /** What to send to the server for this chunk (empty while a head is incomplete). */
  rewrite(chunk: Uint8Array): Uint8Array {
    let rest = chunk;
    let out: Uint8Array | null = null;
    for (;;) {
      if (this.#skip > 0) {
        // The common case of a body: the chunk passes as it is, not copied.
        if (rest.length <= this.#skip) {
          this.#skip -= rest.length;
          return out === null ? rest : concat(out, rest);
        }
        const body = rest.subarray(0, this.#skip);
        out = out === null ? body : concat(out, body);
        rest = rest.subarray(this.#skip);
        this.#skip = 0;
      }
      if (rest.length === 0) return out ?? EMPTY;
      const buf = this.#held === null ? rest : concat(this.#held, rest);
      this.#held = null;
      const scan = this.#scanner.scan(buf);
      if (scan.kind === 'need-more') {
        this.#held = buf;
        return out ?? EMPTY;
      }
      if (scan.kind === 'not-http') {
        this.done = true;
        return out === null ? buf : concat(out, buf);
      }
      const head = scan.head;
      const lines = forwardedLines(head, this.#clientAddress, this.#proto);
      let piece = buf.subarray(0, head.end);
      if (lines !== '') {
        const added = encoder.encode(lines);
        piece = new Uint8Array(head.end + added.length);
        piece.set(buf.subarray(0, head.insertAt), 0);
        piece.set(added, head.insertAt);
        piece.set(buf.subarray(head.insertAt, head.end), head.insertAt + added.length);
      }
      out = out === null ? piece : concat(out, piece);
      rest = buf.subarray(head.end);
      if (head.body === UNFRAMED) {
        this.done = true;
        return rest.length === 0 ? out : concat(out, rest);
      }
      this.#skip = head.body;
      this.#scanner.reset(0); // the next head starts at the front of what remains
    }
  }

  /** The client ended: whatever was held goes as it is, and the job is over. */
  flush(): Uint8Array | null {
    const held = this.#held;
    this.#held = null;
    this.done = true;
    return held;
  }
}
