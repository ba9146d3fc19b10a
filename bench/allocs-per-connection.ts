/**
 * Heap objects allocated per proxied connection, and heap bytes held per open one, inside the
 * balancer's process (docs/performance.md, issue 10):
 *
 *   bun bench/allocs-per-connection.ts [--connections N] [--batch B] [--held K] [--peer fulcrum|naive] [-- fulcrum args]
 *
 * The balancer runs in a child process (an in-process Balancer from pen's command line,
 * `-f -x K+100 [fulcrum args] LISTEN BACKEND`, so client tracking is on unless `-- -r` is given;
 * or the naive Bun proxy, the runtime's floor); the backend and the client
 * run here, so that only the balancer's own allocations are counted. Counts, not times: it can
 * run on a busy machine.
 *
 * - **Allocated per connection.** JSC counts every cell allocated since the last collection as
 *   live until the next one, so the child collects fully (Bun.gc(true)), reads heapStats'
 *   objectTypeCounts, lets B connections pass one after another (a 64-byte request, a 64-byte
 *   response, then the backend closes), waits for the sessions to end and reads the counts
 *   again. A batch during which any collection ran (a WeakRef made after the first reading is
 *   cleared) is thrown away and run again. The same exchange with no connection is the
 *   baseline subtracted. Allocations the JIT sinks (never materialised) are not counted, which
 *   is right: they cost nothing.
 * - **Held per open connection.** K connections opened and held open (the backend acknowledges
 *   each and keeps it), then a full collection: the growth of the live heap (heapSize) and of
 *   each cell type, divided by K. Bun's native socket memory is outside the JavaScript heap.
 */
import { spawn, type Subprocess } from 'bun';
import type { Socket, SocketHandler } from 'bun';
import { Backend } from './lib/backend.ts';
import { IDLE_ACK, MODE_CLOSE, MODE_IDLE, request } from './lib/protocol.ts';
import { freePort } from '../test/harness/util.ts';

type Counts = Record<string, number>;

interface Reading {
  counts: Counts;
  heapSize: number;
  /** No collection ran since the last mark. */
  clean: boolean;
  finished: number;
}

type ToChild = { op: 'mark' } | { op: 'read'; finished: number; gc: boolean };

// ---------------------------------------------------------------------------------------------
// The child: the balancer under test, reading its own heap on request.

async function child(peer: string, listenPort: number, backendPort: number, maxConnections: number, extra: string[]): Promise<void> {
  const { heapStats } = await import('bun:jsc');
  let finished: () => number;
  if (peer === 'naive') {
    // The naive proxy reads its arguments at import.
    process.argv.splice(2, process.argv.length - 2, String(listenPort), `127.0.0.1:${backendPort}`);
    await import('./naive-proxy.ts');
    finished = () => -1; // it keeps no count: the parent's close is enough (checked by `read` waiting a little)
  } else {
    const { Balancer, resolveConfig } = await import('../src/app/balancer.ts');
    const { parsePenArgs, applyLongOptions } = await import('../src/config/pen-args.ts');
    // -x above the held connections (pen's default is 500); arguments given after `--` come later and win.
    const parsed = parsePenArgs(['-f', '-x', String(maxConnections), ...extra, `127.0.0.1:${listenPort}`, `127.0.0.1:${backendPort}`]);
    applyLongOptions(parsed.config, parsed.long);
    const quiet = (): void => undefined;
    const balancer = new Balancer(await resolveConfig(parsed.config), { info: quiet, error: (m) => console.error(m), debug: quiet });
    balancer.start();
    finished = () => balancer.totals.finished;
  }
  let canary = new WeakRef({});
  const reading = (clean: boolean, n: number): Reading => {
    const s = heapStats();
    return { counts: { ...s.objectTypeCounts }, heapSize: s.heapSize, clean, finished: n };
  };
  process.on('message', (m: ToChild) => {
    if (m.op === 'mark') {
      Bun.gc(true);
      const r = reading(true, finished());
      canary = new WeakRef({});
      process.send!(r);
      return;
    }
    const done = (): void => {
      if (m.gc) Bun.gc(true);
      // Read the canary before heapStats: a collection clears it only if one ran.
      const clean = canary.deref() !== undefined;
      process.send!(reading(clean, finished()));
    };
    // The last session of a batch may still be ending when its client has seen the close.
    const wait = (tries: number): void => {
      if (finished() >= m.finished || tries === 0) done();
      else setTimeout(wait, 1, tries - 1);
    };
    if (finished() < 0) setTimeout(done, 20);
    else wait(2000);
  });
  process.send!({ ready: true });
}

