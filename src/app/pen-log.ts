/**
 * pen's -l log: one line per finished connection, written by an observer of finished sessions
 * (as the access log is), to a file that follows the `log_file` setting across reloads; and
 * pen's -dd communication dump format.
 */
import { formatAddress, type Address } from '../core/address.ts';
import type { ConnectionFacts } from '../dataplane/gate.ts';
import type { Session } from '../dataplane/session.ts';
import { LogFile } from './log-file.ts';

export class PenLog {
  /** The open file, or null; pen's `log` command replaces it directly. */
  file: LogFile | null;

  constructor(path: string | null) {
    this.file = path === null ? null : new LogFile(path);
  }

  /** The finished-session observer. */
  readonly onSessionEnd = (s: Session): void => {
    this.file?.write(formatLogLine(s));
  };

  /**
   * Follows a changed `log_file` (reload): the new file is opened, then the old one closed. If
   * the new one cannot be opened the old one stays and `report` says why (the reload goes on).
   */
  follow(before: string | null, after: string | null, report: (message: string) => void = () => undefined): void {
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
 * One line per finished connection for the -l log: when, who, where to, why that server, how
 * much, how long, and how it ended.
 */
export function formatLogLine(s: Session): string {
  const server = s.selection.server;
  const failed = s.selection.failedServers;
  const why = failed === null ? s.selection.reason : `${s.selection.reason} after failures on server ${failed.join(',')}`;
  const connectMs = s.connectedMs > 0 ? s.connectedMs - s.connectStartMs : -1;
  return (
    `${new Date(s.startMs).toISOString()} client=${s.clientAddress === '' ? 'unix' : `${s.clientAddress}:${s.clientPort}`} ` +
    `server=${server === null ? '-' : formatAddress(server.address as Address)} ` +
    `why="${why}" bytes_in=${s.client.bytesRead} bytes_out=${s.server.bytesRead} ` +
    `connect_ms=${connectMs} duration_ms=${s.endMs - s.startMs} end=${s.reason ?? 'client-closed'}` +
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
