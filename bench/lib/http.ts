/**
 * The HTTP row (issue 11, docs/performance.md row 8): Fulcrum `mode: http` beside HAProxy
 * `mode http` and nginx `proxy_pass`, keep-alive on both sides, each pinned to the balancer core,
 * and the direct path (the ceiling). The backend is a minimal HTTP/1.1 server in this process (on
 * the load core) that answers every request with 64 bytes and counts the connections it accepts.
 *
 * Two measurements per peer:
 * - throughput: wrk (Debian; scripts/ensure-peers.sh --bench), one thread on the load core, N
 *   keep-alive connections: requests/s, and CPU µs per request (utime + stime of the balancer's
 *   processes from /proc over wrk's run / requests; nginx: master + worker);
 * - pooling: a fresh balancer, M client keep-alive connections from this process, each making one
 *   request about every second (at a random phase) for a few seconds: how many distinct
 *   connections the backend accepted and how many were open at once. Without pooling that is M;
 *   with it, about the requests in flight, bounded by the pool.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket, TCPSocketListener } from 'bun';
import { repoRoot, spawnProcess, type RunningProcess } from '../../test/harness/process.ts';
import { errorMessage, freePort, waitFor } from '../../test/harness/util.ts';
import type { Options } from './options.ts';
import { nginxPreamble, PEERS, type PeerName } from './peers.ts';
import { childrenOf, cpuMicros, pinned, runTool } from './proc.ts';
import type { Row } from './results.ts';

/** Peers with an HTTP form, in report order. */
export const HTTP_PEERS = ['direct', 'fulcrum', 'naive', 'naive-raw', 'haproxy', 'nginx'] as const satisfies readonly PeerName[];
type HttpPeerName = (typeof HTTP_PEERS)[number];

/** Backend connections each balancer may keep per server: Fulcrum's pool, HAProxy's server maxconn, nginx's keepalive cache. */
export const HTTP_POOL = 64;
/** How often each mostly idle client makes a request. */
const POOL_INTERVAL_MS = 1_000;
/** Client connections opened at once while setting up the pooling measurement. */
const CONNECT_BATCH = 64;
const NGINX = '/usr/sbin/nginx';
const HAPROXY = '/usr/sbin/haproxy';

