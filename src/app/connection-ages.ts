/**
 * Connection age limits of a group: each connection gets a jittered deadline in a heap; expired
 * ones are closed gracefully, at most `drain_budget` per second (a token bucket), so that
 * clients of long-lived connections move to recovered or added servers without a reconnect
 * storm. One timer (through the injected Clock) covers the whole group.
 */
import type { Clock, Random, TimerHandle } from '../core/clock.ts';
import { TimerHeap } from '../core/health/timer-heap.ts';
import { TokenBucket } from '../core/health/token-bucket.ts';
import type { GroupConfig } from '../config/model.ts';
import type { Session } from '../dataplane/session.ts';

type AgeSettings = Pick<GroupConfig, 'maxConnectionAgeMs' | 'maxConnectionAgeJitter' | 'drainBudget'>;

export class ConnectionAges {
  readonly #clock: Clock;
  readonly #random: Random;
  /** The group's current settings (a reload replaces them). */
  readonly #settings: () => AgeSettings;
  /** Closes one expired connection (counted by the group). */
  readonly #expire: (s: Session) => void;
  /** Deadlines, then expired connections waiting for the drain budget. */
  readonly #ages = new TimerHeap<Session>();
  #expired: (Session | undefined)[] = [];
  #expiredHead = 0;
  readonly #budget: TokenBucket;
  #timer: TimerHandle | null = null;
  #timerDue = 0;

  constructor(clock: Clock, random: Random, settings: () => AgeSettings, expire: (s: Session) => void) {
    this.#clock = clock;
    this.#random = random;
    this.#settings = settings;
    this.#expire = expire;
    const budget = settings().drainBudget;
    this.#budget = new TokenBucket(budget, Math.max(1, budget), clock.now());
  }

  /** A connection was established: it gets its deadline if the group limits connection age. */
  connected(session: Session): void {
    const c = this.#settings();
    if (c.maxConnectionAgeMs <= 0) return;
    // Shortened by up to the jitter fraction, so connections made together expire apart.
    const due = this.#clock.now() + Math.round(c.maxConnectionAgeMs * (1 - c.maxConnectionAgeJitter * this.#random.next()));
    this.#ages.schedule(session, due);
    this.#arm();
  }

  ended(session: Session): void {
    this.#ages.remove(session);
  }

  /** Follows a changed drain budget. */
  settingsChanged(): void {
    const budget = this.#settings().drainBudget;
    this.#budget.ratePerSec = budget;
    this.#budget.burst = Math.max(1, budget);
  }

  stop(): void {
    this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  #arm(): void {
    const now = this.#clock.now();
    let due = Infinity;
    if (this.#expiredHead < this.#expired.length) due = now + Math.max(1, this.#budget.waitMs(now));
    const next = this.#ages.peek();
    if (next !== undefined) due = Math.min(due, next.dueMs);
    if (due === Infinity) return;
    if (this.#timer !== null) {
      if (this.#timerDue <= due) return;
      this.#clock.clearTimer(this.#timer);
    }
    this.#timerDue = due;
    this.#timer = this.#clock.setTimeout((self: ConnectionAges) => self.#tick(), Math.max(0, due - now), this);
  }

  #tick(): void {
    this.#timer = null;
    const now = this.#clock.now();
    for (let s = this.#ages.popDue(now); s !== undefined; s = this.#ages.popDue(now)) this.#expired.push(s);
    this.#budget.ratePerSec = this.#settings().drainBudget;
    while (this.#expiredHead < this.#expired.length) {
      const s = this.#expired[this.#expiredHead]!;
      if (s.finished) {
        this.#expired[this.#expiredHead++] = undefined;
        continue;
      }
      if (!this.#budget.take(now)) break;
      this.#expired[this.#expiredHead++] = undefined;
      this.#expire(s);
    }
    if (this.#expiredHead === this.#expired.length) {
      this.#expired = [];
      this.#expiredHead = 0;
    }
    this.#arm();
  }
}
