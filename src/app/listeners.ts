/**
 * The listening sockets: binding a listener for its mode (plain, TLS termination, passthrough),
 * moving it (pen's `listen`), and the TLS certificate files: read before binding, re-read on
 * SIGHUP, and checked for changes by one timer through the injected Clock. With workers the
 * primary holds each TCP listener's socket without accepting on it and every worker adopts it
 * (one accept queue, docs/workers.md); a listener a reload adds later, and UDP, is shared by the
 * workers' own SO_REUSEPORT sockets, the primary only checking that it could bind.
 */
import { formatAddress, type Address } from '../core/address.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { listenErrorText, listenTcp, type ListenHandle } from '../dataplane/bun-tcp.ts';
import type { Diagnostics } from './diagnostics.ts';
import { listenerMode } from './listener-mode.ts';
import type { GroupRuntime, ListenerRuntime } from './runtime.ts';
import type { ListenerConfig } from '../config/model.ts';
import { httpCode, tlsCode, udpCode } from './on-demand.ts';
import { FulcrumError } from '../core/errors.ts';
import { takeInheritedFd } from './inherited-sockets.ts';
import { heldHandle, holdListeningSocket } from '../dataplane/held-listener.ts';

/** With workers, a listener must be a TCP port that several processes can share. */
export function workerListenProblem(a: Address): string | null {
  if (a.kind === 'unix') {
    return `cannot share the Unix socket listener ${a.path} between workers (SO_REUSEPORT is for TCP ports): run one process (workers: 1) or listen on a TCP port`;
  }
  if (a.port === 0) return `cannot share listener ${formatAddress(a)} between workers: port 0 would give each worker another port`;
  return null;
}

/**
 * Listener kinds that run in one process only: UDP (Bun's UDP sockets cannot share a port) and
 * the HTTP mode (its sticky-cookie secret and its counters are per process: /metrics would show
 * the primary's, and a client would lose its stickiness moving between workers).
 */
export function workerModeProblem(l: ListenerConfig): string | null {
  const mode = listenerMode(l);
  if (mode === 'udp') return `listener ${formatAddress(l.address)} is UDP, which runs in one process (Bun's UDP sockets cannot share a port): use workers: 1 for it`;
  if (mode === 'http') return `listener ${formatAddress(l.address)} is in HTTP mode, which runs in one process for now (docs/http.md): use workers: 1 for it`;
  return null;
}

/**
 * How this process binds: alone; as a worker (adopting the primary's socket, else sharing the
 * port by SO_REUSEPORT); or as the primary: holding the socket its workers inherit (at start),
 * else only probing.
 */
export type BindRole = 'alone' | 'shared' | 'probe';

export class Listeners {
  /** The running listeners (a reload replaces the list). */
  list: ListenerRuntime[] = [];
  readonly #role: BindRole;
  readonly #diag: Diagnostics;
  readonly #clock: Clock;
  #tlsTimer: TimerHandle | null = null;
  /**
   * The primary holds the sockets of the listeners it binds at start, which its workers inherit
   * at spawn. Running workers cannot receive a descriptor later (Bun has no SCM_RIGHTS), so a
   * listener a reload adds is only probed and the workers share it by SO_REUSEPORT.
   */
  holding = true;

  constructor(role: BindRole, diag: Diagnostics, clock: Clock) {
    this.#role = role;
    this.#diag = diag;
    this.#clock = clock;
  }

  /** Why `address` cannot be bound in this role (ports shared by workers), or null. */
  problem(address: Address): string | null {
    return this.#role === 'alone' ? null : workerListenProblem(address);
  }

