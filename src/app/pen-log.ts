/**
 * pen's -l log, to a file that follows the `log_file` setting across reloads, in one of two
 * formats (`log_format`, docs/logging.md):
 *
 * - `pen` (the default, so pen's log tools keep working): pen's log_request(), one line per
 *   chunk read from the client, written when it arrives:
 *   `client_ip unix_seconds server_ip first-line-of-the-chunk`;
 * - `fulcrum`: one line per finished connection with why that server and how it ended.
 *
 * Also pen's -dd communication dump format.
 */
import { formatAddress, type Address } from '../core/address.ts';
import type { ConnectionFacts } from '../dataplane/gate.ts';
import type { Session } from '../dataplane/session.ts';
import { LogFile } from './log-file.ts';

/** pen's KEEP_MAX: at most this many bytes of a chunk are looked at for its line. */
const PEN_LINE_MAX = 100;

export class PenLog {
  /** The open file, or null; pen's `log` command replaces it directly. */
  file: LogFile | null;
  format: 'pen' | 'fulcrum';
  readonly #now: () => number;

  /** `now` is the wall clock in milliseconds (pen writes whole seconds). */
  constructor(path: string | null, format: 'pen' | 'fulcrum', now: () => number) {
    this.file = path === null ? null : new LogFile(path);
    this.format = format;
    this.#now = now;
  }

  /** Whether sessions must report the chunks their clients send (pen's format is per chunk). */
  get wantsChunks(): boolean {
    return this.file !== null && this.format === 'pen';
  }

  /** A chunk from a client, on its way to the server. */
  onClientChunk(s: Session, chunk: Uint8Array): void {
    if (this.format === 'pen') this.file?.write(formatPenLine(s, Math.floor(this.#now() / 1000), chunk));
  }

  /** The finished-session observer. */
  readonly onSessionEnd = (s: Session): void => {
    if (this.format === 'fulcrum') this.file?.write(formatLogLine(s));
  };

  /**
   * Follows a changed `log_file` or `log_format` (reload): the new file is opened, then the old
   * one closed. If the new one cannot be opened the old one stays and `report` says why (the
   * reload goes on).
   */
  follow(before: string | null, after: string | null, format: 'pen' | 'fulcrum', report: (message: string) => void = () => undefined): void {
    this.format = format;
    if (after === before) return;
    let next: LogFile | null = null;
    try {
      next = after === null ? null : new LogFile(after);
    } catch (e) {
      report(`cannot open the log file ${after}: ${(e as Error).message}; still writing to ${before ?? 'no file'}`);
      return;
    }
    void this.file?.close();
    this.file = next;
  }

  async close(): Promise<void> {
    await this.file?.close();
  }
}

/**
 * pen's log_request(): client address, seconds since the epoch, server address (no ports), then
 * the chunk's first PEN_LINE_MAX bytes up to the first CR or LF, non-ASCII bytes as dots.
 */
export function formatPenLine(s: Session, seconds: number, chunk: Uint8Array): string {
  const serverSocket = s.serverSide.socket;
  const server = s.server;
  const serverIp = serverSocket?.remoteAddress ?? (server === null ? '' : server.address.kind === 'unix' ? server.address.path : server.address.host);
  let request = '';
  const n = Math.min(chunk.length, PEN_LINE_MAX);
  for (let i = 0; i < n; i++) {
    const b = chunk[i]!;
    if (b === 0x0d || b === 0x0a) break;
    request += b < 0x80 ? String.fromCharCode(b) : '.';
  }
  return `${s.clientAddress} ${seconds} ${serverIp} ${request}\n`;
}

/**
 * Fulcrum's format (`--log-format fulcrum`), one line per finished connection: when, who, where
 * to, why that server, how much, how long, and how it ended.
 */
export function formatLogLine(s: Session): string {
  const server = s.server;
  const failed = s.failedServers;
  const why = failed === null ? s.reason : `${s.reason} after failures on server ${failed.map((f) => f.index).join(',')}`;
  const connectMs = s.connectedMs > 0 ? s.connectedMs - s.connectStartMs : -1;
  return (
    `${new Date(s.startMs).toISOString()} client=${s.clientAddress === '' ? 'unix' : `${s.clientAddress}:${s.clientPort}`} ` +
    `server=${server === null ? '-' : formatAddress(server.address as Address)} ` +
    `why="${why}" bytes_in=${s.client.bytesRead} bytes_out=${s.serverSide.bytesRead} ` +
    `connect_ms=${connectMs} duration_ms=${s.endMs - s.startMs} end=${s.termination ?? 'client-closed'}` +
    (s.facts === null ? '' : formatFacts(s.facts))
  );
}
/** TLS fields of a log line: protocol (or passthrough), server name, ALPN, client certificate. */
function formatFacts(f: ConnectionFacts): string {
  const quote = (v: string): string => `"${v.replace(/["\\]/g, '\\$&')}"`;
  let out = ` tls=${f.terminated ? (f.tlsVersion ?? '-') : 'passthrough'} sni=${f.serverName ?? '-'} alpn=${f.alpn.length > 0 ? f.alpn.join(',') : '-'}`;
  if (f.terminated) out += ` cipher=${f.cipher ?? '-'} resumed=${f.resumed ? 1 : 0}`;
  if (f.clientIdentity !== null) out += ` client_cert=${quote(f.clientIdentity)}`;
  return out;
}

/** pen's communication dump (-dd) of one chunk: hex by default, ASCII with -a. */
export function formatDump(session: Session, fromClient: boolean, chunk: Uint8Array, ascii: boolean): string {
  const dir = fromClient ? 'client -> server' : 'server -> client';
  const shown = chunk.subarray(0, 512);
  const body = ascii
    ? Buffer.from(shown).toString('latin1').replace(/[^\x20-\x7e\n]/g, '.')
    : Buffer.from(shown).toString('hex').replace(/(.{2})/g, '$1 ').trim();
  return `connection ${session.id} ${dir} ${chunk.length} bytes${chunk.length > 512 ? ' (first 512)' : ''}:\n${body}`;
}
