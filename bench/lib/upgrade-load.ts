/**
 * The load that an upgrade must not disturb (test/e2e/upgrade.test.ts, bench/upgrade.ts): a loop
 * of short connections (`concurrency` at once, each a line echoed back, then FIN) and a few long
 * transfers (paced writes to an echo server, the echo's sha256 compared with what was sent),
 * run until `stop()` and counted by outcome. Every connection is bounded by `timeoutMs`.
 *
 * Outcomes: `refused` (ECONNREFUSED: nothing listened), `reset` (ECONNRESET/EPIPE), `truncated`
 * (the echo ended short or differs: a connection closed under it), `timeout`, `ok`.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';

export type Outcome = 'ok' | 'refused' | 'reset' | 'truncated' | 'timeout' | 'error';

export interface LoadCounts {
  short: Record<Outcome, number>;
  long: Record<Outcome, number>;
  /** The first few failures' details, for a failing test's message. */
  failures: string[];
}

export interface LoadOptions {
  port: number;
  host?: string;
  concurrency?: number;
  /** Long transfers running at any time (each restarted when it ends). */
  longs?: number;
  /** Bytes per long transfer, written in 64 KiB chunks every `longPaceMs`. */
  longBytes?: number;
  longPaceMs?: number;
  timeoutMs?: number;
}

const zero = (): Record<Outcome, number> => ({ ok: 0, refused: 0, reset: 0, truncated: 0, timeout: 0, error: 0 });

function classify(e: NodeJS.ErrnoException): Outcome {
  if (e.code === 'ECONNREFUSED') return 'refused';
  if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return 'reset';
  return 'error';
}

/** One connection: send `chunks` (paced), half-close, expect them all echoed back, then FIN. */
function exchange(o: Required<LoadOptions>, chunks: Buffer[], paceMs: number): Promise<[Outcome, string]> {
  return new Promise((resolve) => {
    const sent = createHash('sha256');
    const got = createHash('sha256');
    let sentBytes = 0;
    let gotBytes = 0;
    let settled = false;
    const s = net.connect({ host: o.host, port: o.port });
    const done = (r: Outcome, why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve([r, why]);
    };
    const timer = setTimeout(() => done('timeout', `no end after ${o.timeoutMs} ms (${gotBytes}/${sentBytes} bytes back)`), o.timeoutMs);
    s.on('error', (e: NodeJS.ErrnoException) => done(classify(e), `${e.code ?? e.message} after ${gotBytes}/${sentBytes} bytes back`));
    s.on('data', (d: Buffer) => {
      gotBytes += d.length;
      got.update(d);
    });
    s.on('end', () => {
      const ok = gotBytes === sentBytes && got.digest('hex') === sent.digest('hex');
      done(ok ? 'ok' : 'truncated', `${gotBytes}/${sentBytes} bytes back`);
    });
    s.on('connect', () => {
      let i = 0;
      const next = (): void => {
        if (settled) return;
        if (i === chunks.length) return void s.end();
        const c = chunks[i++]!;
        sent.update(c);
        sentBytes += c.length;
        s.write(c);
        if (paceMs > 0) setTimeout(next, paceMs);
        else next();
      };
      next();
    });
  });
}

export class UpgradeLoad {
  readonly counts: LoadCounts = { short: zero(), long: zero(), failures: [] };
  readonly #o: Required<LoadOptions>;
  #running = true;
  readonly #loops: Promise<void>[] = [];

  constructor(options: LoadOptions) {
    this.#o = { host: '127.0.0.1', concurrency: 50, longs: 3, longBytes: 16 << 20, longPaceMs: 10, timeoutMs: 30_000, ...options };
    const chunk = Buffer.alloc(64 << 10);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 0xff;
    const longChunks = Array.from({ length: Math.ceil(this.#o.longBytes / chunk.length) }, () => chunk);
    for (let i = 0; i < this.#o.concurrency; i++) {
      this.#loops.push(this.#loop('short', (n) => [Buffer.from(`short ${i} ${n}\n`)], 0));
    }
    for (let i = 0; i < this.#o.longs; i++) this.#loops.push(this.#loop('long', () => longChunks, this.#o.longPaceMs));
  }

  async #loop(kind: 'short' | 'long', chunks: (n: number) => Buffer[], paceMs: number): Promise<void> {
    for (let n = 0; this.#running; n++) {
      const [r, why] = await exchange(this.#o, chunks(n), paceMs);
      this.counts[kind][r]++;
      if (r !== 'ok' && this.counts.failures.length < 10) this.counts.failures.push(`${kind}: ${r}: ${why}`);
    }
  }

  /** Connections finished so far (any outcome). */
  get finished(): number {
    const sum = (c: Record<Outcome, number>): number => Object.values(c).reduce((a, b) => a + b, 0);
    return sum(this.counts.short) + sum(this.counts.long);
  }

  /** Stops starting connections and waits for those under way (each bounded by timeoutMs). */
  async stop(): Promise<LoadCounts> {
    this.#running = false;
    await Promise.all(this.#loops);
    return this.counts;
  }
}

/** One line for a report: `short 4012 ok, 0 refused, 0 reset, 0 truncated; long 12 ok, ...`. */
export function formatCounts(c: LoadCounts): string {
  const f = (r: Record<Outcome, number>): string => `${r.ok} ok, ${r.refused} refused, ${r.reset} reset, ${r.truncated} truncated, ${r.timeout} timeout, ${r.error} error`;
  return `short: ${f(c.short)}; long: ${f(c.long)}`;
}
