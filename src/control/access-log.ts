/**
 * The access log: one line per finished connection, in JSON (through pino) or in a key=value
 * text format, with who, where to, *why that server*, how much, how long and how it ended.
 * The format and every termination code are documented in docs/logging.md and
 * docs/termination-codes.md. pen's `-l` log is separate and unchanged (Balancer.log).
 * HTTP mode writes one line per request (and per WebSocket tunnel) instead, `"type":"http"` or
 * `"type":"websocket"`, to the same file in the same format (docs/http.md).
 *
 * Cost: one record and one buffered asynchronous write per connection (or HTTP request), at its
 * end; nothing per chunk. The file is opened in append mode and reopened on SIGHUP (rotation by `mv`).
 * Opening is checked synchronously first (a missing directory or a permission is an error the
 * caller reports at once), and `ready()` waits for pino's asynchronous open, so that nothing is
 * left half-open when the start fails later. A reopen that fails keeps the old file.
 */
import { closeSync, openSync } from 'node:fs';
import pino from 'pino';
import { formatAddress } from '../core/address.ts';
import type { Clock } from '../core/clock.ts';
import type { Server } from '../core/servers/server.ts';
import type { AccessLogConfig } from '../config/model.ts';
import type { HttpRequestRecord, SessionRecord } from './observed.ts';

/** The failed connect attempts before the server that served (or before giving up). */
export interface FailedAttempt {
  server: string;
  error: string;
}

/** One line of the access log; JSON keys are these names, in this order. */
export interface AccessRecord {
  id: number;
  start: string;
  listener: string | null;
  group: string | null;
  client: string;
  /** The server that served the connection, or the last one tried when none did. */
  server: string | null;
  /** Index in its group (-1 emergency, -2 abuse), null when no server was chosen. */
  server_index: number | null;
  /** Why that server: tracked | algorithm | failover | emergency | abuse; null when none was chosen. */
  why: string | null;
  /** The group's algorithm when it made the choice (why = algorithm), else null. */
  algorithm: string | null;
  /** Connect attempts that failed first (failover after which failures). */
  failed: FailedAttempt[];
  bytes_from_client: number;
  bytes_to_client: number;
  /** From the start of the connect that succeeded to its completion; null if none did. */
  connect_ms: number | null;
  duration_ms: number;
  /** Termination code (docs/termination-codes.md). */
  end: string;
  /** TLS: what was negotiated (termination) or read from the ClientHello (passthrough); null on plain TCP. */
  tls: AccessTls | null;
}

export interface AccessTls {
  mode: 'terminated' | 'passthrough';
  /** Negotiated version (terminated) or the highest the client offered (passthrough). */
  version: string | null;
  sni: string | null;
  /** Negotiated protocol (terminated) or those offered, comma-separated (passthrough). */
  alpn: string | null;
  cipher: string | null;
  resumed: boolean;
  /** The verified client certificate's identity (`CN=...`), or null. */
  client_cert: string | null;
  client_fingerprint: string | null;
}

function accessTls(s: SessionRecord): AccessTls | null {
  const f = s.facts;
  if (f === null) return null;
  return {
    mode: f.terminated ? 'terminated' : 'passthrough',
    version: f.tlsVersion,
    sni: f.serverName,
    alpn: f.alpn.length === 0 ? null : f.alpn.join(','),
    cipher: f.cipher,
    resumed: f.resumed,
    client_cert: f.clientIdentity,
    client_fingerprint: f.clientFingerprint,
  };
}

/** What the access log needs to know of a session's owner (a group). */
interface GroupLike {
  readonly name?: string;
  readonly config?: { readonly algorithm: string };
}

function serverIndex(s: Server): number {
  return s.role === 'emergency' ? -1 : s.role === 'abuse' ? -2 : s.index;
}

export function accessRecord(s: SessionRecord): AccessRecord {
  const owner = s.owner as GroupLike;
  const failedServers = s.failedServers ?? [];
  const served = s.server ?? failedServers[failedServers.length - 1] ?? null;
  const why = served === null ? null : s.reason;
  const errors = s.connectErrors ?? [];
  // A server that failed and is the last one tried is reported as `server`, not as a failover step.
  const failedBefore = s.server === null ? failedServers.slice(0, -1) : failedServers;
  return {
    id: s.id,
    start: new Date(s.startMs).toISOString(),
    listener: s.listener?.name ?? null,
    group: owner.name ?? null,
    client: s.clientAddress === '' ? 'unix' : `${s.clientAddress}:${s.clientPort}`,
    server: served === null ? null : formatAddress(served.address),
    server_index: served === null ? null : serverIndex(served),
    why,
    algorithm: why === 'algorithm' ? (owner.config?.algorithm ?? null) : null,
    failed: failedBefore.map((f, i) => ({ server: formatAddress(f.address), error: errors[i] ?? 'connect failed' })),
    bytes_from_client: s.client.bytesRead,
    bytes_to_client: s.serverSide.bytesRead,
    connect_ms: s.connectedMs > 0 ? s.connectedMs - s.connectStartMs : null,
    duration_ms: s.endMs - s.startMs,
    end: s.termination ?? 'client-closed',
    tls: accessTls(s),
  };
}

