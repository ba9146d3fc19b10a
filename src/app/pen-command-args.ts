/**
 * What every pen command shares: its error (a refused command changes nothing) and the parsing
 * of its numbers, durations and ACL numbers, pen's way.
 */
import { AclTable } from '../core/acl/acl.ts';
import { checkDuration, type DurationRule } from '../core/duration.ts';
import { FulcrumError } from '../core/errors.ts';

export class CommandError extends FulcrumError {
  override readonly name = 'CommandError';

  constructor(message: string, options?: ErrorOptions) {
    super('E_COMMAND', message, options);
  }
}

export function int(text: string | undefined, what: string, min = 0): number {
  if (text === undefined) throw new CommandError(`${what}: missing number`);
  if (!/^-?\d+$/.test(text)) throw new CommandError(`${what}: "${text}" is not an integer`);
  const n = Number(text);
  if (n < min) throw new CommandError(`${what}: ${n} is below ${min}`);
  return n;
}

/** A time in pen's seconds, as ms, by the one rule for every duration (core/duration.ts). */
export function seconds(text: string | undefined, what: string, rule?: DurationRule): number {
  if (text === undefined) throw new CommandError(`${what}: missing number`);
  const r = checkDuration(text, 's', what, rule);
  if ('error' in r) throw new CommandError(r.error);
  return r.ms;
}

export function aclIndex(text: string | undefined, what: string): number {
  const n = int(text, what);
  try {
    AclTable.checkIndex(n);
  } catch (e) {
    throw new CommandError(`${what}: ${(e as Error).message}`);
  }
  return n;
}
