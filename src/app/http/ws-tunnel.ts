/**
 * A client's WebSocket in HTTP mode (docs/http.md): the server is chosen like a request's (the
 * sticky cookie's, else the Selector), a WebSocket is opened to it with the forwarded headers and
 * the client's subprotocols, and only once that handshake succeeded is the client upgraded (with
 * the server's subprotocol), so a failure is still an HTTP answer: 502 when the server cannot be
 * reached or refuses the upgrade (tried once more on another server), 504 when it does not
 * complete it within the response timeout. Then messages are relayed both ways as they come, and
 * either side's close closes the other with the same code and reason. The selector slot is held
 * until both are closed. The tunnel is its own access log record (request-record.ts): one line
 * when it ends, with the messages' sizes each way.
 */
import type { TimerHandle } from '../../core/clock.ts';
import type { SelectionState } from '../../core/selector.ts';
import type { Server } from '../../core/servers/server.ts';
import type { WsClient, WsClientUser, WsMessage } from '../../dataplane/http-front.ts';
import { WsBackend, type WsBackendUser } from '../../dataplane/ws-backend.ts';
import { relayableCloseCode } from '../../protocol/http1-request.ts';
import type { ExchangeHost, HttpGroup } from './exchange.ts';
import { RequestRecord } from './request-record.ts';

/** Request headers the WebSocket client to the server makes its own. */
const HANDSHAKE = new Set(['host', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'content-length', 'expect']);

/** Messages from the server kept until the client's side is open. */
const EARLY_LIMIT = 1024;

export class WsTunnel extends RequestRecord implements WsBackendUser, WsClientUser {
  #backend: WsBackend | null = null;
  #client: WsClient | null = null;
  #early: WsMessage[] = [];
  #timer: TimerHandle | null = null;
  #resolve!: (r: Response | undefined) => void;
  #retried = false;
  #connected = false;
  #done = false;
  readonly #headers: Record<string, string> = {};
  readonly #protocols: string[];

  constructor(
    readonly proxy: ExchangeHost,
    group: HttpGroup,
    st: SelectionState,
    method: string,
    target: string,
    host: string | null,
    startMs: number,
    headers: [string, string][],
    protocols: string | null,
  ) {
    super(proxy.listener, group, st, method, target, host, startMs, true);
    for (const [n, v] of headers) if (!HANDSHAKE.has(n)) this.#headers[n] = v;
    this.#protocols = protocols === null ? [] : protocols.split(',').map((p) => p.trim()).filter((p) => p !== '');
  }

  /** Opens the server side; the answer is undefined once the client was upgraded. */
  start(server: Server, timeoutMs: number): Promise<Response | undefined> {
    const answer = new Promise<Response | undefined>((r) => (this.#resolve = r));
    this.#timer = this.proxy.clock.setTimeout(timedOut, timeoutMs, this);
    this.#open(server);
    return answer;
  }

  #open(server: Server): void {
    this.server = server;
    try {
      this.#backend = new WsBackend(server.address, this.target, this.#headers, this.#protocols, this);
    } catch (e) {
      this.#backend = null;
      this.#fail(502, 'handshake-failed', `the server cannot take a WebSocket: ${(e as Error).message}`);
    }
  }

  // WsBackendUser
  backendOpen(protocol: string): void {
    if (this.#done) return;
    const clock = this.proxy.clock;
    clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#connected = true;
    this.headMs = clock.now();
    this.group.selector.connected(this.st);
    const ok = this.front!.upgrade(this.req!, this, protocol === '' ? {} : { 'sec-websocket-protocol': protocol });
    if (!ok) {
      this.#fail(400, 'bad-request', 'the request cannot be upgraded to a WebSocket');
      return;
    }
    this.req = null;
    this.front = null;
    this.status = 101;
    this.#resolve(undefined);
  }

  backendMessage(m: WsMessage): void {
    if (this.#done) return;
    // A text message's size is counted in UTF-16 units (bytes for ASCII), a binary one in bytes.
    this.bytesToClient += m.length;
    if (this.#client === null) {
      // Before the client's open event (the runtime copies nothing: keep a copy).
      if (this.#early.length >= EARLY_LIMIT) return this.#closeBoth(1008, 'too many messages before the client was ready');
      this.#early.push(typeof m === 'string' ? m : m.slice());
      return;
    }
    if (!this.#client.send(m)) this.#closeBoth(1008, 'the client does not read');
  }

  backendClosed(code: number, reason: string, opened: boolean): void {
    this.#backend = null;
    if (this.#done) return;
    if (!opened) {
      // The handshake failed: refused, reset, or not a 101. Once more on another server.
      const sel = this.group.selector;
      const failed = this.st.server;
      if (failed !== null) this.proxy.event(`server ${failed.index} of group ${this.group.name}: WebSocket handshake failed (${code})`);
      const next = sel.connectFailed(this.st, false);
      if (next !== null && !this.#retried) {
        this.#retried = true;
        if (failed !== null) this.failedOnce(failed, `WebSocket handshake failed (${code})`, 'connect-failed');
        this.sticky = false;
        this.#open(next);
        return;
      }
      if (next !== null) sel.abandoned(this.st);
      this.st.server = null;
      this.#fail(502, 'handshake-failed', 'the server could not be reached or refused the WebSocket', `close code ${code}`);
      return;
    }
    const c = this.#client;
    this.#client = null;
    c?.close(relayableCloseCode(code), reason);
    this.end = 'server-closed';
    this.#end();
  }

  // WsClientUser
  clientOpen(ws: WsClient): void {
    if (this.#done) {
      ws.close(1001, 'the server went away');
      return;
    }
    this.#client = ws;
    const early = this.#early;
    this.#early = [];
    for (const m of early) ws.send(m);
  }

  clientMessage(m: WsMessage): void {
    if (this.#done || this.#backend === null) return;
    this.bytesFromClient += m.length;
    if (!this.#backend.send(m)) this.#closeBoth(1008, 'the server does not read');
  }

  clientClosed(code: number, reason: string): void {
    this.#client = null;
    if (this.#done) return;
    const b = this.#backend;
    this.#backend = null;
    b?.close(relayableCloseCode(code), reason);
    this.end = 'client-closed';
    this.#end();
  }

  onTimeout(): void {
    this.#timer = null;
    if (this.#done || this.#connected) return;
    const b = this.#backend;
    this.#backend = null;
    b?.close(null, '');
    this.#fail(504, 'response-timeout', 'the server did not complete the WebSocket handshake in time');
  }

  #closeBoth(code: number, reason: string): void {
    const b = this.#backend;
    const c = this.#client;
    this.#backend = null;
    this.#client = null;
    b?.close(code, reason);
    c?.close(code, reason);
    this.end = 'not-reading';
    this.detail = reason;
    this.#end();
  }

  /** An HTTP answer instead of the upgrade (`text` its body; `end` and `why` for the access log). */
  #fail(status: number, end: string, text: string, why: string | null = null): void {
    this.answered(status, end, why === null ? text : `${text}: ${why}`, this.proxy.clock.now());
    if (this.front !== null) this.proxy.answerDone(this);
    this.#resolve(this.proxy.errorResponse(status, text));
    this.#end();
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    this.proxy.clock.clearTimer(this.#timer);
    this.#timer = null;
    this.req = null;
    this.front = null;
    this.#early = [];
    const server = this.st.server;
    if (this.#connected) this.group.selector.released(this.st);
    else if (server !== null) this.group.selector.abandoned(this.st);
    this.proxy.finished(this);
  }
}

function timedOut(t: WsTunnel): void {
  t.onTimeout();
}