const BODY = 'r'.repeat(64);
const RESPONSE = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`);
const HEAD_END = Buffer.from('\r\n\r\n');
const CHUNKED_END = Buffer.from('\r\n0\r\n\r\n');

export type Log = (line: string) => void;

export interface HttpContext {
  options: Options;
  /** Core for the balancer, or null when not pinning (the load inherits this process's core). */
  balancerCpu: number | null;
  log: Log;
}

interface BackendConn {
  /** Bytes of a request head not complete yet. */
  pending: Buffer | null;
  /** Body bytes of the current request still to skip. */
  skip: number;
  /** Response bytes the socket did not take yet. */
  unsent: Buffer | null;
  closeAfter: boolean;
}

/** Counts a request head's framing: [body length, connection: close]. */
function framing(head: string): [number, boolean] {
  const lower = head.toLowerCase();
  const cl = /\r\ncontent-length:[ \t]*(\d+)/.exec(lower);
  return [cl === null ? 0 : Number(cl[1]), /\r\nconnection:[ \t]*close/.test(lower)];
}

/** The HTTP backend: answers every request with RESPONSE; counts connections accepted and open. */
export class HttpBackend {
  open = 0;
  maxOpen = 0;
  accepted = 0;
  readonly port: number;
  readonly #listener: TCPSocketListener<BackendConn>;

  constructor() {
    this.#listener = Bun.listen<BackendConn>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open: (socket) => {
          socket.data = { pending: null, skip: 0, unsent: null, closeAfter: false };
          socket.setNoDelay(true);
          this.accepted++;
          this.open++;
          if (this.open > this.maxOpen) this.maxOpen = this.open;
        },
        data: answer,
        drain: flush,
        close: () => {
          this.open--;
        },
      },
    });
    this.port = this.#listener.port;
  }

  /** Starts counting afresh: the connections open now are the base of the maximum. */
  reset(): void {
    this.accepted = 0;
    this.maxOpen = this.open;
  }

  close(): void {
    this.#listener.stop(true);
  }
}

function answer(socket: Socket<BackendConn>, chunk: Buffer): void {
  const c = socket.data;
  const buf = c.pending === null ? chunk : Buffer.concat([c.pending, chunk]);
  c.pending = null;
  let pos = 0;
  let requests = 0;
  for (;;) {
    if (c.skip > 0) {
      const n = Math.min(c.skip, buf.length - pos);
      c.skip -= n;
      pos += n;
      if (c.skip > 0) break;
    }
    const end = buf.indexOf(HEAD_END, pos);
    if (end < 0) {
      if (pos < buf.length) c.pending = Buffer.from(buf.subarray(pos));
      break;
    }
    const [length, close] = framing(buf.toString('latin1', pos, end));
    if (close) c.closeAfter = true;
    c.skip = length;
    pos = end + HEAD_END.length;
    requests++;
  }
  if (requests === 0) return;
  const out = requests === 1 ? RESPONSE : Buffer.concat(Array.from({ length: requests }, () => RESPONSE));
  c.unsent = c.unsent === null ? out : Buffer.concat([c.unsent, out]);
  flush(socket);
}

function flush(socket: Socket<BackendConn>): void {
  const c = socket.data;
  if (c.unsent !== null) {
    const written = socket.write(c.unsent);
    c.unsent = written >= c.unsent.length ? null : c.unsent.subarray(Math.max(0, written));
  }
  if (c.unsent === null && c.closeAfter) socket.end();
}

interface RunningHttpPeer {
  port: number;
  pids(): number[];
  close(): Promise<void>;
}


/** How each peer is configured, for the report's preamble. */
export const HTTP_DESCRIBE = {
  direct: 'no balancer (the ceiling)',
  fulcrum: `config file: listener mode: http, tracking: false, pool.max_per_server ${HTTP_POOL}`,
  naive: `bench/naive-http-proxy.ts: Bun.serve + a pool of ${HTTP_POOL} Bun.connect connections, X-Forwarded-For, nothing else (the runtime's floor for this design)`,
  'naive-raw': `bench/naive-http-raw.ts: the same with Bun.listen and a head splitter toward clients (no validation: what a front of our own on raw sockets could cost)`,
  haproxy: `mode http, nbthread 1, http-reuse always, server maxconn ${HTTP_POOL}`,
  nginx: `http proxy_pass, upstream keepalive ${HTTP_POOL}, proxy_http_version 1.1, Connection ""`,
} satisfies Record<HttpPeerName, string>;

