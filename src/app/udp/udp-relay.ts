/**
 * A UDP listener's relay (pen -U, docs/udp.md): the listening socket, the session table
 * (core/udp/sessions.ts) and one connected upstream socket per session. A new client
 * address:port is a new session whose server the group's Selector chooses exactly as for a TCP
 * connection (tracking, round robin, hash, weights, limits counting sessions, ACLs); replies leave
 * from the listening socket. Passive health: ICMP port unreachable ends the session and counts a
 * failure of its server (blacklisted for -b); sessions left unanswered in a row do the same.
 *
 * Per datagram: one map lookup, counters, one send. No closure is made per datagram or per
 * session (the handlers are this object; a session's flow is one object).
 */
import type { Clock } from '../../core/clock.ts';
import { clientKey } from '../../core/ip.ts';
import { newSelectionState, type SelectionState } from '../../core/selector.ts';
import type { Server } from '../../core/servers/server.ts';
import type { TerminationReason } from '../../core/termination.ts';
import { UdpSessionTable, type UdpEndReason, type UdpSession, type UdpSessionEvents, type UdpSessionLimits } from '../../core/udp/sessions.ts';
import type { UdpListenerConfig } from '../../config/model.ts';
import type { SessionRecord } from '../../control/observed.ts';
import { UdpListener, UdpUpstream, type UdpListenerHandler, type UdpUpstreamHandler } from '../../dataplane/bun-udp.ts';

/** The group a UDP listener serves (app's GroupRuntime fits). */
export interface UdpGroup {
  readonly name: string;
  readonly config: { readonly algorithm: string };
  readonly selector: {
    begin(st: SelectionState): Server | null;
    connected(st: SelectionState): void;
    released(st: SelectionState): void;
    passiveFailure(server: Server, why: string): void;
  };
}

/** What the relay needs of its listener (app's ListenerRuntime fits). */
export interface UdpRelayHost {
  readonly name: string;
  readonly config: { readonly udp?: UdpListenerConfig | null };
  /** The group new sessions go to (a reload may change it; sessions keep theirs). */
  readonly group: UdpGroup;
  readonly clock: Clock;
  /** pen's -x and idle_timeout, which a UDP listener under pen's arguments follows. */
  readonly global: { readonly maxConnections: number; readonly idleTimeoutMs: number };
  accepted: number;
  active: number;
  bytesFromClients: number;
  bytesToClients: number;
  /** One finished session, for the access log. */
  udpSessionEnded(record: SessionRecord): void;
  logEvent(message: string): void;
}

/** Counters of one UDP listener since it was bound, for /metrics and reports. */
export interface UdpRelayStats {
  datagramsFromClients: number;
  bytesFromClients: number;
  datagramsToServers: number;
  datagramsFromServers: number;
  bytesFromServers: number;
  datagramsToClients: number;
  /** New sessions refused by the selector (no server, all full, ACL), by reason. */
  refused: Record<string, number>;
  /** Sessions ended by ICMP unreachable from their server. */
  unreachable: number;
  /** Servers counted as failing for unanswered sessions. */
  unansweredFailures: number;
  /** Datagrams the kernel would not take or that had no session socket yet. */
  sendDrops: number;
}

let nextUdpSessionId = 1;

/** One session's data-plane side and its record for the access log. */
class UdpFlow implements SessionRecord {
  readonly id = nextUdpSessionId++;
  session!: UdpSession<UdpFlow>;
  upstream: UdpUpstream<UdpFlow> | null = null;
  /** The server answered at least once. */
  replied = false;
  /** Already counted as unanswered (once per session). */
  judged = false;
  termination: TerminationReason | null = null;
  endMs = 0;
  readonly connecting = false;
  readonly failedServers = null;
  readonly connectErrors = null;
  readonly facts = null;
  readonly connectStartMs: number;
  readonly connectedMs: number;