  /** Reads a TLS listener's certificates (before binding, so a bad one stops the start). */
  loadTls(l: ListenerRuntime): void {
    if (l.tls === null) return;
    let messages: string[];
    try {
      messages = l.tls.load(new Date(this.#clock.now()));
    } catch (e) {
      throw new FulcrumError('E_TLS_CONFIG', `listener ${l.config.name} (${formatAddress(l.config.address)}): ${(e as Error).message}`, { cause: e });
    }
    for (const m of messages) this.#diag.info(`listener ${l.config.name}: ${m}`);
    for (const c of l.tls.certificates) {
      this.#diag.debug(1, `listener ${l.config.name}: certificate ${c.subject} (${c.keyType}) for ${c.names.join(', ') || '(no names)'}${c.isDefault ? ', default' : ''}, valid until ${c.notAfter.toISOString()}`);
    }
  }

  /** Binds a listener's socket on `address` for its mode. */
  #listen(l: ListenerRuntime, address: Address): ListenHandle {
    const problem = this.problem(address);
    if (problem !== null) throw new FulcrumError('E_LISTEN', problem);
    const mode = l.mode;
    // A listener protocol of its own folder registers here (UDP: app/udp/).
    if (mode === 'udp') return udpCode().bindUdp(l, address);
    // An upgrade's new process adopts the old one's socket, a worker its primary's (inherited-sockets.ts).
    if (this.#role === 'probe' && this.holding) {
      const fd = takeInheritedFd(address);
      if (fd !== undefined) return heldHandle(address, fd);
      try {
        return holdListeningSocket(address);
      } catch (e) {
        // An upgrade's old workers hold a listener a reload added with SO_REUSEPORT: join them so.
        if ((e as { code?: unknown }).code !== 'EADDRINUSE') throw e;
      }
    }
    const options = { reusePort: this.#role !== 'alone', fd: this.#role === 'probe' ? undefined : takeInheritedFd(address) };
    if (mode === 'http') return httpCode().bindHttp(l, address, options);
    const proxied = (l.config.acceptProxy ?? null) !== null;
    if (!proxied && mode === 'plain') return this.#probed(listenTcp(address, l, options));
    const { bunTls, proxyIn } = tlsCode();
    return this.#probed(proxied ? proxyIn.listenProxied(address, l, options) : mode === 'terminate' ? bunTls.listenTls(address, l, options) : bunTls.listenPreread(address, l, options));
  }

  /** The primary keeps no socket it only probed: the kernel would queue connections nobody accepts. */
  #probed(handle: ListenHandle): ListenHandle {
    if (this.#role !== 'probe') return handle;
    handle.stop();
    return { address: handle.address, port: handle.port, stop: () => undefined };
  }

  bind(l: ListenerRuntime): void {
    const mode = l.mode;
    try {
      l.handle = this.#listen(l, l.config.address);
    } catch (e) {
      throw new FulcrumError('E_LISTEN', `cannot listen on ${formatAddress(l.config.address)}: ${listenErrorText(e)}`, { cause: e });
    }
    const proxy = (l.config.acceptProxy ?? null) !== null ? ', PROXY header first' : '';
    const what = `${formatAddress(l.config.address)} for group ${l.group.name}${mode === 'plain' ? '' : ` (${mode === 'terminate' ? 'TLS' : mode === 'udp' ? 'UDP' : mode === 'http' ? 'HTTP' : 'TLS passthrough by SNI'})`}${proxy}`;
    const held = this.#role === 'probe' && l.handle.fd !== undefined;
    this.#diag.debug(1, this.#role !== 'probe' ? `listening on ${what}` : held ? `listening on ${what} (held for the workers, which accept)` : `${what} can be bound (the workers listen)`);
  }

  /**
   * Moves a listener to another address (pen's `listen`). The new socket is bound before the
   * old one closes, so a bad address leaves the listener as it was; if the new address overlaps
   * the old one (same port), the old socket is closed first and restored if the bind fails.
   * Established connections do not belong to the listening socket and are not touched.
   */
  rebind(l: ListenerRuntime, address: Address, spec?: string): void {
    const old = l.handle;
    const oldConfig = l.config;
    const bindAt = (a: Address, s: string | undefined): void => {
      l.config = { ...oldConfig, address: a, spec: s };
      l.handle = this.#listen(l, a);
    };
    try {
      bindAt(address, spec);
    } catch {
      old?.stop();
      l.handle = null;
      try {
        bindAt(address, spec);
      } catch (e) {
        let restored = '';
        try {
          bindAt(oldConfig.address, oldConfig.spec);
        } catch (e2) {
          l.config = oldConfig;
          restored = `; the old address ${formatAddress(oldConfig.address)} could not be bound again either (${(e2 as Error).message}), so nothing is listening`;
        }
        throw new FulcrumError('E_LISTEN', `cannot listen on ${formatAddress(address)}: ${listenErrorText(e)}${restored}`, { cause: e });
      }
      this.#diag.debug(1, `listener moved from ${formatAddress(oldConfig.address)} to ${formatAddress(address)}`);
      return;
    }
    old?.stop();
    this.#diag.debug(1, `listener moved from ${formatAddress(oldConfig.address)} to ${formatAddress(address)}`);
  }

  /** Checks certificate files for changes at the shortest interval a TLS listener asks for. */
  scheduleTlsChecks(): void {
    this.#clock.clearTimer(this.#tlsTimer);
    this.#tlsTimer = null;
    const intervals = this.list.map((l) => l.tls?.config.reloadCheckMs ?? 0).filter((ms) => ms > 0);
    if (intervals.length === 0) return;
    this.#tlsTimer = this.#clock.setInterval(() => {
      for (const l of this.list) {
        if (l.tls !== null && l.tls.config.reloadCheckMs > 0 && l.tls.filesChanged()) this.#reloadListenerTls(l, 'certificate files changed');
      }
    }, Math.min(...intervals));
  }

  #reloadListenerTls(l: ListenerRuntime, why: string): string[] {
    if (l.tls === null) return [];
    const messages = l.tls.reload(new Date(this.#clock.now()));
    const errors = messages.filter((m) => m.startsWith('error:'));
    for (const m of errors) this.#diag.error(`listener ${l.config.name}: ${why}: ${m.slice(7)}`);
    const rest = messages.filter((m) => !m.startsWith('error:'));
    const line = `listener ${l.config.name}: TLS reloaded${rest.length > 0 ? ': ' + rest.join('; ') : ''}`;
    this.#diag.info(`listener ${l.config.name}: ${why}: TLS reloaded${rest.length > 0 ? ': ' + rest.join('; ') : ''}`);
    return [line, ...errors.map((m) => `listener ${l.config.name}: ${m}`)];
  }

  /**
   * Re-reads every certificate, key and CA file, of the listeners and of the groups' TLS to
   * their servers; broken files keep the old ones in service. Returns what it did.
   */
  reloadTls(groups: Iterable<GroupRuntime>, why: string): string[] {
    const report: string[] = [];
    for (const l of this.list) report.push(...this.#reloadListenerTls(l, why));
    for (const g of groups) {
      if (g.tls === null) continue;
      try {
        g.tls = new (tlsCode().material.GroupTls)(g.tls.config);
        report.push(`group ${g.name}: server TLS files re-read`);
      } catch (e) {
        const m = `${(e as Error).message}; the previous server TLS settings stay in service`;
        this.#diag.error(`group ${g.name}: ${why}: ${m}`);
        report.push(`group ${g.name}: error: ${m}`);
      }
    }
    return report;
  }

  /** Stops accepting (established connections are not the listening sockets'). */
  stop(): void {
    for (const l of this.list) l.handle?.stop();
    this.#clock.clearTimer(this.#tlsTimer);
    this.#tlsTimer = null;
  }
}