// ---------------------------------------------------------------------------------------------
// The parent: backend, client, and the arithmetic.

const REQUEST = request(MODE_CLOSE);
const IDLE_REQUEST = request(MODE_IDLE);

interface ClientState {
  resolve: () => void;
  /** A held connection: the backend's acknowledgement came back. */
  acked: boolean;
}

/** One connection: a request, the response, then the backend closes and so does the client. */
const closeHandlers: SocketHandler<ClientState> = {
  open(s) {
    s.write(REQUEST);
  },
  data() {},
  end(s) {
    s.end();
  },
  close(s) {
    s.data.resolve();
  },
  connectError(s) {
    s.data.resolve();
  },
};

function oneConnection(port: number): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  void Bun.connect<ClientState>({ hostname: '127.0.0.1', port, socket: closeHandlers, data: { resolve, acked: false } });
  return promise;
}

/** Held connections: resolved once the backend's acknowledgement came back through the balancer. */
const heldHandlers: SocketHandler<ClientState> = {
  open(s) {
    s.write(IDLE_REQUEST);
  },
  data(s, chunk) {
    if (chunk[0] === IDLE_ACK[0]) {
      s.data.acked = true;
      s.data.resolve();
    }
  },
  close(s) {
    s.data.resolve();
  },
  connectError(s) {
    s.data.resolve();
  },
};

async function hold(port: number, n: number): Promise<Socket<ClientState>[]> {
  const sockets: Socket<ClientState>[] = [];
  for (let i = 0; i < n; i++) {
    const { promise, resolve } = Promise.withResolvers<void>();
    const s = await Bun.connect<ClientState>({ hostname: '127.0.0.1', port, socket: heldHandlers, data: { resolve, acked: false } });
    sockets.push(s);
    const timer = setTimeout(() => s.data.resolve(), 5000);
    await promise;
    clearTimeout(timer);
    if (!s.data.acked) throw new Error(`held connection ${i + 1} of ${n} was not answered (a limit of the balancer?)`);
  }
  return sockets;
}

class Child {
  readonly #proc: Subprocess;
  #waiting: ((m: unknown) => void) | null = null;

  constructor(args: string[]) {
    this.#proc = spawn({
      cmd: [process.execPath, import.meta.path, '--child', ...args],
      stdio: ['ignore', 'inherit', 'inherit'],
      ipc: (m) => {
        const w = this.#waiting;
        this.#waiting = null;
        w?.(m);
      },
    });
  }

  ask<T>(m: ToChild | null): Promise<T> {
    const { promise, resolve } = Promise.withResolvers<T>();
    this.#waiting = resolve as (m: unknown) => void;
    if (m !== null) this.#proc.send(m);
    return promise;
  }

  kill(): void {
    this.#proc.kill();
  }
}

function diff(after: Counts, before: Counts): Counts {
  const d: Counts = {};
  for (const k of new Set([...Object.keys(after), ...Object.keys(before)])) {
    const n = (after[k] ?? 0) - (before[k] ?? 0);
    if (n !== 0) d[k] = n;
  }
  return d;
}

function total(c: Counts): number {
  let n = 0;
  for (const v of Object.values(c)) n += v;
  return n;
}

