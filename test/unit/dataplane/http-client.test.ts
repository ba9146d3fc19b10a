/**
 * HTTP mode's client connection (src/dataplane/http-client.ts) on a fake socket with a manual
 * clock: pipelined requests answered one at a time and in order whatever way the bytes are split
 * and whether the answer comes at once or later; held bytes pause the socket past 64 KiB and
 * resume it; the head and body timers (a silent close, 408); a tunnel gets the bytes held before
 * its 101.
 */
import { describe, expect, test } from 'bun:test';
import { DeadlineList } from '../../../src/core/deadline-list.ts';
import { clientDeadline, HttpClient, type ClientFailure, type ClientRequestUser, type HttpClientHandler } from '../../../src/dataplane/http-client.ts';
import type { StreamSocket } from '../../../src/dataplane/socket.ts';
import type { RequestHead } from '../../../src/protocol/http1-request-parser.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

class Sock implements StreamSocket<unknown> {
  data: unknown = null;
  written = '';
  ops: string[] = [];
  ended = false;
  write(b: Uint8Array): number {
    this.written += dec.decode(b);
    return b.length;
  }
  shutdown(): void {}
  end(): void {
    this.ops.push('end');
    this.ended = true;
  }
  terminate(): void {}
  pause(): void {
    this.ops.push('pause');
  }
  resume(): void {
    this.ops.push('resume');
  }
  setNoDelay(): boolean {
    return true;
  }
  timeout(): void {}
  readonly remoteAddress = '198.51.100.7';
  readonly remotePort = 40000;
  readonly localAddress = '192.0.2.1';
  readonly localPort = 8080;
}

/** A request as its user saw it. */
class Req implements ClientRequestUser {
  body = '';
  ended = false;
  failed: ClientFailure | null = null;
  tunnel = '';
  constructor(
    readonly c: HttpClient,
    readonly head: RequestHead,
  ) {}
  clientBody(chunk: Uint8Array): void {
    this.body += dec.decode(chunk);
  }
  clientBodyEnd(): void {
    this.ended = true;
    this.onEnd?.(this);
  }
  clientFailed(why: ClientFailure): void {
    this.failed = why;
  }
  clientDrained(): void {}
  tunnelData(chunk: Uint8Array): void {
    this.tunnel += dec.decode(chunk);
  }
  onEnd: ((r: Req) => void) | null = null;
  /** Answers with the request's target and body, keeping the connection if it may be kept. */
  answer(): void {
    this.c.write(enc.encode(`<${this.head.method} ${this.head.target} ${this.body}>`));
    this.c.answerDone(true);
  }
}

function rig(answerAtOnce: boolean) {
  const clock = new ManualClock();
  const requests: Req[] = [];
  const refused: number[] = [];
  let closed = 0;
  const handler: HttpClientHandler = {
    request(c, head) {
      const r = new Req(c, head);
      if (answerAtOnce) r.onEnd = (x) => x.answer();
      requests.push(r);
      return r;
    },
    refuse(c, status) {
      refused.push(status);
      c.write(enc.encode(`<${status}>`));
      c.closeAfterFlush();
    },
    closed() {
      closed++;
    },
  };
  const timers = { clock, header: new DeadlineList<HttpClient>(clock, clientDeadline), headerMs: 2000, idle: new DeadlineList<HttpClient>(clock, clientDeadline), idleMs: 5000 };
  const sock = new Sock();
  const c = new HttpClient(sock, handler, timers, { maxHeadBytes: 4096, maxBodyBytes: 1 << 20 }, '198.51.100.7', 40000);
  return { clock, requests, refused, sock, c, closed: () => closed };
}

const PIPELINE = 'GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloPOST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /d HTTP/1.1\r\nHost: h\r\n\r\n';
const ANSWERS = '<GET /a ><POST /b hello><POST /c abc><GET /d >';

