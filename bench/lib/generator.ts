/**
 * The load generator: many connections multiplexed on Bun's event loop in this process, with
 * shared handler objects and one small state object per connection, so that it stays cheaper
 * than the balancer it drives (the direct path, measured the same way, shows its ceiling).
 *
 * Every run is a warm-up, then a measured window, then a stop: counts and latencies are taken
 * only inside the window. Latency comes from a separate probe connection that sends at a low
 * fixed rate beside the load (HAProxy's dpbench method), not from the saturated connections,
 * whose round-trip time is only queueing (Little's law). Every run is bounded in time and count.
 */
import type { Socket, SocketHandler } from 'bun';
import { MODE_BULK, MODE_CLOSE, MODE_KEEPALIVE, REQUEST_SIZE, RESPONSE_SIZE, request } from './protocol.ts';
import { Samples } from './stats.ts';

export interface Target {
  host: string;
  port: number;
}

export interface Window {
  warmupMs: number;
  durationMs: number;
  /** Called as the measured window opens and as it closes (the bench reads the balancer's CPU time there). */
  onWindow?: (edge: 'start' | 'end') => void;
}

export interface RateResult {
  /** Completed requests (or connections) in the measured window, per second. */
  perSecond: number;
  completed: number;
  seconds: number;
  /** Probe latency in microseconds. */
  p50Us: number;
  p99Us: number;
  probeSamples: number;
  errors: number;
}

export interface BulkResult {
  /** Bytes received in the measured window, all streams together, per second (10^6 bytes). */
  megabytesPerSecond: number;
  bytes: number;
  seconds: number;
  errors: number;
}

const PHASE_WARMUP = 0;
const PHASE_MEASURE = 1;
const PHASE_STOP = 2;

/** Safety bound on connections one connection-rate run may open, whatever its duration. */
const MAX_CONNECTIONS_PER_RUN = 20_000_000;
/** How long a stopping run waits for its sockets to close. */
const STOP_GRACE_MS = 5_000;
/** Extra wait for connects still in flight at the stop (a SYN dropped by a full backlog is retried after 1 s, 3 s, ...). */
const CONNECT_TIMEOUT_MS = 10_000;

/** The clock of a run: phase changes and the measured window's edges. */
class RunClock {
  phase = PHASE_WARMUP;
  windowStart = 0;
  windowEnd = 0;
  #timers: ReturnType<typeof setTimeout>[] = [];

  /** Starts warm-up now; resolves when the measured window has ended. */
  run(w: Window): Promise<void> {
    return new Promise((resolve) => {
      this.#timers.push(
        setTimeout(() => {
          this.phase = PHASE_MEASURE;
          w.onWindow?.('start');
          this.windowStart = performance.now();
          this.#timers.push(
            setTimeout(() => {
              this.windowEnd = performance.now();
              this.phase = PHASE_STOP;
              w.onWindow?.('end');
              resolve();
            }, w.durationMs),
          );
        }, w.warmupMs),
      );
    });
  }

  get seconds(): number {
    return (this.windowEnd - this.windowStart) / 1000;
  }

  cancel(): void {
    for (const t of this.#timers) clearTimeout(t);
  }
}

/**
 * Opens `n` connections at once. If any fails, the others are closed and the first error is
 * thrown, so a failed run leaves nothing open behind it.
 */
async function connectAll<T>(n: number, open: () => Promise<Socket<T>>): Promise<Socket<T>[]> {
  const settled = await Promise.allSettled(Array.from({ length: n }, open));
  const sockets = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    for (const s of sockets) s.terminate();
    throw new Error(`${n - sockets.length} of ${n} connections failed: ${String(failed.reason)}`);
  }
  return sockets;
}

/** Resolves when `done()` holds, polling; false if it did not within `ms`. */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await Bun.sleep(5);
  }
  return true;
}

// ---------------------------------------------------------------- keep-alive

interface KeepAliveRun {
  clock: RunClock;
  completed: number;
  errors: number;
  closed: number;
  requests: Uint8Array;
}

class KeepAliveConn {
  partial = 0;
  /** Request bytes to send; more than the socket takes waits for drain (rare in a closed loop). */
  owed = 0;
  /** Request bytes sent so far: where in the request pattern the next write starts. */
  sent = 0;
  constructor(readonly run: KeepAliveRun, readonly depth: number) {}
}

const keepAliveHandlers: SocketHandler<KeepAliveConn> = {
  open(socket) {
    socket.setNoDelay(true);
    socket.data.owed = socket.data.depth * REQUEST_SIZE;
    sendOwed(socket, socket.data);
  },
  data(socket, chunk) {
    const c = socket.data;
    const total = c.partial + chunk.length;
    c.partial = total % RESPONSE_SIZE;
    const responses = (total - c.partial) / RESPONSE_SIZE;
    const phase = c.run.clock.phase;
    if (phase === PHASE_MEASURE) c.run.completed += responses;
    if (phase !== PHASE_STOP) {
      c.owed += responses * REQUEST_SIZE; // closed loop: one new request per response
      sendOwed(socket, c);
    }
  },
  drain(socket) {
    sendOwed(socket, socket.data);
  },
  close(socket) {
    const run = socket.data.run;
    run.closed++;
    // A connection the balancer dropped before the end is a failure even if it closed cleanly.
    if (run.clock.phase !== PHASE_STOP) run.errors++;
  },
  connectError(socket) {
    socket.data.run.closed++;
  },
};

