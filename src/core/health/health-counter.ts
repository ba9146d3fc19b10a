/**
 * Rise/fall hysteresis for active checks (HAProxy's `rise`/`fall`, Envoy's healthy/unhealthy
 * thresholds): an up server goes down after `fall` consecutive failed checks, a down server comes
 * back after `rise` consecutive passed checks. A result that agrees with the current state clears
 * any streak towards the other state, so one stray failure among passes changes nothing.
 */

/** `pending`: the result disagrees with the state, but the threshold is not reached yet. */
export type HealthChange = 'unchanged' | 'pending' | 'changed';

export class HealthCounter {
  healthy: boolean;
  rise: number;
  fall: number;
  /** Consecutive results that disagree with `healthy`. */
  streak = 0;

  constructor(rise: number, fall: number, healthy = true) {
    this.rise = Math.max(1, rise);
    this.fall = Math.max(1, fall);
    this.healthy = healthy;
  }

  observe(passed: boolean): HealthChange {
    if (passed === this.healthy) {
      this.streak = 0;
      return 'unchanged';
    }
    this.streak++;
    if (this.streak < (this.healthy ? this.fall : this.rise)) return 'pending';
    this.healthy = passed;
    this.streak = 0;
    return 'changed';
  }

  /** Force a state (operator action, agent report); the streak starts over. */
  reset(healthy: boolean): void {
    this.healthy = healthy;
    this.streak = 0;
  }
}
