/**
 * UDP pieces for tests (pen -U, docs/udp.md): backends that answer with their name or echo, a
 * client that asks once from a chosen source address:port and waits a bounded time for the
 * reply, a free UDP port, and readiness read from /proc/net/udp (no probe datagram, which would
 * open a session and shift round robin).
 */
import type { udp } from 'bun';
import { readFileSync } from 'node:fs';
import { DEFAULT_TIMEOUT_MS, waitFor } from './util.ts';

export interface UdpBackend {
  readonly port: number;
  /** Datagrams received, in order, with their source port. */
  readonly received: { text: string; port: number }[];
  close(): Promise<void>;
}

/** A UDP backend; `answer` makes the replies to each datagram (none: silent). */
export async function udpBackend(answer: (payload: Buffer) => (string | Uint8Array)[], host = '127.0.0.1'): Promise<UdpBackend> {
  const received: { text: string; port: number }[] = [];
  const socket = await Bun.udpSocket({
    hostname: host,
    port: 0,
    socket: {
      data(s, d, port, address) {
        received.push({ text: d.toString(), port });
        for (const r of answer(d)) s.send(r, port, address);
      },
    },
  });
  return { port: socket.port, received, close: async () => socket.close() };
}

/** Answers every datagram with its name (the UDP `identify`). */
export function udpIdentify(name: string): Promise<UdpBackend> {
  return udpBackend(() => [name]);
}

export interface UdpAsk {
  localAddress?: string;
  localPort?: number;
  timeoutMs?: number;
}

/** A client socket on a chosen source; collects what comes back. */
export class UdpClient {
  private constructor(
    readonly socket: udp.Socket<'buffer'>,
    readonly got: { data: Buffer; from: string }[],
  ) {}

  static async open(opts: UdpAsk = {}): Promise<UdpClient> {
    const got: { data: Buffer; from: string }[] = [];
    const socket = await Bun.udpSocket({
      hostname: opts.localAddress ?? '127.0.0.1',
      port: opts.localPort ?? 0,
      socket: {
        data: (_s, d, port, address) => {
          got.push({ data: d, from: `${address}:${port}` });
        },
      },
    });
    return new UdpClient(socket, got);
  }

  send(payload: string | Uint8Array, port: number, host = '127.0.0.1'): void {
    this.socket.send(payload, port, host);
  }

  /** Waits until `n` datagrams have come (bounded), and returns them as text. */
  async replies(n: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string[]> {
    await waitFor(() => this.got.length >= n, { timeoutMs, what: `${n} UDP repl${n === 1 ? 'y' : 'ies'}` });
    return this.got.map((g) => g.data.toString());
  }

  close(): void {
    this.socket.close();
  }
}

/** Sends one datagram from `opts`' source and returns the first reply's text, or '-' if none comes in time. */
export async function udpWhoServes(port: number, opts: UdpAsk = {}, payload = 'who'): Promise<string> {
  const c = await UdpClient.open(opts);
  try {
    c.send(payload, port);
    return (await c.replies(1, opts.timeoutMs ?? 2000))[0]!;
  } catch {
    return '-';
  } finally {
    c.close();
  }
}

/** A UDP port nothing is bound to at the moment. */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const s = await Bun.udpSocket({ hostname: host, port: 0 });
  const port = s.port;
  s.close();
  return port;
}

/** Whether some socket is bound to UDP `port` (from /proc/net/udp and udp6). */
export function udpBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      if (local !== undefined && `${local.slice(local.indexOf(':'))} `.startsWith(hex)) return true;
    }
  }
  return false;
}

/** Waits (bounded) until UDP `port` is bound. */
export async function waitUdpBound(port: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
  await waitFor(() => udpBound(port), { timeoutMs, what: `UDP port ${port} bound` });
}
