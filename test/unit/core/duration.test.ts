/** The one rule for every duration (src/core/duration.ts): each source's parser uses it. */
import { expect, test } from 'bun:test';
import { MAX_TIMER_MS } from '../../../src/core/clock.ts';
import { checkDuration, durationRangeText } from '../../../src/core/duration.ts';

test('pen seconds: whole numbers up to the longest timer, in ms', () => {
  expect(checkDuration('30', 's', '-b')).toEqual({ ms: 30_000 });
  expect(checkDuration('0', 's', '-b')).toEqual({ ms: 0 });
  expect(checkDuration(' 7 ', 's', '-b')).toEqual({ ms: 7_000 });
  expect(checkDuration('2147483', 's', '-t')).toEqual({ ms: 2_147_483_000 });
  expect(checkDuration(2147483, 's', '-t')).toEqual({ ms: 2_147_483_000 });
});

test('out of range: the error names the source, the range and what was given', () => {
  expect(checkDuration('3000000', 's', '-t', { minMs: 1000 })).toEqual({ error: '-t: expected a duration from 1 to 2147483 s (about 24.8 days), got 3000000 s' });
  expect(checkDuration('2147484', 's', 'timeout')).toEqual({ error: 'timeout: expected a duration up to 2147483 s (about 24.8 days), got 2147484 s' });
  expect(checkDuration('0', 's', 'timeout', { minMs: 1000 })).toEqual({ error: 'timeout: expected a duration from 1 to 2147483 s (about 24.8 days), got 0 s' });
  // Too many digits to be exact is out of range too, not a rounded number.
  expect('error' in checkDuration('99999999999999999999999', 's', '-T')).toBe(true);
  expect(checkDuration(MAX_TIMER_MS, 'ms', 'x')).toEqual({ ms: MAX_TIMER_MS });
  expect(checkDuration(MAX_TIMER_MS + 1, 'ms', 'x')).toEqual({ error: 'x: expected a duration up to 2147483647 ms (about 24.8 days), got 2147483648 ms' });
});

test("malformed: pen's values are bare whole numbers (no units, no sign, no fraction)", () => {
  for (const bad of ['-1', '1.5', '5m', '', 'abc', '0x10']) {
    expect(checkDuration(bad, 's', '-b')).toEqual({ error: `-b: expected a whole number of seconds up to 2147483 s (about 24.8 days), got ${JSON.stringify(bad)}` });
  }
  expect('error' in checkDuration(-1, 's', '-b')).toBe(true);
  expect('error' in checkDuration(1.5, 'ms', '-b')).toBe(true);
  expect('error' in checkDuration(Number.NaN, 'ms', '-b')).toBe(true);
});

test('the config file: unit suffixes; a bare number is milliseconds; no prefix when the caller places the message', () => {
  const rule = { suffixes: true };
  expect(checkDuration('250ms', 'ms', '', rule)).toEqual({ ms: 250 });
  expect(checkDuration('3s', 'ms', '', rule)).toEqual({ ms: 3_000 });
  expect(checkDuration('5m', 'ms', '', rule)).toEqual({ ms: 300_000 });
  expect(checkDuration('1h', 'ms', '', rule)).toEqual({ ms: 3_600_000 });
  expect(checkDuration('1500', 'ms', '', rule)).toEqual({ ms: 1_500 });
  expect(checkDuration('596h', 'ms', '', rule)).toEqual({ ms: 596 * 3_600_000 });
  expect(checkDuration('597h', 'ms', '', rule)).toEqual({ error: 'expected a duration up to 2147483647 ms (about 24.8 days), got "597h"' });
  expect(checkDuration('30d', 'ms', '', rule)).toEqual({ error: 'expected a duration such as "250ms", "3s", "5m", "1h", or whole milliseconds up to 2147483647 ms (about 24.8 days), got "30d"' });
});

test('a tighter per-field maximum is honoured and shown, never beyond the longest timer', () => {
  expect(checkDuration('61', 's', 'x', { maxMs: 60_000 })).toEqual({ error: 'x: expected a duration up to 60 s (about 1 minute), got 61 s' });
  expect(checkDuration('60', 's', 'x', { maxMs: 60_000 })).toEqual({ ms: 60_000 });
  expect(durationRangeText('ms', { maxMs: MAX_TIMER_MS * 2 })).toBe('up to 2147483647 ms (about 24.8 days)');
  expect(durationRangeText('s', { minMs: 1, maxMs: 30_000 })).toBe('from 1 to 30 s');
});
