/**
 * The stage before a session, for listeners that must learn something about a connection before
 * they can choose a server group: a TLS handshake (termination), or the ClientHello's server
 * name read without decrypting (passthrough). Plain listeners never create a gate, so their hot
 * path is unchanged.
 *
 * A gate owns the client socket until it either passes the connection on (with what it learnt
 * and any bytes already read, which the session sends to the server first) or fails it with a
 * reason that the listener counts. Every gate has a deadline, so clients that open a connection
 * and never finish the handshake cannot hold resources for long.
 *
 * A gate answers the same events as a session's Side (onData, onEnd, onClose, onTimeout,
 * onDrain), so the listener's shared handlers need no branch per event: once the gate passes the
 * socket on, socket.data is the session's Side and the same handlers drive it.
 */
import { clampTimerMs, type Clock, type TimerHandle } from '../core/clock.ts';
import { DEFAULT_MAX_HELLO_BYTES, parseClientHello, tlsVersionName } from '../protocol/tls-client-hello.ts';
import type { ProxiedAddresses } from '../protocol/proxy-protocol.ts';
import type { StreamSocket } from './socket.ts';
import { concat } from './bytes.ts';

/** What a gate learnt about a connection; the access log and routing read it. */
export interface ConnectionFacts {
  /** The server name the client asked for (SNI), normalized; null if none. */
  serverName: string | null;
  /** Negotiated ALPN protocol (termination) or the offered list (passthrough). */
  alpn: readonly string[];
  /** Verified client certificate identity (`CN=...`), or null. */
  clientIdentity: string | null;
  /** Fingerprint (SHA-256) of the verified client certificate, or null. */
  clientFingerprint: string | null;
  /** Negotiated (termination) or highest offered (passthrough) version, e.g. TLSv1.3. */
  tlsVersion: string | null;
  cipher: string | null;
  /** A resumed TLS session (termination). */
  resumed: boolean;
  /** true: Fulcrum decrypts; false: the encrypted stream passes through. */
  terminated: boolean;
  /** Bytes already read from the client, to send to the server first (passthrough). */
  initial: Uint8Array | null;
}

/** Why a connection never got past its gate (counted per listener, shown in stats). */
export type GateFailure =
  | 'timeout'
  | 'client-closed'
  | 'client-reset'
  | 'handshake-limit'
  | 'not-tls'
  | 'sslv2'
  | 'hello-too-large'
  | 'malformed-hello'
  | 'protocol-version'
  | 'no-shared-cipher'
  | 'no-client-cert'
  | 'bad-client-cert'
  | 'no-alpn-match'
  | 'unknown-ca'
  | 'handshake-failed'
  | 'shutdown'
  /** Given up, unfinished, for a newer connection when the handshake stage was full (the oldest first). */
  | 'evicted'
  /** The client's address opened more new connections per second than allowed. */
  | 'rate-limit';

/** The listener side of a gate. */
export interface GateOwner {
  /**
   * A gate finished: create the session (socket.data is replaced by its Side). `origin`: the
   * real client a PROXY header named (accept_proxy), if any.
   */
  gatePassed(socket: StreamSocket<unknown>, facts: ConnectionFacts, origin?: ProxiedAddresses | null, gate?: Gate): void;
  /** A gate failed; the socket is already being closed. */
  gateFailed(reason: GateFailure, detail: string, source: string, gate?: Gate): void;
  /** The time source for the deadline. */
  readonly clock: Clock;
  /** A gate began (its opening was allowed): the owner may give it up later with `fail('evicted')`. */
  gateStarted?(gate: Gate): void;
}

/** TLS gates need a few more socket operations than sessions. */
export interface TlsSocketInfo {
  getServername(): string | undefined;
  readonly alpnProtocol: string | false | null;
  readonly authorized: boolean;
  getPeerCertificate(): { subject?: Record<string, string | string[]>; fingerprint256?: string } | null | undefined;
  getTLSVersion(): string | null;
  getCipher(): { name?: string } | null;
  isSessionReused(): boolean;
}

