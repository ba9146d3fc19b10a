/**
 * The one rule for every duration a user gives, from any source: pen's command line (-t, -b,
 * -T, --check-interval ...), pen's commands (-o, -F, SIGHUP, the control port), the config file
 * and, through it, the admin API's reload. A duration is a whole number of its unit between a
 * field's minimum (0 unless the field says otherwise) and MAX_TIMER_MS, the longest delay a timer
 * can be armed with: anything longer overflows in the runtime and fires at once (a `-t 3000000`
 * once closed every client and ejected healthy servers). Refusing it where it is written means
 * no user's value ever reaches the clock's clamp. Each source wraps the answer in its own error
 * (UsageError, CommandError, a positioned config issue), so the wording of the range is the same
 * everywhere.
 */
import { MAX_TIMER_MS } from './clock.ts';

/** The unit a bare number is read in: pen's values are seconds, the config file's milliseconds. */
export type DurationUnit = 'ms' | 's';

export interface DurationRule {
  /** The shortest accepted, in ms (default 0: for most fields 0 means off or never). */
  minMs?: number;
  /** The longest accepted, in ms (default and upper bound MAX_TIMER_MS). */
  maxMs?: number;
  /**
   * Text may carry a unit: "250ms", "3s", "5m", "1h" (the config file). Without it only bare
   * whole numbers are read, as pen reads them, so that "5m" is not taken for 5 minutes where pen
   * would read 5 seconds.
   */
  suffixes?: boolean;
}

export type DurationCheck = { ms: number } | { error: string };

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

export const DURATION_SUFFIX_TEXT = 'a duration such as "250ms", "3s", "5m", "1h", or whole milliseconds';

/** "about 24.8 days", "about 1.5 hours", for a range's upper end (rounded down: it is a limit). */
export function aboutText(ms: number): string {
  const steps: [number, string][] = [[86_400_000, 'days'], [3_600_000, 'hours'], [60_000, 'minutes'], [1_000, 'seconds']];
  for (const [size, name] of steps) {
    const n = Math.floor((ms / size) * 10) / 10;
    if (n >= 1) return `about ${n} ${n === 1 ? name.slice(0, -1) : name}`;
  }
  return `${ms} ms`;
}

function bounds(unit: DurationUnit, rule: DurationRule): { minMs: number; maxMs: number; lo: number; hi: number } {
  const minMs = Math.max(0, rule.minMs ?? 0);
  const maxMs = Math.min(MAX_TIMER_MS, rule.maxMs ?? MAX_TIMER_MS);
  const size = UNIT_MS[unit]!;
  return { minMs, maxMs, lo: Math.ceil(minMs / size), hi: Math.floor(maxMs / size) };
}

/** The accepted range in the field's unit: "up to 2147483 s (about 24.8 days)", "from 1 to ...". */
export function durationRangeText(unit: DurationUnit, rule: DurationRule = {}): string {
  const { maxMs, lo, hi } = bounds(unit, rule);
  const about = unit === 's' && hi < 60 ? '' : ` (${aboutText(maxMs)})`;
  return `${lo === 0 ? 'up to' : `from ${lo} to`} ${hi} ${unit}${about}`;
}

/**
 * `value` (a number in `unit`, or text as written) as milliseconds, or an error naming `what`
 * (e.g. "-t", "timeout", "" when the caller places the message itself) and the accepted range.
 */
export function checkDuration(value: number | string, unit: DurationUnit, what: string, rule: DurationRule = {}): DurationCheck {
  const prefix = what === '' ? '' : `${what}: `;
  const kind = rule.suffixes === true ? DURATION_SUFFIX_TEXT : `a whole number of ${unit === 's' ? 'seconds' : 'milliseconds'}`;
  const malformed = (): DurationCheck => ({ error: `${prefix}expected ${kind} ${durationRangeText(unit, rule)}, got ${typeof value === 'string' ? JSON.stringify(value) : value}` });
  let ms: number;
  let shown: string;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) return malformed();
    ms = value * UNIT_MS[unit]!;
    shown = `${value} ${unit}`;
  } else {
    const text = value.trim();
    const m = (rule.suffixes === true ? /^(\d+)(ms|s|m|h)?$/ : /^(\d+)$/).exec(text);
    if (m === null) return malformed();
    const suffix = m[2];
    ms = Number(m[1]) * UNIT_MS[suffix ?? unit]!;
    shown = suffix === undefined ? `${m[1]} ${unit}` : JSON.stringify(text);
  }
  const { minMs, maxMs } = bounds(unit, rule);
  // A number too large to be exact is out of range too, whatever it rounded to.
  if (!Number.isSafeInteger(ms) || ms < minMs || ms > maxMs) {
    return { error: `${prefix}expected a duration ${durationRangeText(unit, rule)}, got ${shown}` };
  }
  return { ms };
}
