/**
 * A token bucket for the drain budget: at most `ratePerSec` actions per second on average, with
 * bursts of at most `burst`. Time is passed in, so the bucket is pure and testable.
 */
export class TokenBucket {
  ratePerSec: number;
  burst: number;
  #tokens: number;
  #lastMs: number;

  constructor(ratePerSec: number, burst: number, nowMs: number) {
    this.ratePerSec = ratePerSec;
    this.burst = Math.max(1, burst);
    this.#tokens = this.burst;
    this.#lastMs = nowMs;
  }

  #refill(nowMs: number): void {
    if (nowMs > this.#lastMs) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((nowMs - this.#lastMs) * this.ratePerSec) / 1000);
      this.#lastMs = nowMs;
    }
  }

  /** Takes one token if there is one. A rate of 0 means unlimited. */
  take(nowMs: number): boolean {
    if (this.ratePerSec <= 0) return true;
    this.#refill(nowMs);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is available (0 if one is). */
  waitMs(nowMs: number): number {
    if (this.ratePerSec <= 0) return 0;
    this.#refill(nowMs);
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) * 1000) / this.ratePerSec);
  }
}
