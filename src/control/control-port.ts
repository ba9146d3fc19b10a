/**
 * pen's control port (-C): one command per connection, the reply, then the server closes, so the
 * real penctl(1) works against Fulcrum unchanged. This layer knows the protocol rules — who may
 * connect (pen's control_acl), one command at a time, error replies, counting misbehaviour — and
 * nothing about what the commands mean: the caller passes `run` (pen's command language lives in
 * app/pen-commands.ts).
 *
 * Unlike pen, which reads the command with a blocking recv() in its event loop, a client that
 * sends nothing, sends garbage or sends a huge line cannot hold up the balancer: the socket layer
 * that app injects (dataplane/control-socket.ts's listenLines) bounds each connection's buffer,
 * time and number. This file declares what it needs of that layer (LineListen) and imports none.
 */
import type { Address } from '../core/address.ts';
import type { JunkReason, LineReply, LineService } from '../core/line-service.ts';
import { parseClientIp, type ClientIp } from '../core/ip.ts';

export interface LineListenHandle {
  /** The bound TCP port (useful with port 0); 0 for Unix sockets. */
  readonly port: number;
  /** Open control connections right now. */
  readonly open: number;
  stop(): void;
}

/** Binds a request/reply line socket (one line in, one reply out, then close); throws if it cannot. */
export type LineListen = (
  address: Address,
  service: LineService,
  limits: { maxLineBytes: number; timeoutMs: number; firstByteTimeoutMs: number; maxConnections: number },
) => LineListenHandle;

export interface ControlReply {
  /** The reply text; empty for pen's silent setters. */
  reply: string;
  /** Runs after the reply has gone out and the connection closed (e.g. `exit`). */
  after?: () => void;
}

export interface ControlPortOptions {
  address: Address;
  /** The socket layer (app passes dataplane/control-socket.ts's listenLines). */
  listen: LineListen;
  /** pen's control_acl check; Unix-socket clients come with family 0 (pen always permits them). */
  permits(client: ClientIp): boolean;
  /** Executes one command line; a thrown Error becomes an `error: ...` reply. */
  run(line: string): Promise<ControlReply>;
  /** Debug output (level as pen's -d). */
  log(level: number, message: string): void;
  /** Time to send the command line, and again to take the reply. Default 10 s. */
  timeoutMs?: number;
  /**
   * Time to send the first byte. Default 3 s: penctl and `fulcrum ctl` send their line at once, so
   * a connection that stays silent is idle, and it should not hold a slot as long as a slow one.
   */
  firstByteTimeoutMs?: number;
  /** Longest command line accepted, as pen's 4 KiB read buffer. */
  maxLineBytes?: number;
  /** Control connections open at once; beyond it the idlest is given up, else the new one is refused. */
  maxConnections?: number;
}

/** Counters since start; read in O(1). */
export interface ControlStats {
  connections: number;
  commands: number;
  /** Commands that were answered with an error. */
  errors: number;
  /** Connections refused by control_acl. */
  denied: number;
  /** Connections refused because too many were open. */
  busy: number;
  /** Idle connections closed to make room for a new one. */
  evicted: number;
  binary: number;
  tooLong: number;
  timeouts: number;
}

export const CONTROL_DEFAULTS = { timeoutMs: 10_000, firstByteTimeoutMs: 3000, maxLineBytes: 4096, maxConnections: 32 } as const;

function displayRemote(remote: string): string {
  return remote === '' ? 'unix socket' : remote;
}

export class ControlPort {
  readonly options: ControlPortOptions;
  readonly stats: ControlStats = { connections: 0, commands: 0, errors: 0, denied: 0, busy: 0, evicted: 0, binary: 0, tooLong: 0, timeouts: 0 };
  #handle: LineListenHandle | null = null;
  /** Commands run one after the other, as in pen (a command sees the effects of the previous one). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ControlPortOptions) {
    this.options = options;
  }

  get port(): number {
    return this.#handle?.port ?? 0;
  }

  get openConnections(): number {
    return this.#handle?.open ?? 0;
  }

  /** Binds the port; throws if it cannot. */
  start(): void {
    const o = this.options;
    this.#handle = o.listen(
      o.address,
      {
        admit: (remote) => this.#admit(remote),
        request: (line, remote) => this.#request(line, remote),
        junk: (reason, remote) => this.#junk(reason, remote),
        busy: (remote) => {
          this.stats.busy++;
          o.log(1, `control: refused ${displayRemote(remote)}: too many control connections`);
        },
        evicted: (remote) => {
          this.stats.evicted++;
          o.log(1, `control: gave up the idle connection from ${displayRemote(remote)} to make room`);
        },
      },
      {
        timeoutMs: o.timeoutMs ?? CONTROL_DEFAULTS.timeoutMs,
        firstByteTimeoutMs: o.firstByteTimeoutMs ?? CONTROL_DEFAULTS.firstByteTimeoutMs,
        maxLineBytes: o.maxLineBytes ?? CONTROL_DEFAULTS.maxLineBytes,
        maxConnections: o.maxConnections ?? CONTROL_DEFAULTS.maxConnections,
      },
    );
  }

  stop(): void {
    this.#handle?.stop();
    this.#handle = null;
  }

  /** One line for statistics output. */
  statsLine(): string {
    const s = this.stats;
    return (
      `control: ${s.connections} connections, ${s.commands} commands, ${s.errors} errors, ${s.denied} denied by control_acl, ` +
      `${s.busy} refused (busy), ${s.binary} binary, ${s.tooLong} too long, ${s.timeouts} timed out, ${s.evicted} idle given up for room`
    );
  }

  #admit(remote: string): string | null {
    this.stats.connections++;
    if (this.options.permits(parseClientIp(remote))) return null;
    this.stats.denied++;
    this.options.log(1, `control: ${displayRemote(remote)} is not permitted by control_acl`);
    return 'error: not permitted by control_acl\n';
  }

  #request(line: string, remote: string): Promise<LineReply> {
    this.stats.commands++;
    this.options.log(2, `control: ${displayRemote(remote)}: ${line}`);
    const result = this.#queue.then(async (): Promise<LineReply> => {
      try {
        const r = await this.options.run(line);
        return { text: r.reply, after: r.after };
      } catch (e) {
        this.stats.errors++;
        const message = e instanceof Error ? e.message : String(e);
        this.options.log(1, `control: ${displayRemote(remote)}: ${line}: ${message}`);
        return { text: `error: ${message}\n` };
      }
    });
    this.#queue = result;
    return result;
  }

  #junk(reason: JunkReason, remote: string): string {
    const o = this.options;
    let text: string;
    switch (reason) {
      case 'binary':
        this.stats.binary++;
        text = 'error: binary data is not a command\n';
        break;
      case 'too-long':
        this.stats.tooLong++;
        text = `error: command longer than ${o.maxLineBytes ?? CONTROL_DEFAULTS.maxLineBytes} bytes\n`;
        break;
      case 'timeout':
        this.stats.timeouts++;
        text = `error: no command within ${(o.timeoutMs ?? CONTROL_DEFAULTS.timeoutMs) / 1000} s\n`;
        break;
      case 'silent':
        this.stats.timeouts++;
        text = `error: no command within ${Math.min(o.firstByteTimeoutMs ?? CONTROL_DEFAULTS.firstByteTimeoutMs, o.timeoutMs ?? CONTROL_DEFAULTS.timeoutMs) / 1000} s\n`;
        break;
    }
    o.log(1, `control: ${displayRemote(remote)}: ${text.slice(7, -1)}`);
    return text;
  }
}
