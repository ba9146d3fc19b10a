/**
 * HTTP/1.1 check: sends one request with `Connection: close`, then judges the status line as soon
 * as it arrives and, when a body pattern is set, the body once it is complete (Content-Length
 * reached, or the server closed).
 */
import { statusMatches, type HttpCheckSpec } from './check-spec.ts';
import { excerpt, fail, latin1, MAX_CHECK_READ, pass, type Conversation, type Step, type Verdict } from './conversation.ts';

export function buildHttpRequest(spec: HttpCheckSpec, host: string): Uint8Array {
  const text = `${spec.method} ${spec.path} HTTP/1.1\r\nHost: ${spec.host ?? host}\r\nUser-Agent: fulcrum-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n`;
  return new TextEncoder().encode(text);
}

export class HttpConversation implements Conversation {
  readonly #spec: HttpCheckSpec;
  readonly #request: Uint8Array;
  #text = '';
  #status = 0;
  #bodyStart = -1;
  #contentLength = -1;
  readonly #bodyRe: RegExp | null;

  constructor(spec: HttpCheckSpec, host: string) {
    this.#spec = spec;
    this.#request = buildHttpRequest(spec, host);
    this.#bodyRe = spec.expectBody === null ? null : new RegExp(spec.expectBody);
  }

  connected(): Step {
    return { send: this.#request };
  }

  data(chunk: Uint8Array): Step {
    this.#text += latin1(chunk);
    if (this.#status === 0) {
      const eol = this.#text.indexOf('\r\n');
      if (eol < 0) return this.#text.length > 8192 ? fail(`no HTTP status line in ${excerpt(this.#text)}`) : null;
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(this.#text);
      if (m === null) return fail(`not an HTTP response: ${excerpt(this.#text.slice(0, eol))}`);
      this.#status = Number(m[1]);
      if (!statusMatches(this.#spec.expectStatus, this.#status)) return fail(`HTTP status ${this.#status}`);
      if (this.#bodyRe === null) return pass(`HTTP status ${this.#status}`);
    }
    if (this.#bodyStart < 0) {
      const end = this.#text.indexOf('\r\n\r\n');
      if (end < 0) return null;
      this.#bodyStart = end + 4;
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(this.#text.slice(0, end));
      if (cl !== null) this.#contentLength = Number(cl[1]);
    }
    if (this.#contentLength >= 0 && this.#text.length - this.#bodyStart >= this.#contentLength) return this.#judgeBody();
    if (this.#text.length > MAX_CHECK_READ) return this.#judgeBody();
    return null;
  }

  #judgeBody(): Verdict {
    const body = this.#text.slice(this.#bodyStart, this.#contentLength >= 0 ? this.#bodyStart + this.#contentLength : undefined);
    if (this.#bodyRe!.test(body)) return pass(`HTTP status ${this.#status}, body matches /${this.#spec.expectBody}/`);
    return fail(`HTTP status ${this.#status}, body ${excerpt(body)} does not match /${this.#spec.expectBody}/`);
  }

  ended(): Verdict {
    if (this.#status === 0) return fail(this.#text === '' ? 'connection closed without a response' : `connection closed in the status line ${excerpt(this.#text)}`);
    if (this.#bodyStart < 0) return fail(`HTTP status ${this.#status}, connection closed in the headers`);
    return this.#judgeBody();
  }
}