/** One line of the access log for an HTTP mode request or WebSocket tunnel; JSON keys in this order. */
export interface AccessHttpRecord {
  type: 'http' | 'websocket';
  start: string;
  listener: string;
  group: string | null;
  client: string;
  method: string;
  /** The request target (path and query), at most TARGET_MAX characters. */
  path: string;
  host: string | null;
  /** The answer's status; null when none was given (the client went away first). */
  status: number | null;
  /** Who gave the status: the server, or Fulcrum itself (its 400, 413, 501, 502, 503, 504). */
  by: 'server' | 'fulcrum' | null;
  server: string | null;
  server_index: number | null;
  /** tracked | algorithm | failover | backup | emergency | abuse | sticky-cookie; null when no server was chosen. */
  why: string | null;
  algorithm: string | null;
  /** connect-failed | stale-connection: why the request was sent again; null if it was not. */
  retry: string | null;
  failed: FailedAttempt[];
  /** new | reused: the backend connection (null: none was used; a WebSocket has its own). */
  connection: 'new' | 'reused' | null;
  bytes_from_client: number;
  bytes_to_client: number;
  /** From the request's arrival to the response head (or Fulcrum's answer, or the upgrade); null if none. */
  head_ms: number | null;
  duration_ms: number;
  end: string;
  detail: string | null;
}

/** A request target longer than this is cut (with `...`) in the log line. */
export const TARGET_MAX = 1024;
/** A Host header longer than this is cut in the log line. */
const HOST_MAX = 256;

function cut(v: string, max: number): string {
  return v.length <= max ? v : `${v.slice(0, max)}...`;
}

export function httpAccessRecord(r: HttpRequestRecord): AccessHttpRecord {
  const owner = (r.group ?? {}) as GroupLike;
  const served = r.server;
  const why = served === null ? null : r.sticky ? 'sticky-cookie' : r.st.reason;
  const uses = r.connectionUses;
  return {
    type: r.websocket ? 'websocket' : 'http',
    start: new Date(r.startMs).toISOString(),
    listener: r.listener.name,
    group: owner.name ?? null,
    client: `${r.st.clientKey}:${r.st.clientPort}`,
    method: r.method,
    path: cut(r.target, TARGET_MAX),
    host: r.host === null ? null : cut(r.host, HOST_MAX),
    status: r.status === 0 ? null : r.status,
    by: r.status === 0 ? null : r.own ? 'fulcrum' : 'server',
    server: served === null ? null : formatAddress(served.address),
    server_index: served === null ? null : serverIndex(served),
    why,
    algorithm: why === 'algorithm' ? (owner.config?.algorithm ?? null) : null,
    retry: r.retry,
    failed: r.failures === null ? [] : r.failures.map((f) => ({ server: formatAddress(f.server.address), error: f.error })),
    connection: uses === 0 ? null : uses === 1 ? 'new' : 'reused',
    bytes_from_client: r.bytesFromClient,
    bytes_to_client: r.bytesToClient,
    head_ms: r.headMs === 0 ? null : r.headMs - r.startMs,
    duration_ms: r.endMs - r.startMs,
    end: r.end,
    detail: r.detail,
  };
}

/** A value for the text format: bare when safe, else double-quoted with escapes. */
function textValue(v: string | number | null): string {
  if (v === null) return '-';
  const t = String(v);
  return /^[A-Za-z0-9_.:/[\]@+-]+$/.test(t) ? t : JSON.stringify(t);
}

/**
 * The text format: the end time, then `key=value` pairs in the JSON record's order
 * (`failed` as `server/error` items joined by commas).
 */
export function formatTextRecord(r: AccessRecord, time: Date): string {
  const failed = r.failed.length === 0 ? null : r.failed.map((f) => `${f.server}/${f.error}`).join(',');
  return (
    `${time.toISOString()} id=${r.id} start=${r.start} listener=${textValue(r.listener)} group=${textValue(r.group)} ` +
    `client=${textValue(r.client)} server=${textValue(r.server)} server_index=${textValue(r.server_index)} why=${textValue(r.why)} ` +
    `algorithm=${textValue(r.algorithm)} failed=${textValue(failed)} bytes_from_client=${r.bytes_from_client} ` +
    `bytes_to_client=${r.bytes_to_client} connect_ms=${textValue(r.connect_ms)} duration_ms=${r.duration_ms} end=${r.end}` +
    (r.tls === null
      ? ''
      : ` tls=${r.tls.mode === 'passthrough' ? 'passthrough' : textValue(r.tls.version)} sni=${textValue(r.tls.sni)} alpn=${textValue(r.tls.alpn)} ` +
        `cipher=${textValue(r.tls.cipher)} resumed=${r.tls.resumed ? 1 : 0} client_cert=${textValue(r.tls.client_cert)}`) +
    '\n'
  );
}