export type ClientAuth = 'none' | 'optional' | 'required';

export class Gate {
  socket: StreamSocket<unknown>;
  readonly owner: GateOwner;
  /** Termination: what is checked after the handshake. Passthrough: null. */
  readonly clientAuth: ClientAuth | null;
  readonly maxHelloBytes: number;
  #buffer: Uint8Array | null = null;
  readonly #clock: Clock;
  #timer: TimerHandle | null = null;
  done = false;
  /** The client's address, captured at accept (a closed socket no longer knows it). */
  source: string;
  /** The real client named by a PROXY header read before this gate (accept_proxy), or null. */
  origin: ProxiedAddresses | null = null;

  constructor(socket: StreamSocket<unknown>, owner: GateOwner, timeoutMs: number, clientAuth: ClientAuth | null, maxHelloBytes = DEFAULT_MAX_HELLO_BYTES) {
    this.socket = socket;
    this.source = socket.remoteAddress ?? '';
    this.owner = owner;
    this.clientAuth = clientAuth;
    this.maxHelloBytes = maxHelloBytes;
    this.#clock = owner.clock;
    // Not a keep-alive timer: a half-open handshake does not keep a stopping process alive.
    if (timeoutMs > 0) this.#timer = this.#clock.setTimeout(onGateTimeout, clampTimerMs(timeoutMs), this);
    owner.gateStarted?.(this);
  }

  /** Passthrough: bytes of the ClientHello (termination: early application data, kept for the session). */
  onData(chunk: Uint8Array): void {
    if (this.done) return;
    const buf = this.#buffer === null ? new Uint8Array(chunk) : concat(this.#buffer, chunk);
    this.#buffer = buf;
    if (this.clientAuth !== null) return; // TLS: the handshake decides; data is only kept
    const r = parseClientHello(buf, this.maxHelloBytes);
    if (r.kind === 'need-more') return;
    if (r.kind === 'invalid') {
      const reason: GateFailure = r.reason === 'not-tls' ? 'not-tls' : r.reason === 'sslv2' ? 'sslv2' : r.reason === 'too-large' ? 'hello-too-large' : 'malformed-hello';
      this.fail(reason, r.detail, true);
      return;
    }
    this.socket.pause(); // nothing more is read until a server is connected
    this.#pass({
      serverName: r.hello.serverName,
      alpn: r.hello.alpn,
      clientIdentity: null,
      clientFingerprint: null,
      tlsVersion: tlsVersionName(r.hello.maxVersion),
      cipher: null,
      resumed: false,
      terminated: false,
      initial: buf,
    });
  }

  /** Termination: the TLS handshake finished (or failed). */
  onHandshake(tls: TlsSocketInfo, success: boolean, error: Error | null): void {
    if (this.done) return;
    if (!success) {
      this.fail(classifyHandshakeError(error), error?.message ?? 'handshake failed', true);
      return;
    }
    let identity: string | null = null;
    let fingerprint: string | null = null;
    if (this.clientAuth !== 'none' && this.clientAuth !== null) {
      const cert = tls.getPeerCertificate();
      const present = cert !== null && cert !== undefined && typeof cert.fingerprint256 === 'string';
      if (present && !tls.authorized) {
        this.fail('bad-client-cert', error?.message ?? 'the client certificate did not verify', true);
        return;
      }
      if (!present && this.clientAuth === 'required') {
        this.fail('no-client-cert', 'no client certificate', true);
        return;
      }
      if (present) {
        identity = subjectIdentity(cert.subject);
        fingerprint = cert.fingerprint256 ?? null;
      }
    }
    this.socket.pause(); // the session resumes it once its server is connected
    const alpn = tls.alpnProtocol;
    this.#pass({
      serverName: normalizeName(tls.getServername()),
      alpn: typeof alpn === 'string' ? [alpn] : [],
      clientIdentity: identity,
      clientFingerprint: fingerprint,
      tlsVersion: tls.getTLSVersion(),
      cipher: tls.getCipher()?.name ?? null,
      resumed: tls.isSessionReused(),
      terminated: true,
      initial: this.#buffer,
    });
  }

  onEnd(): void {
    if (!this.done) this.fail('client-closed', 'the client closed before the gate finished', false);
  }

  onClose(error: Error | undefined): void {
    if (this.done) return;
    // Bun reports a failed handshake as an error + close; classify what we can.
    const reason = error === undefined ? 'client-closed' : this.clientAuth !== null ? classifyHandshakeError(error) : 'client-reset';
    this.fail(reason, error?.message ?? 'closed', false);
  }

  onTimeout(): void {
    // Only the gate's own timer is used; the socket's idle timer is not armed before a session.
  }

  onDrain(): void {}

  timedOut(): void {
    this.#timer = null;
    if (!this.done) this.fail('timeout', 'the client did not finish in time', true);
  }

  fail(reason: GateFailure, detail: string, closeSocket: boolean): void {
    if (this.done) return;
    this.done = true;
    this.#clear();
    this.#buffer = null;
    if (closeSocket) this.socket.end();
    this.owner.gateFailed(reason, detail, this.source, this);
  }

  #pass(facts: ConnectionFacts): void {
    this.done = true;
    this.#clear();
    this.#buffer = null;
    this.owner.gatePassed(this.socket, facts, this.origin, this);
  }

  #clear(): void {
    if (this.#timer !== null) {
      this.#clock.clearTimer(this.#timer);
      this.#timer = null;
    }
  }
}

