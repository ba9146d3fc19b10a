/**
 * A client's WebSocket in HTTP mode (docs/http.md): the server is chosen like a request's (the
 * sticky cookie's, else the Selector), a WebSocket is opened to it with the forwarded headers and
 * the client's subprotocols, and only once that handshake succeeded is the client upgraded (with
 * the server's subprotocol), so a failure is still an HTTP answer: 502 when the server cannot be
 * reached or refuses the upgrade (tried once more on another server), 504 when it does not
 * complete it within the response timeout. Then messages are relayed both ways as they come, and
 * either side's close closes the other with the same code and reason. The selector slot is held
 * until both are closed.
 */
import type { TimerHandle } from '../../core/clock.ts';
import type { SelectionState } from '../../core/selector.ts';
import type { Server } from '../../core/servers/server.ts';
import type { HttpFront, WsClient, WsClientUser, WsMessage } from '../../dataplane/http-front.ts';
import { WsBackend, type WsBackendUser } from '../../dataplane/ws-backend.ts';
import { relayableCloseCode } from '../../protocol/http1-request.ts';
import type { ExchangeHost, HttpGroup } from './exchange.ts';

/** Request headers the WebSocket client to the server makes its own. */
const HANDSHAKE = new Set(['host', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'content-length', 'expect']);

/** Messages from the server kept until the client's side is open. */
const EARLY_LIMIT = 1024;

export class WsTunnel implements WsBackendUser, WsClientUser {
  status = 0;
  #backend: WsBackend | null = null;
  #client: WsClient | null = null;
  #early: WsMessage[] = [];
  #timer: TimerHandle | null = null;
  #resolve!: (r: Response | undefined) => void;
  #req: Request | null = null;
  #front: HttpFront | null = null;
  #retried = false;
  #connected = false;
  #done = false;
  readonly #headers: Record<string, string> = {};
  readonly #protocols: string[];

  constructor(
    readonly proxy: ExchangeHost,
    readonly group: HttpGroup,
    readonly st: SelectionState,
    readonly target: string,
    headers: [string, string][],
    protocols: string | null,
  ) {
    for (const [n, v] of headers) if (!HANDSHAKE.has(n)) this.#headers[n] = v;
    this.#protocols = protocols === null ? [] : protocols.split(',').map((p) => p.trim()).filter((p) => p !== '');
  }

  /** Opens the server side; the answer is undefined once the client was upgraded. */
  start(server: Server, timeoutMs: number, req: Request, front: HttpFront): Promise<Response | undefined> {
    this.#req = req;
    this.#front = front;
    const answer = new Promise<Response | undefined>((r) => (this.#resolve = r));
    this.#timer = this.proxy.clock.setTimeout(timedOut, timeoutMs, this);
    this.#open(server);
    return answer;
  }

  #open(server: Server): void {
    try {
      this.#backend = new WsBackend(server.address, this.target, this.#headers, this.#protocols, this);
    } catch (e) {
      this.#backend = null;
      this.#fail(502, `the server cannot take a WebSocket: ${(e as Error).message}`);
    }
  }

  // WsBackendUser
  backendOpen(protocol: string): void {
    if (this.#done) return;
    this.proxy.clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#connected = true;
    this.group.selector.connected(this.st);
    const ok = this.#front!.upgrade(this.#req!, this, protocol === '' ? {} : { 'sec-websocket-protocol': protocol });
    if (!ok) {
      this.#fail(400, 'the request cannot be upgraded to a WebSocket');
      return;
    }
    this.#req = null;
    this.#front = null;
    this.status = 101;
    this.#resolve(undefined);
  }

  backendMessage(m: WsMessage): void {
    if (this.#done) return;
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
        this.#open(next);
        return;
      }
      if (next !== null) sel.abandoned(this.st);
      this.st.server = null;
      this.#fail(502, 'the server could not be reached or refused the WebSocket');
      return;
    }
    const c = this.#client;
    this.#client = null;
    c?.close(relayableCloseCode(code), reason);
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
    if (!this.#backend.send(m)) this.#closeBoth(1008, 'the server does not read');
  }

  clientClosed(code: number, reason: string): void {
    this.#client = null;
    if (this.#done) return;
    const b = this.#backend;
    this.#backend = null;
    b?.close(relayableCloseCode(code), reason);
    this.#end();
  }

  onTimeout(): void {
    this.#timer = null;
    if (this.#done || this.#connected) return;
    const b = this.#backend;
    this.#backend = null;
    b?.close(null, '');
    this.#fail(504, 'the server did not complete the WebSocket handshake in time');
  }

  #closeBoth(code: number, reason: string): void {
    const b = this.#backend;
    const c = this.#client;
    this.#backend = null;
    this.#client = null;
    b?.close(code, reason);
    c?.close(code, reason);
    this.#end();
  }

  /** An HTTP answer instead of the upgrade. */
  #fail(status: number, text: string): void {
    this.status = status;
    if (this.#front !== null && this.#req !== null) this.proxy.answered(this.#front, this.#req);
    this.#resolve(this.proxy.errorResponse(status, text));
    this.#end();
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    this.proxy.clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#req = null;
    this.#front = null;
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
