/**
 * What one HTTP mode request (or WebSocket tunnel) leaves for the access log and /metrics
 * (docs/http.md, "Access log and metrics"): Exchange extends this class, so the
 * request's own object is its record, filled as it goes by plain field writes (no closure, no
 * extra object). The access log's line is built from it only when an access log is configured.
 * A request Fulcrum refuses before any exchange exists (a malformed head: 400, 431, 505; a slow
 * one: 408) gets a bare RequestRecord, on those error paths only.
 */
import type { SelectionState } from '../../core/selector.ts';
import type { Server } from '../../core/servers/server.ts';
import type { GroupConfig } from '../../config/model.ts';
import type { Selector } from '../../core/selector.ts';
import type { HttpRequestRecord } from '../../control/observed.ts';

/** The group a request goes to (app's GroupRuntime fits). */
export interface HttpGroup {
  readonly name: string;
  readonly config: GroupConfig;
  readonly selector: Selector;
  /** Told when a server goes up or down (the pool closes a down server's idle connections). */
  readonly stateWatchers: Set<(server: Server, up: boolean) => void>;
}

/** Why a request was sent again (the access log's `retry`). */
export type RetryReason = 'connect-failed' | 'stale-connection' | 'server-failed';

export class RequestRecord implements HttpRequestRecord {
  status = 0;
  /** The status is Fulcrum's own answer. */
  own = false;
  headMs = 0;
  /** Set only when the record is logged. */
  endMs = 0;
  bytesFromClient = 0;
  bytesToClient = 0;
  /** The server tried last (the one that answered, if any). */
  server: Server | null = null;
  sticky = false;
  retry: RetryReason | null = null;
  failures: { server: Server; error: string }[] | null = null;
  connectionUses = 0;
  /** How it ended (docs/http.md); 'ok' until something else happens. */
  end = 'ok';
  detail: string | null = null;
  /** The request was upgraded (a 101): the record is its tunnel's, logged when it ends. */
  websocket = false;

  constructor(
    readonly listener: { readonly name: string },
    readonly group: HttpGroup,
    readonly st: SelectionState,
    readonly method: string,
    readonly target: string,
    readonly host: string | null,
    readonly startMs: number,
  ) {}

  /** An answer of Fulcrum's own: its status, why (`end`) and in words (`detail`), at `nowMs`. */
  answered(status: number, end: string, detail: string, nowMs: number): void {
    this.status = status;
    this.own = true;
    this.end = end;
    this.detail = detail;
    this.headMs = nowMs;
  }

  /** An attempt failed and the request goes again (`retry` says how). */
  failedOnce(server: Server, error: string, retry: RetryReason): void {
    (this.failures ??= []).push({ server, error });
    this.retry = retry;
  }
}