/** The text format of an HTTP request's line: the end time, then `key=value` pairs in the JSON record's order. */
export function formatHttpTextRecord(r: AccessHttpRecord, time: Date): string {
  const failed = r.failed.length === 0 ? null : r.failed.map((f) => `${f.server}/${f.error}`).join(',');
  return (
    `${time.toISOString()} type=${r.type} start=${r.start} listener=${textValue(r.listener)} group=${textValue(r.group)} client=${textValue(r.client)} ` +
    `method=${textValue(r.method)} path=${textValue(r.path)} host=${textValue(r.host)} status=${textValue(r.status)} by=${textValue(r.by)} ` +
    `server=${textValue(r.server)} server_index=${textValue(r.server_index)} why=${textValue(r.why)} algorithm=${textValue(r.algorithm)} ` +
    `retry=${textValue(r.retry)} failed=${textValue(failed)} connection=${textValue(r.connection)} bytes_from_client=${r.bytes_from_client} ` +
    `bytes_to_client=${r.bytes_to_client} head_ms=${textValue(r.head_ms)} duration_ms=${r.duration_ms} end=${r.end} detail=${textValue(r.detail)}\n`
  );
}

/** pino's SonicBoom destination (asynchronous, coalescing writes; reopen for rotation). */
type Destination = ReturnType<typeof pino.destination>;

export class AccessLog {
  readonly config: AccessLogConfig;
  readonly #dest: Destination;
  readonly #json: pino.Logger | null;
  #closed = false;
  /** Lines written since start (for tests and status). */
  lines = 0;
  /** Bound to this instance, to be pushed onto Balancer.onSessionEnd. */
  readonly onSessionEnd = (s: SessionRecord): void => this.write(s);
  /** Bound to this instance, to be pushed onto Balancer.onHttpRequestEnd (HTTP mode). */
  readonly onHttpRequestEnd = (r: HttpRequestRecord): void => this.writeHttp(r);

  readonly #clock: Clock;

  /** `onError`: a write or an asynchronous reopen failed (the log keeps its old file). */
  constructor(config: AccessLogConfig, clock: Clock, onError: (e: Error) => void = () => undefined) {
    this.config = config;
    this.#clock = clock;
    const toStdout = config.path === '-';
    if (!toStdout) closeSync(openSync(config.path, 'a')); // throws ENOENT, EACCES, ... here, not later
    this.#dest = pino.destination({ dest: toStdout ? 1 : config.path, append: true, sync: false, mkdir: false });
    // Without a listener, an 'error' event (a reopen or a write that failed) ends the process.
    this.#dest.on('error', onError);
    this.#json =
      config.format === 'json'
        ? pino(
            {
              base: null,
              // pino writes `{` + time + the record's keys; the level is left out (every line is one connection).
              timestamp: () => `"time":"${new Date(this.#clock.now()).toISOString()}"`,
              formatters: { level: () => ({}) },
            },
            this.#dest,
          )
        : null;
  }

  write(s: SessionRecord): void {
    if (this.#closed) return;
    const r = accessRecord(s);
    this.lines++;
    if (this.#json !== null) this.#json.info(r);
    else this.#dest.write(formatTextRecord(r, new Date(this.#clock.now())));
  }

  /** One HTTP mode request (or WebSocket tunnel) that ended. */
  writeHttp(req: HttpRequestRecord): void {
    if (this.#closed) return;
    const r = httpAccessRecord(req);
    this.lines++;
    if (this.#json !== null) this.#json.info(r);
    else this.#dest.write(formatHttpTextRecord(r, new Date(this.#clock.now())));
  }

  /** Resolves once the file is open (pino opens it asynchronously); rejects if it cannot be. */
  ready(): Promise<void> {
    const dest = this.#dest as Destination & { fd: number };
    if (this.config.path === '-' || dest.fd >= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      dest.once('ready', () => resolve());
      dest.once('error', reject);
    });
  }

  /**
   * Reopens the file (SIGHUP), so that a rotated log is continued in a new file. Throws (and
   * keeps writing to the old file) if the new one cannot be opened.
   */
  reopen(): void {
    if (this.#closed || this.config.path === '-') return;
    closeSync(openSync(this.config.path, 'a'));
    this.#dest.reopen();
  }

  /** Writes what is buffered and closes the file (bounded wait). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const dest = this.#dest;
    if (this.config.path === '-') {
      dest.flushSync();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = this.#clock.setTimeout(resolve, 2000, undefined, true);
      dest.once('close', () => {
        this.#clock.clearTimer(timer);
        resolve();
      });
      dest.end();
    });
  }
}