function onGateTimeout(gate: Gate): void {
  gate.timedOut();
}

function normalizeName(name: string | undefined | null): string | null {
  if (typeof name !== 'string' || name === '') return null;
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** `CN=...` of a certificate subject (the first CN if several), else the whole subject. */
export function subjectIdentity(subject: Record<string, string | string[]> | undefined): string | null {
  if (subject === undefined) return null;
  const cn = subject.CN;
  if (typeof cn === 'string') return `CN=${cn}`;
  if (Array.isArray(cn) && cn.length > 0) return `CN=${cn[0]}`;
  const parts = Object.entries(subject).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`);
  return parts.length > 0 ? parts.join(',') : null;
}

/** Maps BoringSSL's error text (as Bun reports it) to a counter label. */
export function classifyHandshakeError(error: Error | null | undefined): GateFailure {
  if (error === null || error === undefined) return 'handshake-failed';
  const text = `${(error as { code?: string }).code ?? ''} ${error.message}`.toUpperCase();
  if (/UNSUPPORTED_PROTOCOL|PROTOCOL_VERSION|WRONG_VERSION|VERSION_TOO_LOW|TLSV1_ALERT_PROTOCOL/.test(text)) return 'protocol-version';
  if (/HTTP_REQUEST|HTTPS_PROXY_REQUEST|WRONG_VERSION_NUMBER|RECORD_TOO_LARGE|PACKET_LENGTH|UNEXPECTED_RECORD/.test(text)) return 'not-tls';
  if (/NO_SHARED_CIPHER|NO_CIPHER|HANDSHAKE_FAILURE_ON_CLIENT_HELLO|NO_COMMON_SIGNATURE|NO_SHARED_GROUP/.test(text)) return 'no-shared-cipher';
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED|NO_CERTIFICATE/.test(text)) return 'no-client-cert';
  if (/NO_APPLICATION_PROTOCOL|ALPN/.test(text)) return 'no-alpn-match';
  if (/UNKNOWN_CA|ALERT_UNKNOWN_CA/.test(text)) return 'unknown-ca';
  if (/CERTIFICATE_VERIFY_FAILED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY|SELF_SIGNED|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|BAD_CERTIFICATE|CERT/.test(text)) return 'bad-client-cert';
  if (/ECONNRESET|RESET/.test(text)) return 'client-reset';
  return 'handshake-failed';
}