function sendOwed(socket: Socket<KeepAliveConn>, c: KeepAliveConn): void {
  const buf = c.run.requests;
  while (c.owed > 0) {
    // Requests are identical, so the stream stays whole if each write resumes the pattern.
    const offset = c.sent % REQUEST_SIZE;
    const n = Math.min(c.owed, buf.length - offset);
    const written = socket.write(buf, offset, n);
    if (written <= 0) return;
    c.owed -= written;
    c.sent += written;
    if (written < n) return;
  }
}

/** Probe: one request at a time, sent on a timer, its round trip recorded in the window. */
class Probe {
  socket: Socket<Probe> | null = null;
  sentAt = 0;
  partial = 0;
  inFlight = false;
  constructor(
    readonly clock: RunClock,
    readonly samples: Samples,
    readonly message: Uint8Array,
  ) {}

  tick(): void {
    if (this.inFlight || this.socket === null || this.clock.phase === PHASE_STOP) return;
    this.inFlight = true;
    this.sentAt = performance.now();
    this.socket.write(this.message);
  }
}

const probeHandlers: SocketHandler<Probe> = {
  open(socket) {
    socket.setNoDelay(true);
    socket.data.socket = socket;
  },
  data(socket, chunk) {
    const p = socket.data;
    p.partial += chunk.length;
    if (p.partial < RESPONSE_SIZE) return;
    p.partial -= RESPONSE_SIZE;
    p.inFlight = false;
    if (p.clock.phase === PHASE_MEASURE) p.samples.add((performance.now() - p.sentAt) * 1000);
  },
  close(socket) {
    socket.data.socket = null;
  },
};

export interface KeepAliveOptions extends Window {
  connections: number;
  /** Requests in flight per connection (1 = strict request/response). */
  depth: number;
  probeIntervalMs: number;
}

/** Many small requests over persistent connections, closed loop. */
export async function keepAlive(target: Target, o: KeepAliveOptions): Promise<RateResult> {
  const clock = new RunClock();
  const run: KeepAliveRun = { clock, completed: 0, errors: 0, closed: 0, requests: repeat(request(MODE_KEEPALIVE), Math.max(o.depth, 64)) };
  const samples = new Samples(Math.ceil(o.durationMs / o.probeIntervalMs) + 16);
  const probe = new Probe(clock, samples, request(MODE_KEEPALIVE));
  const sockets: Socket<KeepAliveConn>[] = [];
  let probeSocket: Socket<Probe> | undefined;
  let ticker: ReturnType<typeof setInterval> | undefined;
  try {
    sockets.push(
      ...(await connectAll(o.connections, () =>
        Bun.connect<KeepAliveConn>({ hostname: target.host, port: target.port, socket: keepAliveHandlers, data: new KeepAliveConn(run, o.depth) }),
      )),
    );
    probeSocket = await Bun.connect<Probe>({ hostname: target.host, port: target.port, socket: probeHandlers, data: probe });
    ticker = setInterval(() => probe.tick(), o.probeIntervalMs);
    await clock.run(o);
  } finally {
    clock.cancel();
    if (ticker !== undefined) clearInterval(ticker);
    for (const s of sockets) s.end();
    probeSocket?.end();
    await until(() => run.closed >= sockets.length, STOP_GRACE_MS);
    for (const s of sockets) s.terminate();
  }
  return {
    perSecond: run.completed / clock.seconds,
    completed: run.completed,
    seconds: clock.seconds,
    p50Us: samples.percentile(50),
    p99Us: samples.percentile(99),
    probeSamples: samples.count,
    errors: run.errors,
  };
}

function repeat(message: Uint8Array, times: number): Uint8Array {
  const out = new Uint8Array(message.length * times);
  for (let i = 0; i < times; i++) out.set(message, i * message.length);
  return out;
}

// ---------------------------------------------------------------- connection rate

interface RateRun {
  clock: RunClock;
  target: Target;
  completed: number;
  errors: number;
  started: number;
  /** Connection loops still running (each has at most one connection open). */
  active: number;
  probe: Samples;
  probeBusy: boolean;
}

const CLOSE_REQUEST = request(MODE_CLOSE);

class OneShot {
  received = 0;
  startedAt = performance.now();
  answeredAt = 0;
  constructor(
    readonly run: RateRun,
    readonly isProbe: boolean,
  ) {}
}

