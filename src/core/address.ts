/**
 * Addresses as pen writes them: `host:port`, `[v6]:port`, a bare port, or a Unix socket path.
 */
import { isDigits } from './digits.ts';
import { FulcrumError } from './errors.ts';

export type Address =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

export class AddressError extends FulcrumError {
  override readonly name = 'AddressError';

  constructor(message: string, options?: ErrorOptions) {
    super('E_ADDRESS', message, options);
  }
}

export function formatAddress(a: Address): string {
  if (a.kind === 'unix') return a.path;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export function parsePort(text: string, what: string): number {
  if (!isDigits(text)) {
    const known = WELL_KNOWN_PORTS[text];
    if (known !== undefined) return known;
    throw new AddressError(`${what}: "${text}" is not a port number (1-65535) or a known service name`);
  }
  const port = Number(text);
  if (port < 1 || port > 65535) throw new AddressError(`${what}: port ${port} is outside 1-65535`);
  return port;
}

/** A few service names pen users write (pen resolves them with getservbyname). */
const WELL_KNOWN_PORTS: Readonly<Record<string, number>> = {
  ftp: 21, ssh: 22, telnet: 23, smtp: 25, domain: 53, http: 80, www: 80, pop3: 110, imap: 143,
  ldap: 389, https: 443, smtps: 465, submission: 587, imaps: 993, pop3s: 995, mysql: 3306,
  postgresql: 5432, redis: 6379,
};

export function isUnixPath(text: string): boolean {
  return text.startsWith('/') || text.startsWith('./') || text.startsWith('unix:');
}

/**
 * pen's listener argument: `[host:]port`, `[v6addr]:port`, or a Unix socket path.
 * A bare port listens on every address (pen binds INADDR_ANY).
 */
export function parseListenAddress(text: string): Address {
  if (text === '') throw new AddressError('listen address is empty');
  if (isUnixPath(text)) return { kind: 'unix', path: text.replace(/^unix:/, '') };
  if (text.startsWith('[')) {
    const m = /^\[([^\]]+)\]:(.+)$/.exec(text);
    if (!m) throw new AddressError(`listen address "${text}": expected [ipv6-address]:port`);
    return { kind: 'tcp', host: m[1]!, port: parsePort(m[2]!, `listen address "${text}"`) };
  }
  const colon = text.lastIndexOf(':');
  if (colon === -1) return { kind: 'tcp', host: '0.0.0.0', port: parsePort(text, `listen address "${text}"`) };
  const host = text.slice(0, colon);
  if (host.includes(':')) throw new AddressError(`listen address "${text}": write IPv6 addresses in brackets, e.g. [::1]:8080`);
  return { kind: 'tcp', host: host === '' ? '0.0.0.0' : host, port: parsePort(text.slice(colon + 1), `listen address "${text}"`) };
}

/** One server as given on pen's command line: `host[:port[:maxc[:hard[:weight[:prio]]]]]`. */
export interface ServerArg {
  readonly address: Address;
  readonly maxConnections: number;
  readonly hardLimit: number;
  readonly weight: number;
  readonly priority: number;
}

function parseField(text: string | undefined, name: string, spec: string): number {
  if (text === undefined || text === '') return 0;
  if (!/^\d+$/.test(text)) throw new AddressError(`server "${spec}": ${name} "${text}" is not a non-negative integer`);
  return Number(text);
}

/**
 * Parses pen's server syntax. `defaultPort` is the listener's port, used when the port is
 * omitted (as pen does). Unix socket servers are a path followed by the optional numeric fields.
 */
export function parseServerArg(spec: string, defaultPort: number | undefined): ServerArg {
  let rest: string[];
  let address: Address;
  if (isUnixPath(spec)) {
    const parts = spec.replace(/^unix:/, '').split(':');
    address = { kind: 'unix', path: parts[0]! };
    rest = parts.slice(1);
    rest.unshift('');
  } else {
    let host: string;
    let tail: string;
    if (spec.startsWith('[')) {
      const close = spec.indexOf(']');
      if (close === -1) throw new AddressError(`server "${spec}": missing "]" after the IPv6 address`);
      host = spec.slice(1, close);
      tail = spec.slice(close + 1);
      if (tail !== '' && !tail.startsWith(':')) throw new AddressError(`server "${spec}": expected ":" after "]"`);
      tail = tail.slice(1);
    } else {
      const colon = spec.indexOf(':');
      host = colon === -1 ? spec : spec.slice(0, colon);
      tail = colon === -1 ? '' : spec.slice(colon + 1);
    }
    if (host === '') throw new AddressError(`server "${spec}": the host is empty`);
    rest = tail === '' ? [] : tail.split(':');
    let port: number;
    if (rest[0] === undefined || rest[0] === '') {
      if (defaultPort === undefined) throw new AddressError(`server "${spec}": no port given and the listener has none to default to`);
      port = defaultPort;
    } else {
      port = parsePort(rest[0], `server "${spec}"`);
    }
    address = { kind: 'tcp', host, port };
  }
  if (rest.length > 5) throw new AddressError(`server "${spec}": too many fields (host:port:maxc:hard:weight:prio)`);
  return {
    address,
    maxConnections: parseField(rest[1], 'maxc', spec),
    hardLimit: parseField(rest[2], 'hard', spec),
    weight: parseField(rest[3], 'weight', spec),
    priority: parseField(rest[4], 'prio', spec),
  };
}
