/**
 * pen's command language (penctl(1)), shared by the -F file, -o options, SIGHUP re-reads and
 * the control port. Commands act on the first server group, which is the only group when
 * Fulcrum runs from pen's command line. Replies are pen 0.34.1's, byte for byte where a script
 * may parse them (see docs/penctl.md): a getter answers its value on one line, and answers the
 * new value when given one; a setter answers nothing. Unlike pen, a bad command throws a
 * CommandError (the control port answers it as an "error:" line) and changes nothing.
 */
import { AclError, AclTable, formatAclEntry, parseAclEntry } from '../core/acl/acl.ts';
import { AddressError, formatAddress, parseListenAddress } from '../core/address.ts';
import type { AlgorithmName } from '../core/balancing/registry.ts';
import type { Balancer } from './balancer.ts';
import { readBoundedText, writeFileWhole } from './files.ts';
import { LogFile } from './log-file.ts';
import { aclIndex, CommandError, int, seconds } from './pen-command-args.ts';
import { formatConnection, formatRecent, formatServers, localTimestamp, penStatusHtml } from './pen-reports.ts';
import { resolveServerAddress, serverCommand } from './pen-server-command.ts';
import { sslCommand } from './pen-ssl-commands.ts';
import type { GroupRuntime } from './runtime.ts';

export { CommandError } from './pen-command-args.ts';

/** pen's algorithm flags; pen picks by prio, then weight, then hash, then round robin. */
export interface PenFlags {
  prio: boolean;
  weight: boolean;
  hash: boolean;
}

export function algorithmFromFlags(f: PenFlags): AlgorithmName {
  return f.prio ? 'prio' : f.weight ? 'weight' : f.hash ? 'hash' : 'roundrobin';
}

export function flagsFromAlgorithm(a: AlgorithmName): PenFlags {
  return { prio: a === 'prio', weight: a === 'weight', hash: a === 'hash' };
}

/** Commands pen has that mean nothing here, with the reason given to the user. */
const NOT_APPLICABLE: Readonly<Record<string, string>> = {
  select: 'Fulcrum always uses the runtime\'s epoll event loop',
  poll: 'Fulcrum always uses the runtime\'s epoll event loop',
  kqueue: 'Fulcrum always uses the runtime\'s epoll event loop',
  epoll: 'Fulcrum always uses the runtime\'s epoll event loop',
  dsr_if: 'direct server return needs raw sockets, which Fulcrum does not use',
  dsr_ip: 'direct server return needs raw sockets, which Fulcrum does not use',
  tarpit_acl: 'tarpitting is part of pen\'s direct server return mode, which Fulcrum does not have',
  transparent: 'transparent proxying needs IP_TRANSPARENT, which the runtime does not expose',
  idlers: 'reliable idle connections are not implemented',
  dummy: 'the dummy web server is not implemented',
  abort_on_error: 'Fulcrum reports fatal errors and exits; it never dumps core on purpose',
  block: 'obsolete in pen since 0.26.0',
  delayed_forward: 'obsolete in pen since 0.26.0',
  source: 'choosing the source address of server connections is not supported by the runtime\'s connect API',
  socket: 'Fulcrum does not expose file descriptor numbers',
  keepalive: 'TCP keepalive on server connections is not supported by the runtime\'s socket API',
  peek: 'server selection after the first bytes is not implemented',
  http: 'HTTP X-Forwarded-For insertion (-H) is not available in this version',
};

export interface CommandContext {
  /** Directory that relative paths in `include` resolve against. */
  baseDir?: string;
  /** Enables `exit` (pen's -X). */
  allowExit?: boolean;
  /** Called by `exit`. */
  exit?: () => void;
  /** `reload` (control port only): re-reads --config or -F as SIGHUP does; resolves to the report. */
  reload?: () => Promise<string>;
}

export class PenCommands {
  readonly #b: Balancer;
  flags: PenFlags;

  constructor(balancer: Balancer) {
    this.#b = balancer;
    this.flags = flagsFromAlgorithm(balancer.defaultGroup.config.algorithm);
  }

