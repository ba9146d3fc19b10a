/**
 * One socket of a proxied connection (client or server) and the symmetric pump between the two:
 * what this socket reads goes to its peer's socket; backpressure, early bytes, half-close,
 * resets and idle timeouts as session.ts describes. A side knows its session only through
 * `SideSession` (session.ts implements it), so that this file does not import the session.
 *
 * The client's side is the Session object itself (Session extends Side, one object fewer per
 * connection); each connect attempt gets a server Side of its own, so that a stale attempt's
 * events are recognised by the Side they arrive on.
 */
import type { Server } from '../core/servers/server.ts';
import type { TerminationReason } from '../core/termination.ts';
import type { StreamSocket } from './socket.ts';
import { concat } from './bytes.ts';
import type { ForwardedFor } from './forwarded-for.ts';

/** What a side, and the adapter that delivers its socket's events, need of its session. */
export interface SideSession {
  readonly owner: {
    readonly fastClose: 'off' | 'up' | 'down' | 'both';
    readonly idleTimeoutMs: number;
    coarseNow(): number;
    dumpChunk(session: SideSession, fromClient: boolean, chunk: Uint8Array): void;
  };
  /** The chosen server, or null before one is chosen. */
  readonly server: Server | null;
  /** The current server side (replaced on each connect attempt). */
  readonly serverSide: Side;
  readonly connecting: boolean;
  /** pen's -dd: dump every chunk. */
  readonly dump: boolean;
  lastActivityMs: number;
  serverConnected(side: Side, socket: StreamSocket<Side>): void;
  serverConnectFailed(side: Side, error: Error | undefined, ours?: boolean): void;
  serverEnded(): void;
  noteEnd(reason: TerminationReason): void;
  maybeFinished(): void;
  close(reason: TerminationReason, abort: boolean): void;
}

/** Bytes a client may send while its server connects before it is paused (a connect is short). */
export const EARLY_BYTES_MAX = 64 * 1024;

export class Side {
  socket: StreamSocket<Side> | null = null;
  peer!: Side;
  readonly session: SideSession;
  readonly isClient: boolean;
  /** Bytes read from the peer, not yet accepted by this socket. */
  pending: Uint8Array | null = null;
  /** FIN received from this socket. */
  eof = false;
  /** FIN sent to this socket. */
  shut = false;
  /** This socket has closed. */
  gone = false;
  bytesRead = 0;
  /** pen's -H on a client side until its job is done (forwarded-for.ts); null otherwise, the only cost then. */
  forwardedFor: ForwardedFor | null = null;

  /** `session` null: this side is the session itself (the client side, see Session). */
  constructor(session: SideSession | null, isClient: boolean) {
    this.session = session ?? (this as unknown as SideSession);
    this.isClient = isClient;
  }

  /** Data read from this socket: forward it to the peer. */
  onData(chunk: Uint8Array): void {
    const n = chunk.length;
    this.bytesRead += n;
    this.session.lastActivityMs = this.session.owner.coarseNow();
    if (this.session.dump) this.session.owner.dumpChunk(this.session, this.isClient, chunk);
    const server = this.session.server;
    if (server !== null) {
      if (this.isClient) server.bytesToServer += n;
      else server.bytesFromServer += n;
    }
    const peer = this.peer;
    let out = chunk;
    const xff = this.forwardedFor;
    if (xff !== null) {
      out = xff.rewrite(chunk);
      if (xff.done) this.forwardedFor = null;
      if (out.length === 0) return; // a request head still incomplete: held, bounded by HTTP_HEAD_MAX
    }
    // While the peer connects, its first bytes wait in `pending` unpaused, up to EARLY_BYTES_MAX.
    if (!peer.send(out) && (peer.socket !== null || (peer.pending?.length ?? 0) >= EARLY_BYTES_MAX)) this.socket?.pause();
  }

  /** Writes to this socket; false when some of it had to be kept for later (backpressure). */
  send(chunk: Uint8Array): boolean {
    if (this.gone) return true; // nobody left to deliver to; the close path tears down
    if (this.pending !== null || this.socket === null) {
      this.pending = this.pending === null ? chunk : concat(this.pending, chunk);
      return false;
    }
    const written = this.socket.write(chunk);
    if (written === chunk.length || written < 0) return true;
    this.pending = chunk.subarray(written);
    return false;
  }

  /** This socket can take more: flush what is pending, then let the peer read again. */
  onDrain(): void {
    const pending = this.pending;
    if (pending !== null && this.socket !== null) {
      const written = this.socket.write(pending);
      if (written >= 0 && written < pending.length) {
        this.pending = pending.subarray(written);
        return;
      }
      this.pending = null;
    }
    if (this.pending !== null) return;
    if (this.peer.eof) this.shutdownWrite();
    else if (!this.peer.gone) this.peer.socket?.resume();
    this.session.maybeFinished();
  }

  /** FIN from this socket: pass it on once the peer has everything before it. */
  onEnd(): void {
    this.eof = true;
    if (this.forwardedFor !== null) this.#releaseHeld();
    if (!this.isClient) this.session.serverEnded();
    const fc = this.session.owner.fastClose;
    if (fc === 'both' || (fc === 'down' && this.isClient) || (fc === 'up' && !this.isClient)) {
      this.session.close(this.isClient ? 'client-closed' : 'server-closed', false);
      return;
    }
    this.session.noteEnd(this.isClient ? 'client-closed' : 'server-closed');
    if (this.peer.pending === null && this.peer.socket !== null) this.peer.shutdownWrite();
    this.session.maybeFinished();
  }

  /** -H held the start of a head that will never be completed: it goes on as it is, before the FIN. */
  #releaseHeld(): void {
    const held = this.forwardedFor?.flush() ?? null;
    this.forwardedFor = null;
    if (held !== null) this.peer.send(held);
  }

  shutdownWrite(): void {
    if (this.shut || this.gone || this.socket === null) return;
    this.shut = true;
    this.socket.shutdown();
  }

  onClose(error: Error | undefined): void {
    if (this.gone) return;
    this.gone = true;
    const s = this.session;
    if (!this.isClient) s.serverEnded();
    if (error !== undefined && !(this.eof && this.shut)) {
      s.close(this.isClient ? 'client-reset' : 'server-reset', true);
      return;
    }
    s.noteEnd(this.isClient ? 'client-closed' : 'server-closed');
    if (this.forwardedFor !== null) this.#releaseHeld();
    // A clean close is a FIN: Bun reports the peer's FIN on a socket that already sent its own
    // as `close` without `end`, and the peer must still get what it is owed, then a FIN.
    this.eof = true;
    const peer = this.peer;
    if (!peer.gone && peer.socket !== null) {
      // Deliver what the peer still owes this side's data, then close it gracefully.
      if (peer.pending === null) peer.shutdownWrite();
    }
    s.maybeFinished();
  }

  onTimeout(): void {
    const s = this.session;
    const idleMs = s.owner.idleTimeoutMs;
    if (idleMs <= 0) return;
    const quietMs = s.owner.coarseNow() - s.lastActivityMs;
    if (quietMs + 1000 < idleMs) {
      // The other direction was busy: re-arm for the rest of the idle time.
      this.socket?.timeout(Math.max(1, Math.ceil((idleMs - quietMs) / 1000)));
      return;
    }
    s.close('idle-timeout', false);
  }
}