/** One measured batch of `n` sequential connections (retried while a collection spoils it). */
async function batch(c: Child, port: number, n: number, base: { finished: number }): Promise<Counts> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const before = await c.ask<Reading>({ op: 'mark' });
    for (let i = 0; i < n; i++) await oneConnection(port);
    const expected = before.finished < 0 ? -1 : before.finished + n;
    const after = await c.ask<Reading>({ op: 'read', finished: expected, gc: false });
    base.finished = after.finished;
    if (!after.clean) continue;
    if (expected >= 0 && after.finished < expected) throw new Error(`only ${after.finished - before.finished} of ${n} sessions ended`);
    return diff(after.counts, before.counts);
  }
  throw new Error('a collection ran during every attempt: try a smaller --batch');
}

function perConnection(d: Counts, baseline: Counts, n: number): Counts {
  const out: Counts = {};
  for (const [k, v] of Object.entries(diff(d, baseline))) out[k] = v / n;
  return out;
}

function table(perConn: Counts, limit = 25): string {
  const rows = Object.entries(perConn)
    .filter(([, v]) => Math.abs(v) >= 0.005)
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit);
  return rows.map(([k, v]) => `  ${k.padEnd(32)} ${v.toFixed(2).padStart(8)}`).join('\n');
}

async function parent(argv: string[]): Promise<void> {
  let connections = 5000;
  let batchSize = 500;
  let held = 2000;
  let peer = 'fulcrum';
  let extra: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--connections') connections = Number(argv[++i]);
    else if (a === '--batch') batchSize = Number(argv[++i]);
    else if (a === '--held') held = Number(argv[++i]);
    else if (a === '--peer') peer = argv[++i] ?? '';
    else if (a === '--') {
      extra = argv.slice(i + 1);
      break;
    } else throw new Error(`unknown argument '${a}'`);
  }
  if (peer !== 'fulcrum' && peer !== 'naive') throw new Error(`--peer: fulcrum or naive, not '${peer}'`);
  const backend = new Backend('127.0.0.1');
  const port = freePort();
  const c = new Child([peer, String(port), String(backend.port), String(Math.max(500, held + 100)), ...extra]);
  try {
    await c.ask(null); // ready
    const state = { finished: 0 };
    // Warm-up: the data path compiled and its lazily made objects made, so only steady state counts.
    for (let i = 0; i < 1000; i++) await oneConnection(port);
    await batch(c, port, batchSize, state);
    // The baseline: the mark/read exchange itself, with no connection.
    const baseline = await batch(c, port, 0, state);
    const sum: Counts = {};
    let measured = 0;
    while (measured < connections) {
      const n = Math.min(batchSize, connections - measured);
      const d = diff(await batch(c, port, n, state), baseline);
      for (const [k, v] of Object.entries(d)) sum[k] = (sum[k] ?? 0) + v;
      measured += n;
    }
    const allocated = perConnection(sum, {}, measured);
    const label = peer === 'naive' ? 'naive Bun proxy' : `fulcrum ${extra.join(' ')}`.trim();
    console.log(`${label}: ${measured} sequential connections in batches of ${batchSize}`);
    console.log(`heap cells allocated per connection: ${total(allocated).toFixed(1)}`);
    console.log(table(allocated));

    if (held > 0) {
      const before = await c.ask<Reading>({ op: 'read', finished: -1, gc: true });
      const sockets = await hold(port, held);
      const after = await c.ask<Reading>({ op: 'read', finished: -1, gc: true });
      const kept = perConnection(diff(after.counts, before.counts), {}, held);
      console.log(`\n${held} connections held open, after a full collection:`);
      console.log(`live heap bytes per open connection: ${Math.round((after.heapSize - before.heapSize) / held)}`);
      console.log(`live heap cells per open connection: ${total(kept).toFixed(1)}`);
      console.log(table(kept, 15));
      for (const s of sockets) s.end();
    }
  } finally {
    c.kill();
    backend.close();
  }
}

if (process.argv[2] === '--child') {
  const [peer, listenPort, backendPort, maxConnections, ...extra] = process.argv.slice(3);
  await child(peer ?? 'fulcrum', Number(listenPort), Number(backendPort), Number(maxConnections), extra);
} else {
  await parent(process.argv.slice(2));
}