  get #group(): GroupRuntime {
    return this.#b.defaultGroup;
  }

  #setFlag(name: keyof PenFlags, on: boolean): void {
    this.flags[name] = on;
    const g = this.#group;
    const algorithm = algorithmFromFlags(this.flags);
    if (algorithm !== g.config.algorithm) g.setAlgorithm(algorithm, this.#b.random);
  }

  /** Runs every line of a command file; errors name the file and line. */
  async runFile(path: string, ctx: CommandContext = {}): Promise<string> {
    let text: string;
    try {
      // Bounded (files.ts): a wrong path such as /dev/zero is refused, not read to its end.
      text = readBoundedText(path, 'command file');
    } catch (e) {
      throw new CommandError(`${path}: ${(e as Error).message}`);
    }
    let out = '';
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      try {
        out += await this.execute(lines[i]!, ctx);
      } catch (e) {
        throw new CommandError(`${path}:${i + 1}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /** Executes one command line; returns the reply (possibly empty); throws CommandError. */
  async execute(line: string, ctx: CommandContext = {}): Promise<string> {
    const words = line.trim().split(/\s+/).filter((w) => w !== '');
    if (words.length === 0 || words[0]!.startsWith('#')) return '';
    let negate = false;
    if (words[0] === 'no') {
      negate = true;
      words.shift();
    }
    const [cmd, ...args] = words as [string, ...string[]];
    if (cmd === undefined) throw new CommandError('"no" needs a command after it');
    const b = this.#b;
    const g = this.#group;
    const na = NOT_APPLICABLE[cmd];
    if (na !== undefined) throw new CommandError(`${cmd}: not supported: ${na}`);
    if (cmd.startsWith('ssl_')) return sslCommand(b, cmd, args);
    switch (cmd) {
      case 'acl': {
        const list = int(args[0], 'acl');
        try {
          AclTable.checkIndex(list);
          if (negate) {
            b.acls.clear(list);
            return '';
          }
          const verdict = args[1];
          if (verdict !== 'permit' && verdict !== 'deny') throw new CommandError('acl N permit|deny ADDRESS [MASK]');
          b.acls.add(list, parseAclEntry(verdict === 'permit', args.slice(2)));
        } catch (e) {
          if (e instanceof AclError) throw new CommandError(`acl: ${e.message}`);
          throw e;
        }
        return '';
      }
      case 'ascii':
        b.global.asciiDumps = !negate;
        return '';
      case 'blacklist':
        if (args[0] !== undefined) {
          g.config.blacklistMs = seconds(args[0], 'blacklist');
          g.syncSettings();
        }
        return `${g.config.blacklistMs / 1000}\n`;
      case 'client_acl':
        if (args[0] !== undefined) {
          g.config.clientAcl = aclIndex(args[0], 'client_acl');
          g.syncSettings();
        }
        return `${g.config.clientAcl}\n`;
      case 'control_acl':
        if (args[0] !== undefined) b.global.controlAcl = aclIndex(args[0], 'control_acl');
        return `${b.global.controlAcl}\n`;
      case 'control':
        if (b.global.control === null) throw new CommandError('control: no control port (start with -C)');
        return `${b.global.control}\n`;
      case 'clients_max':
        if (args[0] !== undefined) {
          g.config.clientsMax = int(args[0], 'clients_max', 1);
          g.syncSettings();
        }
        return `${g.config.clientsMax}\n`;
      case 'conn_max':
        if (args[0] !== undefined) b.global.maxConnections = int(args[0], 'conn_max', 1);
        return `${b.global.maxConnections}\n`;
      case 'pending_max':
        if (args[0] === undefined) return `${b.global.pendingMax}\n`;
        b.global.pendingMax = int(args[0], 'pending_max', 1);
        return '';
      case 'debug':
        if (args[0] !== undefined) b.global.debug = int(args[0], 'debug');
        return `${b.global.debug}\n`;
      case 'hash':
        this.#setFlag('hash', !negate);
        return '';
      case 'prio':
        this.#setFlag('prio', !negate);
        return '';
      case 'weight':
        this.#setFlag('weight', !negate);
        return '';
      case 'roundrobin':
        // pen: "roundrobin" = round robin without client tracking (and, with hash, port mixing).
        g.config.tracking = negate;
        g.config.hashSourcePort = !negate;
        g.syncSettings();
        return '';
      case 'stubborn':
        g.config.stubborn = !negate;
        g.syncSettings();
        return '';
      case 'idle_timeout':
        if (args[0] !== undefined) b.global.idleTimeoutMs = seconds(args[0], 'idle_timeout');
        return `Idle timeout: ${b.global.idleTimeoutMs / 1000} seconds\n`;
      case 'timeout':
        if (args[0] !== undefined) g.config.connectTimeoutMs = seconds(args[0], 'timeout', { minMs: 1000 });
        return `${g.config.connectTimeoutMs / 1000}\n`;
      case 'tracking':
        if (args[0] !== undefined) {
          g.config.trackingMs = seconds(args[0], 'tracking');
          g.syncSettings();
        }
        return `${g.config.trackingMs / 1000}\n`;
      case 'tcp_nodelay':
        b.global.tcpNoDelay = !negate;
        return '';
      case 'tcp_fastclose': {
        if (negate) {
          b.global.tcpFastClose = 'off';
          return '';
        }
        const v = args[0];
        if (v === undefined) return `${b.global.tcpFastClose}\n`;
        if (v !== 'up' && v !== 'down' && v !== 'both' && v !== 'off') throw new CommandError('tcp_fastclose up|down|both|off');
        b.global.tcpFastClose = v;
        return '';
      }
      case 'log':
        if (negate) {
          await b.log?.close();
          b.log = null;
          b.global.logFile = null;
          return '';
        }
        if (args[0] === undefined) return b.global.logFile === null ? '' : `${b.global.logFile}\n`;
        if (args[0].includes(':') && !args[0].startsWith('/')) {
          throw new CommandError(`log: "${args[0]}" looks like pen's host:port network log, which Fulcrum does not have; give a file path`);
        }
        {
          // Open the new file first: if it fails, the old log stays.
          let next: LogFile;
          try {
            next = new LogFile(args[0]);
          } catch (e) {
            throw new CommandError(`log: cannot open ${args[0]}: ${(e as Error).message}`);
          }
          await b.log?.close();
          b.log = next;
        }
        b.global.logFile = args[0];
        return `${args[0]}\n`;
      case 'web_stats':
        if (negate) {
          b.global.statusFile = null;
          return '';
        }
        if (args[0] !== undefined) b.global.statusFile = args[0];
        return b.global.statusFile === null ? '' : `${b.global.statusFile}\n`;
      case 'include': {
        const file = args[0];
        if (file === undefined) throw new CommandError('include FILE');
        const path = file.startsWith('/') || ctx.baseDir === undefined ? file : `${ctx.baseDir}/${file}`;
        // pen prints an included file's replies on its own stdout, not to the control client.
        await this.runFile(path, ctx);
        return '';
      }
      case 'server':
        return serverCommand(b, this.#group, await resolveServerAddress(args));
      case 'servers':
        return formatServers(g);
      case 'mode':
        return this.#mode();
      case 'pid':
        return `${process.pid}\n`;
      case 'recent':
        return formatRecent(b, g, args[0] === undefined ? 300 : seconds(args[0], 'recent') / 1000);
      case 'connection':
        this.#inWorkers(cmd);
        return formatConnection(b, int(args[0], 'connection'));
      case 'close': {
        this.#inWorkers(cmd);
        const id = int(args[0], 'close');
        const session = b.sessions.get(id);
        if (session === undefined || session.finished) return `Connection ${id} out of range\n`;
        session.close('closed-by-operator', false);
        return `Forcibly closing connection ${id}\n`;
      }
      case 'status': {
        const html = penStatusHtml(b, g);
        const file = b.global.statusFile;
        if (file !== null) {
          try {
            await writeFileWhole(file, html);
          } catch (e) {
            b.diag.error(`cannot write ${file}: ${(e as Error).message}`);
          }
        }
        return html;
      }
      case 'listen':
        if (args[0] !== undefined) this.#listen(args[0]);
        return b.listeners.map((l) => l.config.spec ?? formatAddress(l.config.address)).join('\n') + '\n';
      case 'reload':
        if (ctx.reload === undefined) throw new CommandError('reload is a control port command (in a command file, it would re-read itself)');
        return ctx.reload();
      case 'write': {
        const file = args[0] ?? b.global.commandFile;
        if (file === null || file === undefined) throw new CommandError('write: no file given and no -F file to write to');
        await writeFileWhole(file, this.dump());
        return '';
      }
      case 'exit':
        if (ctx.allowExit !== true || ctx.exit === undefined) throw new CommandError('Exit is not enabled; restart with -X flag');
        ctx.exit();
        return '';
      default:
        throw new CommandError(`unknown command "${cmd}"`);
    }
  }

  /** With workers, connections live in the worker processes: the primary cannot show or close one. */
  #inWorkers(cmd: string): void {
    if (this.#b.mode === 'primary') {
      throw new CommandError(`${cmd}: connections are held by the worker processes (--workers), not by the process answering here`);
    }
  }

  /** pen's `listen [addr:]port`: moves the (first) listener; established connections stay. */
  #listen(spec: string): void {
    const b = this.#b;
    const l = b.listeners[0];
    if (l === undefined) throw new CommandError('listen: there is no listener to move');
    let address;
    try {
      address = parseListenAddress(spec);
    } catch (e) {
      throw new CommandError(`listen: ${(e as AddressError).message}`);
    }
    try {
      b.rebind(l, address, spec);
    } catch (e) {
      throw new CommandError(`listen: ${(e as Error).message}`);
    }
  }

  /** pen's order: hash, roundrobin, stubborn, weight, prio. */
  #mode(): string {
    const c = this.#group.config;
    const parts = [
      this.flags.hash ? 'hash' : 'no hash',
      c.tracking ? 'no roundrobin' : 'roundrobin',
      c.stubborn ? 'stubborn' : 'no stubborn',
      this.flags.weight ? 'weight' : 'no weight',
      this.flags.prio ? 'prio' : 'no prio',
    ];
    return parts.join(' ') + '\n';
  }

  /** The running configuration as pen commands (for `write`). */
  dump(): string {
    const b = this.#b;
    const g = this.#group;
    const c = g.config;
    const lines: string[] = [`# Generated by fulcrum ${localTimestamp(new Date(b.clock.now()))}`];
    for (let list = 0; list < 10; list++) {
      lines.push(`no acl ${list}`);
      for (const e of b.acls.entries(list)) lines.push(formatAclEntry(list, e));
    }
    lines.push(b.global.asciiDumps ? 'ascii' : 'no ascii');
    lines.push(`blacklist ${c.blacklistMs / 1000}`);
    lines.push(`client_acl ${c.clientAcl}`);
    lines.push(`control_acl ${b.global.controlAcl}`);
    lines.push(`debug ${b.global.debug}`);
    lines.push(this.flags.hash ? 'hash' : 'no hash');
    lines.push(`idle_timeout ${b.global.idleTimeoutMs / 1000}`);
    lines.push(b.global.logFile === null ? 'no log' : `log ${b.global.logFile}`);
    lines.push(`pending_max ${b.global.pendingMax}`);
    lines.push(this.flags.prio ? 'prio' : 'no prio');
    lines.push(c.tracking ? 'no roundrobin' : 'roundrobin');
    for (const s of g.selector.servers) {
      const a = s.address;
      if (a.kind !== 'tcp') continue;
      lines.push(`server ${s.index} acl ${s.acl} address ${a.host} port ${a.port} max ${s.maxConnections} hard ${s.hardLimit} weight ${s.weight} prio ${s.priority}`);
    }
    lines.push(c.stubborn ? 'stubborn' : 'no stubborn');
    lines.push(`tcp_fastclose ${b.global.tcpFastClose}`);
    lines.push(b.global.tcpNoDelay ? 'tcp_nodelay' : 'no tcp_nodelay');
    lines.push(`timeout ${c.connectTimeoutMs / 1000}`);
    lines.push(`tracking ${c.trackingMs / 1000}`);
    lines.push(b.global.statusFile === null ? 'no web_stats' : `web_stats ${b.global.statusFile}`);
    lines.push(this.flags.weight ? 'weight' : 'no weight');
    return lines.join('\n') + '\n';
  }
}