describe('HTTP client connection', () => {
  for (const atOnce of [true, false]) {
    test(`pipelined requests are answered one at a time, in order, however the bytes are split (answers ${atOnce ? 'at once' : 'later'})`, () => {
      const splits: number[][] = [[PIPELINE.length]];
      for (let i = 1; i < PIPELINE.length; i++) splits.push([i, PIPELINE.length]);
      splits.push(Array.from({ length: PIPELINE.length }, (_, i) => i + 1));
      for (const cuts of splits) {
        const { requests, sock, c } = rig(atOnce);
        let from = 0;
        for (const to of cuts) {
          c.onData(enc.encode(PIPELINE.slice(from, to)));
          from = to;
          // A later answer: whatever request is complete gets answered between reads.
          if (!atOnce) for (const r of requests) if (r.ended && !sock.written.includes(`${r.head.target} `)) r.answer();
        }
        if (!atOnce) for (let k = 0; k < 4; k++) for (const r of requests) if (r.ended && !sock.written.includes(`${r.head.target} `)) r.answer();
        expect(sock.written).toBe(ANSWERS);
        // One request at a time: each began only after the previous one was answered.
        expect(requests.map((r) => r.head.target)).toEqual(['/a', '/b', '/c', '/d']);
        expect(sock.ended).toBe(false);
      }
    });
  }

  test('bytes held behind an unanswered request pause the socket past 64 KiB, and reading resumes once it is answered', () => {
    const { requests, sock, c } = rig(false);
    c.onData(enc.encode('GET /a HTTP/1.1\r\nHost: h\r\n\r\n'));
    const next = `POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 70000\r\n\r\n${'z'.repeat(70_000)}`;
    c.onData(enc.encode(next.slice(0, 40_000)));
    expect(sock.ops).toEqual([]);
    c.onData(enc.encode(next.slice(40_000)));
    expect(sock.ops).toEqual(['pause']);
    requests[0]!.answer();
    expect(sock.ops).toEqual(['pause', 'resume']);
    expect(requests[1]!.body.length).toBe(70_000);
    // The same when one read alone goes past the bound.
    const one = rig(false);
    one.c.onData(enc.encode('GET /a HTTP/1.1\r\nHost: h\r\n\r\n'));
    one.c.onData(enc.encode(next));
    expect(one.sock.ops).toEqual(['pause']);
    one.requests[0]!.answer();
    expect(one.sock.ops).toEqual(['pause', 'resume']);
  });

  test('header_timeout: a connection that sent nothing is closed silently; part of a head gets 408; bytes do not extend it', () => {
    const a = rig(true);
    a.clock.advance(1999);
    expect(a.sock.ended).toBe(false);
    a.clock.advance(1);
    expect(a.sock.ended).toBe(true);
    expect(a.refused).toEqual([]);

    const b = rig(true);
    for (let i = 0; i < 19; i++) {
      b.c.onData(enc.encode('G'.slice(0, 1)));
      b.clock.advance(100);
    }
    expect(b.refused).toEqual([]);
    b.clock.advance(100);
    expect(b.refused).toEqual([408]);
    expect(b.sock.written).toBe('<408>');
    expect(b.sock.ended).toBe(true);
  });

  test('after an answer the next head has header_timeout from its end; a body that stalls fails its request after the idle timeout', () => {
    const { clock, requests, sock, c } = rig(true);
    clock.advance(1500);
    c.onData(enc.encode('GET /a HTTP/1.1\r\nHost: h\r\n\r\n'));
    clock.advance(1500); // 3 s after the connect, 1.5 s after the answer: still open
    expect(sock.ended).toBe(false);
    c.onData(enc.encode('POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234'));
    clock.advance(4000);
    c.onData(enc.encode('5')); // a read within the idle timeout moves its deadline
    clock.advance(4000);
    expect(requests[1]!.failed).toBeNull();
    clock.advance(1000);
    expect(requests[1]!.failed).toBe('timeout');
  });

  test('a tunnel gets the bytes that came after its request before the switch, then every read as it comes', () => {
    const { requests, c } = rig(false);
    c.onData(enc.encode('GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nearly'));
    const r = requests[0]!;
    expect(r.head.upgrade).toBe('x');
    c.onData(enc.encode(' more'));
    c.startTunnel(r);
    c.onData(enc.encode(' later\r\n\r\nGET / HTTP/1.1'));
    expect(r.tunnel).toBe('early more later\r\n\r\nGET / HTTP/1.1');
    expect(requests.length).toBe(1);
  });

  test('a malformed request after a good one is refused once the good one is answered; a client that asks to close is closed after its answer', () => {
    const { refused, sock, c } = rig(true);
    c.onData(enc.encode('GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n'));
    expect(sock.written).toBe('<GET /a ><400>');
    expect(refused).toEqual([400]);
    expect(sock.ended).toBe(true);

    const d = rig(true);
    d.c.onData(enc.encode('GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n'));
    expect(d.sock.written).toBe('<GET /a >');
    expect(d.sock.ended).toBe(true);
    expect(d.requests.length).toBe(1);
  });
});
