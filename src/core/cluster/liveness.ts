/**
 * A health verdict must not outlive the instance that made it (docs/cluster.md): each instance
 * says it lives every HEARTBEAT_MS (a heartbeat on the channel and its `alive:` key refreshed with
 * a LEASE_MS expiry), and a verdict made by an instance not heard of for LEASE_MS is dropped by the
 * others, each going back to its own check's verdict. Pure: times are passed in, and they are the
 * receiver's own (when it heard), so the instances' clocks need not agree for this.
 */

/** How often an instance says it lives. */
export const HEARTBEAT_MS = 1_000;
/** An instance not heard of for this long is gone, and its health verdicts with it. */
export const LEASE_MS = 5_000;

/** When this instance last heard of each other instance. */
export class Liveness {
  readonly #heard = new Map<string, number>();
  readonly leaseMs: number;

  constructor(leaseMs = LEASE_MS) {
    this.leaseMs = leaseMs;
  }

  /** `instance` said it lives (a heartbeat, any published change, or its `alive:` key found). */
  heard(instance: string, nowMs: number): void {
    const last = this.#heard.get(instance);
    if (last === undefined || nowMs > last) this.#heard.set(instance, nowMs);
  }

  /** Heard of within the lease. An instance never heard of is not alive. */
  isAlive(instance: string, nowMs: number): boolean {
    const last = this.#heard.get(instance);
    return last !== undefined && nowMs - last < this.leaseMs;
  }

  /**
   * Every instance known gets a fresh lease: after this instance's own link to Redis was down it
   * could not hear anyone, which says nothing of them.
   */
  renewAll(nowMs: number): void {
    for (const k of this.#heard.keys()) this.#heard.set(k, nowMs);
  }

  /** The instances whose lease ran out, forgotten at once (each is reported once). */
  expired(nowMs: number): string[] {
    const out: string[] = [];
    for (const [k, last] of this.#heard) {
      if (nowMs - last >= this.leaseMs) {
        out.push(k);
        this.#heard.delete(k);
      }
    }
    return out;
  }
}

/**
 * Does a health verdict made by `from` still stand on instance `self`? Its own ones do (its
 * check decides); another instance's only while that instance is alive.
 */
export function verdictStands(from: string, self: string, live: Liveness, nowMs: number): boolean {
  return from === self || live.isAlive(from, nowMs);
}

/** A heartbeat as published on the cluster's channel (a batch of changes is an array, this is not). */
export function encodeHeartbeat(instance: string): string {
  return JSON.stringify({ alive: instance });
}

/** The instance a heartbeat names, or null if `text` is not a heartbeat. */
export function decodeHeartbeat(text: string): string | null {
  if (!text.startsWith('{')) return null;
  try {
    const v = JSON.parse(text) as unknown;
    const alive = typeof v === 'object' && v !== null ? (v as Record<string, unknown>).alive : undefined;
    return typeof alive === 'string' && alive !== '' ? alive : null;
  } catch {
    return null;
  }
}