  constructor(
    readonly owner: UdpGroup,
    readonly listener: { readonly name: string },
    readonly selection: SelectionState,
    readonly clientAddress: string,
    readonly clientPort: number,
    readonly startMs: number,
  ) {
    this.connectStartMs = startMs;
    this.connectedMs = startMs;
  }

  /** SessionRecord: the chosen server and why (the selection state is a plain object here). */
  get server(): Server | null {
    return this.selection.server;
  }
  get reason(): string {
    return this.selection.reason;
  }
  get client(): { bytesRead: number } {
    return { bytesRead: this.session.bytesIn };
  }
  get serverSide(): { bytesRead: number } {
    return { bytesRead: this.session.bytesOut };
  }
}

const END_REASONS: Readonly<Record<UdpEndReason, TerminationReason>> = {
  idle: 'idle-timeout',
  evicted: 'evicted',
  error: 'connect-failed',
  closed: 'shutdown',
};

export class UdpRelay implements UdpListenerHandler, UdpUpstreamHandler<UdpFlow>, UdpSessionEvents<UdpFlow> {
  readonly table: UdpSessionTable<UdpFlow>;
  readonly stats: UdpRelayStats = {
    datagramsFromClients: 0,
    bytesFromClients: 0,
    datagramsToServers: 0,
    datagramsFromServers: 0,
    bytesFromServers: 0,
    datagramsToClients: 0,
    refused: {},
    unreachable: 0,
    unansweredFailures: 0,
    sendDrops: 0,
  };
  #socket: UdpListener | null = null;
  readonly #host: UdpRelayHost;
  /** Sessions in a row that each server left unanswered (only servers with some). */
  readonly #unanswered = new Map<Server, number>();

  constructor(host: UdpRelayHost) {
    this.#host = host;
    this.table = new UdpSessionTable<UdpFlow>(host.clock, this, this.#limits());
  }

  /** Binds the listening socket (synchronously; throws on a bind error). */
  bind(hostname: string, port: number): UdpListener {
    this.#socket = UdpListener.bind({ hostname, port }, this);
    return this.#socket;
  }

  /** Stops listening; sessions end with it (their replies could not leave any more). */
  stop(): void {
    this.table.closeAll('closed');
    this.#socket?.close();
    this.#socket = null;
  }

  /** The limits from the listener's settings, pen's -x and idle_timeout standing in for nulls. */
  #limits(): UdpSessionLimits {
    const c = this.#host.config.udp;
    const g = this.#host.global;
    return {
      maxSessions: c?.maxSessions ?? g.maxConnections,
      maxPerSource: c?.maxPerSource ?? 64,
      idleTimeoutMs: c?.idleTimeoutMs ?? g.idleTimeoutMs,
      returnFactor: c?.returnFactor ?? 3,
      returnFloorBytes: c?.returnFloorBytes ?? 1232,
    };
  }

  /** Follows changed settings (reload, pen commands); checked once per new session, O(1). */
  syncLimits(): void {
    const want = this.#limits();
    const have = this.table.limits;
    if (
      want.maxSessions !== have.maxSessions ||
      want.maxPerSource !== have.maxPerSource ||
      want.idleTimeoutMs !== have.idleTimeoutMs ||
      want.returnFactor !== have.returnFactor ||
      want.returnFloorBytes !== have.returnFloorBytes
    ) {
      this.table.setLimits(want);
    }
  }

  // UdpListenerHandler

  clientDatagram(_listener: UdpListener, payload: Buffer, address: string, port: number): void {
    const st = this.stats;
    st.datagramsFromClients++;
    st.bytesFromClients += payload.length;
    let s = this.table.get(address, port);
    if (s === undefined) {
      s = this.#open(address, port);
      if (s === undefined) return;
    } else if (!s.data.replied && !s.data.judged) {
      this.#judge(s);
    }
    this.table.fromClient(s, payload.length);
    const up = s.data.upstream;
    if (up !== null && up.send(payload)) st.datagramsToServers++;
    else st.sendDrops++;
  }

  listenerError(): void {
    this.stats.sendDrops++;
  }