const oneShotHandlers: SocketHandler<OneShot> = {
  open(socket) {
    socket.setNoDelay(true);
    socket.write(CLOSE_REQUEST);
  },
  data(socket, chunk) {
    const c = socket.data;
    c.received += chunk.length;
    if (c.answeredAt === 0 && c.received >= RESPONSE_SIZE) c.answeredAt = performance.now();
  },
  close(socket) {
    finishOneShot(socket.data);
  },
  connectError(socket) {
    finishOneShot(socket.data);
  },
};

/** A connection is done (closed after its answer, or failed): count it and start the next. */
function finishOneShot(c: OneShot): void {
  const run = c.run;
  const ok = c.received >= RESPONSE_SIZE;
  const measuring = run.clock.phase === PHASE_MEASURE;
  if (c.isProbe) {
    run.probeBusy = false;
    if (ok && measuring) run.probe.add((c.answeredAt - c.startedAt) * 1000);
    return;
  }
  if (measuring) {
    if (ok) run.completed++;
    else run.errors++;
  }
  if (run.clock.phase === PHASE_STOP || run.started >= MAX_CONNECTIONS_PER_RUN) {
    run.active--;
    return;
  }
  // A failure is retried after a pause, so a refusing balancer cannot spin the loop.
  if (ok) startOneShot(run, false);
  else setTimeout(startOneShot, 10, run, false);
}

function startOneShot(run: RateRun, isProbe: boolean): void {
  if (!isProbe) {
    if (run.clock.phase === PHASE_STOP) {
      run.active--;
      return;
    }
    run.started++;
  }
  const c = new OneShot(run, isProbe);
  Bun.connect<OneShot>({ hostname: run.target.host, port: run.target.port, socket: oneShotHandlers, data: c }).catch(ignore);
}

function ignore(): void {}

export interface ConnectionRateOptions extends Window {
  /** Connection loops running at once, each opening a new connection per request. */
  concurrency: number;
  probeIntervalMs: number;
}

/** A new TCP connection per request; the backend answers and closes (its FIN first). */
export async function connectionRate(target: Target, o: ConnectionRateOptions): Promise<RateResult> {
  const clock = new RunClock();
  const run: RateRun = {
    clock,
    target,
    completed: 0,
    errors: 0,
    started: 0,
    active: o.concurrency,
    probe: new Samples(Math.ceil(o.durationMs / o.probeIntervalMs) + 16),
    probeBusy: false,
  };
  const ticker = setInterval(() => {
    if (run.probeBusy || clock.phase === PHASE_STOP) return;
    run.probeBusy = true;
    startOneShot(run, true);
  }, o.probeIntervalMs);
  try {
    for (let i = 0; i < o.concurrency; i++) startOneShot(run, false);
    await clock.run(o);
  } finally {
    clock.cancel();
    clearInterval(ticker);
    clock.phase = PHASE_STOP;
    await until(() => run.active === 0 && !run.probeBusy, STOP_GRACE_MS + CONNECT_TIMEOUT_MS);
  }
  return {
    perSecond: run.completed / clock.seconds,
    completed: run.completed,
    seconds: clock.seconds,
    p50Us: run.probe.percentile(50),
    p99Us: run.probe.percentile(99),
    probeSamples: run.probe.count,
    errors: run.errors,
  };
}

// ---------------------------------------------------------------- bulk

interface BulkRun {
  clock: RunClock;
  bytes: number;
  errors: number;
  closed: number;
}

const BULK_REQUEST = request(MODE_BULK);

const bulkHandlers: SocketHandler<BulkRun> = {
  open(socket) {
    socket.write(BULK_REQUEST);
  },
  data(socket, chunk) {
    if (socket.data.clock.phase === PHASE_MEASURE) socket.data.bytes += chunk.length;
  },
  close(socket) {
    socket.data.closed++;
  },
  error(socket) {
    if (socket.data.clock.phase !== PHASE_STOP) socket.data.errors++;
  },
};

export interface BulkOptions extends Window {
  streams: number;
}

/** `streams` concurrent downloads from the backend, as fast as they go. */
export async function bulk(target: Target, o: BulkOptions): Promise<BulkResult> {
  const clock = new RunClock();
  const run: BulkRun = { clock, bytes: 0, errors: 0, closed: 0 };
  const sockets: Socket<BulkRun>[] = [];
  try {
    sockets.push(...(await connectAll(o.streams, () => Bun.connect<BulkRun>({ hostname: target.host, port: target.port, socket: bulkHandlers, data: run }))));
    await clock.run(o);
  } finally {
    clock.cancel();
    clock.phase = PHASE_STOP;
    // A reset stops the streams at once; an orderly close would first drain buffered megabytes.
    for (const s of sockets) s.terminate();
    await until(() => run.closed >= sockets.length, STOP_GRACE_MS);
  }
  return { megabytesPerSecond: run.bytes / 1e6 / clock.seconds, bytes: run.bytes, seconds: clock.seconds, errors: run.errors };
}
