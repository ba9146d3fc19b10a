// The error vocabulary: codes and causes travel with the error, and the named error classes keep
// their names (for instanceof and messages) while carrying their fixed code.
import { expect, test } from 'bun:test';
import { AclError, parseAclEntry } from '../../../src/core/acl/acl.ts';
import { AddressError, parseListenAddress } from '../../../src/core/address.ts';
import { checkTimerMs } from '../../../src/core/clock.ts';
import { errorCode, FulcrumError } from '../../../src/core/errors.ts';
import { parsePenArgs, UsageError } from '../../../src/config/pen-args.ts';

test('a FulcrumError carries its code and cause', () => {
  const cause = new Error('EADDRINUSE');
  const e = new FulcrumError('E_LISTEN', 'cannot listen on 127.0.0.1:80', { cause });
  expect(e).toBeInstanceOf(Error);
  expect(e.code).toBe('E_LISTEN');
  expect(e.cause).toBe(cause);
  expect(e.message).toBe('cannot listen on 127.0.0.1:80');
  expect(e.name).toBe('FulcrumError');
  expect(errorCode(e)).toBe('E_LISTEN');
  expect(errorCode(cause)).toBeUndefined();
  expect(errorCode('text')).toBeUndefined();
});

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

test('the named error classes are FulcrumErrors with their own code and name', () => {
  const cases: [unknown, new (...args: never[]) => Error, string, string][] = [
    [thrown(() => parseListenAddress('')), AddressError, 'AddressError', 'E_ADDRESS'],
    [thrown(() => parseAclEntry(true, [])), AclError, 'AclError', 'E_ACL'],
    [thrown(() => parsePenArgs([])), UsageError, 'UsageError', 'E_USAGE'],
  ];
  for (const [e, cls, name, code] of cases) {
    expect(e).toBeInstanceOf(cls);
    expect(e).toBeInstanceOf(FulcrumError);
    expect((e as FulcrumError).name).toBe(name);
    expect(errorCode(e)).toBe(code as FulcrumError['code']);
  }
});

test('an unusable timer delay is E_TIMER_RANGE', () => {
  expect(errorCode(thrown(() => checkTimerMs(-1, 'idle timeout')))).toBe('E_TIMER_RANGE');
  expect(checkTimerMs(1000)).toBe(1000);
});