  #open(address: string, port: number): UdpSession<UdpFlow> | undefined {
    const host = this.#host;
    this.syncLimits();
    if (!this.table.admits(address)) return undefined;
    const group = host.group;
    const sel = newSelectionState(clientKey(address), port);
    const server = group.selector.begin(sel);
    if (server === null) {
      const why = sel.refusal ?? 'no-server';
      this.stats.refused[why] = (this.stats.refused[why] ?? 0) + 1;
      return undefined;
    }
    // UDP has no connect to wait for: the session is established as soon as it has a server.
    group.selector.connected(sel);
    const now = host.clock.now();
    const flow = new UdpFlow(group, host, sel, address, port, now);
    const s = this.table.open(address, port, server.index, flow);
    flow.session = s;
    host.accepted++;
    host.active++;
    const a = server.address;
    const up = UdpUpstream.open(flow, { hostname: a.kind === 'tcp' ? a.host : '127.0.0.1', port: a.kind === 'tcp' ? a.port : 0 }, this);
    // Creating the socket may already have failed (and ended the session).
    if (!s.open) up.close();
    else flow.upstream = up;
    return s.open ? s : undefined;
  }

  /** A session still without a reply after the reply timeout: once, it counts as unanswered. */
  #judge(s: UdpSession<UdpFlow>): void {
    const c = this.#host.config.udp;
    const n = c?.unansweredSessions ?? 0;
    if (n <= 0 || this.#host.clock.now() - s.openedMs < (c?.replyTimeoutMs ?? 5000)) return;
    s.data.judged = true;
    const server = s.data.selection.server;
    if (server === null) return;
    const count = (this.#unanswered.get(server) ?? 0) + 1;
    if (count < n) {
      this.#unanswered.set(server, count);
      return;
    }
    this.#unanswered.delete(server);
    this.stats.unansweredFailures++;
    s.data.owner.selector.passiveFailure(server, `${count} UDP sessions in a row without a reply`);
  }

  // UdpUpstreamHandler

  serverDatagram(upstream: UdpUpstream<UdpFlow>, payload: Buffer): void {
    const flow = upstream.session;
    const s = flow.session;
    const st = this.stats;
    st.datagramsFromServers++;
    st.bytesFromServers += payload.length;
    if (!this.table.fromServer(s, payload.length)) return;
    if (!flow.replied) {
      flow.replied = true;
      const server = flow.selection.server;
      if (server !== null && this.#unanswered.size > 0) this.#unanswered.delete(server);
    }
    const sock = this.#socket;
    if (sock !== null && sock.sendToClient(payload, s.address, s.port)) st.datagramsToClients++;
    else st.sendDrops++;
  }

  serverUnreachable(upstream: UdpUpstream<UdpFlow>): void {
    const flow = upstream.session;
    if (!flow.session.open) return;
    this.stats.unreachable++;
    const server = flow.selection.server;
    if (server !== null) flow.owner.selector.passiveFailure(server, 'ICMP port unreachable');
    this.table.close(flow.session, 'error');
  }

  serverError(upstream: UdpUpstream<UdpFlow>, error: Error): void {
    const flow = upstream.session;
    if (!flow.session.open) return;
    this.#host.logEvent(`listener ${this.#host.name}: UDP session of ${flow.clientAddress}:${flow.clientPort}: ${error.message}`);
    this.table.close(flow.session, 'error');
  }

  // UdpSessionEvents

  sessionEnded(s: UdpSession<UdpFlow>, reason: UdpEndReason): void {
    const flow = s.data;
    const host = this.#host;
    flow.upstream?.close();
    if (!flow.replied && !flow.judged && s.datagramsIn > 0 && reason !== 'closed') this.#judge(s);
    flow.owner.selector.released(flow.selection);
    host.active--;
    host.bytesFromClients += s.bytesIn;
    host.bytesToClients += s.bytesOut;
    flow.termination = END_REASONS[reason];
    flow.endMs = host.clock.now();
    host.udpSessionEnded(flow);
  }
}