async function startHttpPeer(name: HttpPeerName, backendPort: number, cpu: number | null, dir: string, maxConnections: number): Promise<RunningHttpPeer> {
  if (name === 'direct') return { port: backendPort, pids: () => [], close: async () => {} };
  const port = freePort();
  const backend = `127.0.0.1:${backendPort}`;
  let proc: RunningProcess;
  if (name === 'fulcrum') {
    const cfg = join(dir, 'fulcrum-http.yaml');
    writeFileSync(
      cfg,
      [
        'global:',
        `  max_connections: ${maxConnections}`,
        '  max_connections_per_source: 0',
        'groups:',
        '  bench:',
        '    tracking: false',
        '    servers:',
        `      - "${backend}"`,
        'listeners:',
        `  - listen: "127.0.0.1:${port}"`,
        '    group: bench',
        '    mode: http',
        `    pool: {max_per_server: ${HTTP_POOL}, idle_timeout: 60s}`,
        '',
      ].join('\n'),
    );
    proc = await spawnProcess(pinned([join(repoRoot, 'bin/fulcrum'), '--config', cfg], cpu), { name, port });
  } else if (name === 'naive' || name === 'naive-raw') {
    const script = name === 'naive' ? 'bench/naive-http-proxy.ts' : 'bench/naive-http-raw.ts';
    proc = await spawnProcess(pinned([process.execPath, join(repoRoot, script), String(port), backend, String(HTTP_POOL)], cpu), { name, port });
  } else if (name === 'haproxy') {
    const cfg = join(dir, 'haproxy-http.cfg');
    writeFileSync(
      cfg,
      [
        'global',
        '  nbthread 1',
        `  maxconn ${maxConnections}`,
        // By default HAProxy stops keeping idle server connections once 20% of its files are in
        // use (25%: it closes them), and 1,000 client connections are more than that of a maxconn
        // sized for them: every request would then get a new backend connection. Raised, so that
        // its pool is measured, not its file-pressure guard.
        '  tune.pool-low-fd-ratio 90',
        '  tune.pool-high-fd-ratio 95',
        'defaults',
        '  mode http',
        `  maxconn ${maxConnections}`,
        '  timeout connect 5s',
        '  timeout client 1h',
        '  timeout server 1h',
        '  timeout http-keep-alive 1h',
        '  timeout queue 30s',
        'frontend fe',
        `  bind 127.0.0.1:${port}`,
        '  default_backend be',
        'backend be',
        '  balance roundrobin',
        '  http-reuse always',
        `  server s1 ${backend} maxconn ${HTTP_POOL}`,
        '',
      ].join('\n'),
    );
    proc = await spawnProcess(pinned([HAPROXY, '-db', '-f', cfg], cpu), { name, port });
  } else {
    const cfg = join(dir, 'nginx-http.conf');
    const workerConnections = 2 * maxConnections + 64;
    writeFileSync(
      cfg,
      [
        ...nginxPreamble(dir, 'nginx-http', workerConnections, false),
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${join(dir, 'nginx-body')};`,
        `  proxy_temp_path ${join(dir, 'nginx-proxy')};`,
        '  keepalive_timeout 1h;',
        '  keepalive_requests 100000000;',
        `  upstream be { server ${backend}; keepalive ${HTTP_POOL}; keepalive_requests 100000000; keepalive_timeout 1h; }`,
        '  server {',
        `    listen 127.0.0.1:${port};`,
        '    location / {',
        '      proxy_pass http://be;',
        '      proxy_http_version 1.1;',
        '      proxy_set_header Connection "";',
        '    }',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    proc = await spawnProcess(pinned([NGINX, '-p', dir, '-e', join(dir, 'nginx-http-error.log'), '-c', cfg], cpu), { name, port });
  }
  return { port, pids: () => (name === 'nginx' ? [proc.pid, ...childrenOf(proc.pid)] : [proc.pid]), close: () => proc.close() };
}

export interface WrkResult {
  requests: number;
  seconds: number;
  /** Socket errors and non-2xx/3xx answers. */
  errors: number;
}

/** Reads wrk's summary ("N requests in 1.00s", socket errors, non-2xx); null if absent. */
export function parseWrk(text: string): WrkResult | null {
  const m = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(text);
  if (m === null) return null;
  const scale = { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[m[3] as 'us' | 'ms' | 's' | 'm'];
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const errors = (sock === null ? 0 : sock.slice(1, 5).reduce((s, v) => s + Number(v), 0)) + (non2xx === null ? 0 : Number(non2xx[1]));
  return { requests: Number(m[1]), seconds: Number(m[2]) * scale, errors };
}

/** Runs wrk (one thread, `connections` keep-alive connections) against `port` for `seconds` (bounded). */
function wrk(port: number, connections: number, seconds: number): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', `http://127.0.0.1:${port}/`];
  return runTool('wrk', args, seconds, parseWrk);
}

function wrkMissing(): string | null {
  return Bun.which('wrk') === null ? 'wrk is not installed (scripts/ensure-peers.sh --bench)' : null;
}

/** The HTTP row for every selected peer that has an HTTP form. */
export async function runHttp(ctx: HttpContext, dir: string): Promise<Row[]> {
  const o = ctx.options;
  const rows: Row[] = [];
  const add: Add = (peer, scenario, metric, values, errors = 0, note = '', streams = o.connections) => {
    rows.push({ peer, scenario, idle: 0, streams, metric, values, errors, note });
  };
  const backend = new HttpBackend();
  try {
    for (const name of HTTP_PEERS.filter((p) => o.peers.includes(p))) {
      const why = PEERS[name].missing();
      if (why !== null) {
        ctx.log(`[${name}] http skipped: ${why}`);
        add(name, 'http', 'req_per_s', [], 0, `skipped: ${why}`);
        continue;
      }
      const noWrk = wrkMissing();
      if (noWrk !== null) {
        ctx.log(`[${name}] http throughput skipped: ${noWrk}`);
        add(name, 'http', 'req_per_s', [], 0, `skipped: ${noWrk}`);
      } else {
        try {
          await throughput(name, backend, ctx, dir, add);
        } catch (err) {
          ctx.log(`[${name}] http failed: ${errorMessage(err)}`);
          add(name, 'http', 'req_per_s', [], 0, `failed: ${errorMessage(err).split('\n')[0]}`);
        }
      }
      try {
        await pooling(name, backend, ctx, dir, add);
      } catch (err) {
        ctx.log(`[${name}] http pooling failed: ${errorMessage(err)}`);
        add(name, 'http-pool', 'backend_conns_max', [], 0, `failed: ${errorMessage(err).split('\n')[0]}`, o.httpClients);
      }
    }
  } finally {
    backend.close();
  }
  return rows;
}

type Add = (peer: PeerName, scenario: 'http' | 'http-pool', metric: Row['metric'], values: number[], errors?: number, note?: string, streams?: number) => void;

async function throughput(name: HttpPeerName, backend: HttpBackend, ctx: HttpContext, dir: string, add: Add): Promise<void> {
  const o = ctx.options;
  const peer = await startHttpPeer(name, backend.port, ctx.balancerCpu, dir, o.connections + 200);
  // wrk counts whole seconds.
  const seconds = Math.max(1, Math.round(o.durationMs / 1000));
  const rates: number[] = [];
  const cpu: number[] = [];
  let errors = 0;
  try {
    if (Math.round(o.warmupMs / 1000) > 0) await wrk(peer.port, o.connections, Math.round(o.warmupMs / 1000));
    for (let r = 0; r < o.repeats; r++) {
      backend.reset();
      const before = cpuMicros(peer.pids());
      const res = await wrk(peer.port, o.connections, seconds);
      const used = cpuMicros(peer.pids()) - before;
      rates.push(res.requests / res.seconds);
      if (name !== 'direct') cpu.push(res.requests > 0 ? used / res.requests : NaN);
      errors += res.errors;
      ctx.log(`[${name}] http: ${Math.round(res.requests / res.seconds).toLocaleString('en-US')} req/s${name !== 'direct' ? `, ${(used / res.requests).toFixed(2)} µs CPU each` : ''}, ${res.errors} errors, ${backend.accepted} backend connections`);
    }
  } finally {
    await peer.close();
  }
  add(name, 'http', 'req_per_s', rates, errors, errors > 0 ? `${errors} failed requests (wrk: socket errors or non-2xx)` : '');
  if (name !== 'direct') add(name, 'http', 'cpu_us_per_req', cpu);
}

interface Client {
  socket: Socket<Client> | null;
  received: Buffer | null;
  waiting: boolean;
  timer: Timer | null;
}

/** True when `buf` holds one whole response (Content-Length or chunked; 64-byte bodies). */
function responseComplete(buf: Buffer): boolean {
  const end = buf.indexOf(HEAD_END);
  if (end < 0) return false;
  const head = buf.toString('latin1', 0, end).toLowerCase();
  const cl = /\r\ncontent-length:[ \t]*(\d+)/.exec(head);
  if (cl !== null) return buf.length >= end + HEAD_END.length + Number(cl[1]);
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) return buf.length >= end + CHUNKED_END.length && buf.indexOf(CHUNKED_END, end) >= 0;
  return false;
}

/**
 * M mostly idle keep-alive clients: each sends `GET /` about every POOL_INTERVAL_MS (its first at
 * a random phase) for `windowMs`, never more than one request outstanding.
 */
async function mostlyIdleClients(port: number, n: number, windowMs: number): Promise<{ answered: number; failed: number }> {
  let answered = 0;
  let failed = 0;
  let sending = true;
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  const clients: Client[] = [];
  const send = (c: Client): void => {
    c.timer = null;
    if (!sending || c.socket === null) return;
    c.waiting = true;
    c.socket.write(request);
  };
  for (let i = 0; i < n; i += CONNECT_BATCH) {
    const batch = Array.from({ length: Math.min(CONNECT_BATCH, n - i) }, async () => {
      const c: Client = { socket: null, received: null, waiting: false, timer: null };
      clients.push(c);
      c.socket = await Bun.connect<Client>({
        hostname: '127.0.0.1',
        port,
        data: c,
        socket: {
          data(socket, chunk) {
            const cl = socket.data;
            cl.received = cl.received === null ? Buffer.from(chunk) : Buffer.concat([cl.received, chunk]);
            if (!cl.waiting || !responseComplete(cl.received)) return;
            if (!cl.received.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 200')) failed++;
            else answered++;
            cl.received = null;
            cl.waiting = false;
            if (sending) cl.timer = setTimeout(() => send(cl), POOL_INTERVAL_MS);
          },
          close(socket) {
            const cl = socket.data;
            if (cl.waiting) failed++;
            cl.waiting = false;
            cl.socket = null;
          },
        },
      });
    });
    await Promise.all(batch);
  }
  for (const c of clients) c.timer = setTimeout(() => send(c), Math.random() * POOL_INTERVAL_MS);
  await Bun.sleep(windowMs);
  sending = false;
  for (const c of clients) if (c.timer !== null) clearTimeout(c.timer);
  await waitFor(() => clients.every((c) => !c.waiting), { timeoutMs: 10_000, what: 'the last requests to be answered' }).catch(() => undefined);
  for (const c of clients) {
    if (c.waiting) failed++;
    c.socket?.end();
  }
  return { answered, failed };
}

async function pooling(name: HttpPeerName, backend: HttpBackend, ctx: HttpContext, dir: string, add: Add): Promise<void> {
  const o = ctx.options;
  const n = o.httpClients;
  const windowMs = Math.max(2 * POOL_INTERVAL_MS, o.durationMs);
  const distinct: number[] = [];
  const maxOpen: number[] = [];
  const rates: number[] = [];
  let failed = 0;
  for (let r = 0; r < o.repeats; r++) {
    // A fresh balancer each time: nothing pooled by an earlier run is counted.
    await waitFor(() => backend.open === 0, { timeoutMs: 10_000, what: 'earlier backend connections to close' }).catch(() => undefined);
    const peer = await startHttpPeer(name, backend.port, ctx.balancerCpu, dir, n + 200);
    try {
      backend.reset();
      const res = await mostlyIdleClients(peer.port, n, windowMs);
      distinct.push(backend.accepted);
      maxOpen.push(backend.maxOpen);
      rates.push(res.answered / (windowMs / 1000));
      failed += res.failed;
      ctx.log(`[${name}] http pooling: ${n} clients, ${res.answered} answered, ${res.failed} failed; backend accepted ${backend.accepted}, at most ${backend.maxOpen} open`);
    } finally {
      await peer.close();
    }
  }
  const note = failed > 0 ? `${failed} requests unanswered or not 200` : '';
  add(name, 'http-pool', 'backend_conns', distinct, 0, '', n);
  add(name, 'http-pool', 'backend_conns_max', maxOpen, 0, '', n);
  add(name, 'http-pool', 'req_per_s', rates, failed, note, n);
}
