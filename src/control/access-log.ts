/**
 * The access log: one line per finished connection, in JSON (through pino) or in a key=value
 * text format, with who, where to, *why that server*, how much, how long and how it ended.
 * The format and every termination code are documented in docs/logging.md and
 * docs/termination-codes.md. pen's `-l` log is separate and unchanged (Balancer.log).
 *
 * Cost: one record and one buffered asynchronous write per connection, at its end; nothing
 * per chunk. The file is opened in append mode and reopened on SIGHUP (rotation by `mv`).
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
import type { SessionRecord } from './observed.ts';

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
