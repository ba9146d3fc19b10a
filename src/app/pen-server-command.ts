/**
 * pen's `server N field value ...` command: validates every pair first (a bad one changes
 * nothing), grows pen's server table on demand, and resolves host names when it runs.
 */
import { AddressError, parsePort } from '../core/address.ts';
import { isIpLiteral } from '../core/ip.ts';
import type { AdminState, Server } from '../core/servers/server.ts';
import type { Balancer } from './balancer.ts';
import { aclIndex, CommandError, int, seconds } from './pen-command-args.ts';
import type { GroupRuntime } from './runtime.ts';

/** Host names in `server N address NAME` are resolved when the command runs, as pen does. */
export async function resolveServerAddress(args: string[]): Promise<string[]> {
  const i = args.indexOf('address');
  const name = i > 0 && i % 2 === 1 ? args[i + 1] : undefined;
  if (name === undefined || isIpLiteral(name.replace(/^\[|\]$/g, ''))) return args;
  try {
    const found = await process.getBuiltinModule('node:dns/promises').lookup(name);
    const out = [...args];
    out[i + 1] = found.address;
    return out;
  } catch (e) {
    throw new CommandError(`server address: cannot resolve "${name}": ${(e as Error).message}`);
  }
}

/** `server N [acl A] [address A] [port P] [max M] [hard H] [blacklist T] [weight W] [prio P]` */
export function serverCommand(b: Balancer, g: GroupRuntime, args: string[]): string {
  const n = int(args[0], 'server');
  if (n > 4096) throw new CommandError(`server: index ${n} is too large`);
  if (args.length < 3 || args.length % 2 === 0) {
    throw new CommandError('server N acl A | address A | port P | max M | hard H | blacklist T | weight W | prio P | state enabled|drain|maintenance ...');
  }
  const servers = g.selector.servers;
  // Validate everything first, so that a bad pair changes nothing.
  const updates: ((s: Server) => void)[] = [];
  let address: string | undefined;
  let port: number | undefined;
  let state: AdminState | undefined;
  for (let i = 1; i < args.length; i += 2) {
    const key = args[i]!;
    const value = args[i + 1]!;
    switch (key) {
      case 'acl': {
        const a = aclIndex(value, 'server acl');
        updates.push((s) => (s.acl = a));
        break;
      }
      case 'address':
        if (value.includes('/') || value === '') throw new CommandError(`server address: "${value}" is not a host address`);
        address = value.replace(/^\[|\]$/g, '');
        break;
      case 'port':
        try {
          port = parsePort(value, 'server port');
        } catch (e) {
          throw new CommandError((e as AddressError).message);
        }
        break;
      case 'max': {
        const v = int(value, 'server max');
        updates.push((s) => (s.maxConnections = v));
        break;
      }
      case 'hard': {
        const v = int(value, 'server hard');
        updates.push((s) => (s.hardLimit = v));
        break;
      }
      case 'weight': {
        const v = int(value, 'server weight');
        updates.push((s) => (s.weight = v));
        break;
      }
      case 'prio': {
        const v = int(value, 'server prio');
        updates.push((s) => (s.priority = v));
        break;
      }
      case 'blacklist': {
        const ms = seconds(value, 'server blacklist');
        updates.push((s) => (s.blacklistedUntilMs = b.clock.now() + ms));
        break;
      }
      case 'state':
        // Fulcrum's addition: drain (no new clients, established ones continue), maintenance, enabled.
        if (value !== 'enabled' && value !== 'drain' && value !== 'maintenance') throw new CommandError(`server state: "${value}" is not enabled, drain or maintenance`);
        state = value;
        break;
      default:
        throw new CommandError(`server: unknown field "${key}" (acl, address, port, max, hard, blacklist, weight, prio, state)`);
    }
  }
  // pen grows its server table on demand; new slots stay out of rotation until they have
  // both an address and a port.
  while (servers.length <= n) {
    const s = b.createServer(servers.length, { address: { kind: 'tcp', host: '0.0.0.0', port: 0 }, maxConnections: 0, hardLimit: 0, weight: 0, priority: 0, acl: 0 });
    s.admin = 'maintenance';
    s.downReason = 'unconfigured';
    servers.push(s);
  }
  const s = servers[n]!;
  if (address !== undefined || port !== undefined) {
    const old = s.address;
    const host = address ?? (old.kind === 'tcp' ? old.host : '0.0.0.0');
    const p = port ?? (old.kind === 'tcp' ? old.port : 0);
    s.address = { kind: 'tcp', host, port: p };
    if (s.downReason === 'unconfigured' && host !== '0.0.0.0' && p !== 0) {
      s.admin = 'enabled';
      s.downReason = '';
    }
  }
  for (const u of updates) u(s);
  if (state !== undefined && s.downReason !== 'unconfigured') b.setServerState(g.name, n, state, 'server command');
  g.selector.serversChanged();
  b.serversChanged();
  return '';
}
