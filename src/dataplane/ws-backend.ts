/**
 * A WebSocket connection from HTTP mode to a server (docs/http.md), for a client's WebSocket
 * that the front side terminated: the runtime's WebSocket client, given the forwarded headers
 * and the client's subprotocols. Its events go to a user object (the tunnel).
 */
import type { Address } from '../core/address.ts';
import type { WsMessage } from './http-front.ts';

export interface WsBackendUser {
  /** The handshake succeeded; `protocol`: the subprotocol the server chose ('' for none). */
  backendOpen(protocol: string): void;
  backendMessage(m: WsMessage): void;
  /** The connection closed (`opened`: after the handshake), with the server's code and reason. */
  backendClosed(code: number, reason: string, opened: boolean): void;
}

/** Bytes queued toward the server before the tunnel is closed (it does not read). */
export const WS_BACKEND_QUEUE_LIMIT = 16 * 1024 * 1024;

export class WsBackend {
  readonly #ws: WebSocket;
  #opened = false;
  #closed = false;

  constructor(address: Address, target: string, headers: Record<string, string>, protocols: string[], user: WsBackendUser) {
    if (address.kind !== 'tcp') throw new Error(`a WebSocket to the Unix socket ${address.path} is not supported`);
    const host = address.host.includes(':') ? `[${address.host}]` : address.host;
    // Bun's client takes request headers (not in the WHATWG constructor).
    const init = { headers, protocols } as unknown as string[];
    const ws = new WebSocket(`ws://${host}:${address.port}${target}`, init);
    ws.binaryType = 'nodebuffer';
    ws.onopen = () => {
      this.#opened = true;
      user.backendOpen(ws.protocol);
    };
    ws.onmessage = (e: MessageEvent<string | Uint8Array>) => user.backendMessage(e.data);
    ws.onclose = (e) => {
      if (this.#closed) return;
      this.#closed = true;
      user.backendClosed(e.code, e.reason, this.#opened);
    };
    this.#ws = ws;
  }

  /** Sends a message; false when the queue toward the server is over its limit. */
  send(m: WsMessage): boolean {
    this.#ws.send(m);
    return this.#ws.bufferedAmount <= WS_BACKEND_QUEUE_LIMIT;
  }

  /** Closes (code null: without one); no event follows. */
  close(code: number | null, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (code === null) this.#ws.close();
      else this.#ws.close(code, reason);
    } catch {
      // A code the client may not send (the browser rule: 1000, 3000-4999): close without it.
      this.#ws.close();
    }
  }
}
