/**
 * Helpers for the health and lifecycle tests: a Balancer in this process from YAML text (so
 * tests can read server states and counters), and backends that answer checks in the ways that
 * matter (HTTP with a switchable status and delay, banners, agents).
 */
import { Balancer, resolveConfig, type Diagnostics } from '../../src/app/balancer.ts';
import type { GroupRuntime } from '../../src/app/runtime.ts';
import type { Server } from '../../src/core/servers/server.ts';
import { formatIssue, parseConfigText } from '../../src/config/yaml/parse.ts';
import type { Backend, Conn, Harness } from '../harness/index.ts';
import { freePort, waitFor } from '../harness/index.ts';

/** A state change as the group saw it, with the server's check counters at that moment. */
export interface Transition {
  group: string;
  server: Server;
  up: boolean;
  checksFailed: number;
  checksPassed: number;
}

export interface InProcessYaml {
  balancer: Balancer;
  transitions: Transition[];
  port: number;
  messages: string[];
  group(name?: string): GroupRuntime;
  /** The group's primaries, then backups. */
  server(index: number, group?: string): Server;
  backup(index: number, group?: string): Server;
}

/** Starts a balancer from YAML text; `LISTEN` in the text is replaced by a free loopback address. */
export async function startYaml(h: Harness, yaml: string): Promise<InProcessYaml> {
  const port = freePort();
  const r = parseConfigText(yaml.replaceAll('LISTEN', `127.0.0.1:${port}`), 'test.yaml');
  if ('errors' in r) throw new Error(r.errors.map(formatIssue).join('\n'));
  const messages: string[] = [];
  const diag: Diagnostics = {
    info: (m) => messages.push(m),
    error: (m) => messages.push('error: ' + m),
    debug: (_l, m) => messages.push('debug: ' + m),
  };
  const balancer = new Balancer(await resolveConfig(r.config), diag);
  const transitions: Transition[] = [];
  for (const g of balancer.groups.values()) {
    const original = g.serverChanged.bind(g);
    g.serverChanged = (server, up) => {
      transitions.push({ group: g.name, server, up, checksFailed: server.checksFailed, checksPassed: server.checksPassed });
      original(server, up);
    };
  }
  balancer.start();
  h.defer(() => balancer.stop());
  const group = (name = 'app'): GroupRuntime => {
    const g = balancer.groups.get(name);
    if (g === undefined) throw new Error(`no group ${name}`);
    return g;
  };
  return {
    balancer,
    transitions,
    port,
    messages,
    group,
    server: (i, g) => group(g).servers[i]!,
    backup: (i, g) => group(g).selector.backups[i]!,
  };
}

/** Waits until `s` reaches `status` ('up', 'down', ...), naming what it saw on timeout. */
export function waitForStatus(b: InProcessYaml, s: Server, status: string, timeoutMs = 10_000): Promise<unknown> {
  return waitFor(() => s.status(b.balancer.clock.now()) === status, {
    timeoutMs,
    what: `server ${s.index} to be ${status}`,
    details: () => `it is ${s.status(b.balancer.clock.now())} (${s.downReason}); log:\n${b.messages.join('\n')}`,
  });
}

export interface HttpHealth {
  backend: Backend;
  /** Status answered from now on. */
  status: number;
  /** Delay before answering (ms). */
  delayMs: number;
  body: string;
  requests: number;
}

/** An HTTP health endpoint whose status, delay and body the test can change. */
export function httpHealth(h: Harness, status = 200, port?: number): HttpHealth {
  const state: HttpHealth = { backend: undefined as unknown as Backend, status, delayMs: 0, body: 'ok', requests: 0 };
  let buffered = new WeakMap<Conn, string>();
  state.backend = h.custom(
    'http-health',
    {
      data(conn, chunk) {
        const text = (buffered.get(conn) ?? '') + chunk.toString('latin1');
        buffered.set(conn, text);
        if (!text.includes('\r\n\r\n')) return;
        state.requests++;
        const answer = (): void => {
          if (conn.closed) return;
          const body = state.body;
          conn.write(`HTTP/1.1 ${state.status} X\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
          conn.end();
        };
        if (state.delayMs > 0) setTimeout(answer, state.delayMs);
        else answer();
      },
    },
    port === undefined ? {} : { port },
  );
  buffered = new WeakMap();
  return state;
}

/**
 * Waits for `s` to change to down (or up), and returns how many checks failed (passed) from its
 * previous change, or from the start, to this one.
 */
export async function checksToChange(b: InProcessYaml, s: Server, up: boolean, nth = 1, timeoutMs = 10_000): Promise<number> {
  const mine = (): Transition[] => b.transitions.filter((t) => t.server === s);
  const found = await waitFor(
    () => {
      const list = mine();
      let seen = 0;
      for (let i = 0; i < list.length; i++) if (list[i]!.up === up && ++seen === nth) return { t: list[i]!, prev: list[i - 1] };
      return undefined;
    },
    { timeoutMs, what: `server ${s.index} to go ${up ? 'up' : 'down'}`, details: () => `it is ${s.status(Date.now())} (${s.downReason}); log:\n${b.messages.join('\n')}` },
  );
  return up ? found.t.checksPassed - (found.prev?.checksPassed ?? 0) : found.t.checksFailed - (found.prev?.checksFailed ?? 0);
}

/** Writes `banner` on accept, then holds the connection (SMTP-like greeters). */
export function banner(h: Harness, text: string): Backend {
  return h.custom('banner', { open: (conn) => conn.write(text), data: () => undefined, end: () => undefined });
}

/** A Redis-like PING responder. */
export function pong(h: Harness, reply = '+PONG\r\n'): Backend {
  return h.custom('pong', {
    data(conn, chunk) {
      if (chunk.toString().includes('PING')) conn.write(reply);
    },
  });
}

/** An agent that answers `state.reply` and closes. */
export function agent(h: Harness, reply: string): { backend: Backend; reply: string } {
  const state = { backend: undefined as unknown as Backend, reply };
  state.backend = h.custom('agent', {
    open(conn) {
      conn.write(state.reply + '\n');
      conn.end();
    },
  });
  return state;
}
