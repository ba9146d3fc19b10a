/**
 * Fulcrum's error vocabulary: every error it throws on purpose carries a stable code from
 * ERROR_CODES, so that callers (the CLI's exit codes, the admin API, logs, tests) branch on the
 * code, not on the wording. The named classes (UsageError, AddressError, ...) are FulcrumErrors with
 * a fixed code. docs/errors.md explains each code; a test keeps the two in step.
 */

/** Every code with a one-line description. Codes are stable: add new ones, never rename. */
export const ERROR_CODES = {
  E_USAGE: 'the command line (fulcrum or fulcrum ctl) is wrong: an unknown option, a bad or missing value, options that do not go together',
  E_ADDRESS: 'an address, port or server specification cannot be parsed',
  E_ACL: 'an ACL rule cannot be parsed',
  E_CONFIG_INVALID: 'the configuration has problems (each one is listed, with file:line:column for a config file)',
  E_TLS_CONFIG: 'TLS certificates, keys, CAs, OCSP responses or TLS settings cannot be loaded or do not fit together',
  E_COMMAND: 'a pen command (-F file, -o, SIGHUP, control port) was refused',
  E_LISTEN: 'Fulcrum cannot listen on an address (in use, not permitted, or a file that is not a socket is in the way)',
  E_RESOLVE: 'a server host name cannot be resolved',
  E_STATE_FILE: 'the client tracking state file cannot be read or is not a Fulcrum state file',
  E_ADMIN: 'the admin API cannot start: its token file is unreadable or unfit, or its address cannot be listened on',
  E_ADMIN_REQUEST: 'an admin API request was refused (the HTTP answer carries its status and API error code)',
  E_NOT_FOUND: 'an operation names a group, server or connection that does not exist',
  E_CONFLICT: 'an operation conflicts with the current state (a server already in its group, removing a group\'s last server)',
  E_TIMER_RANGE: 'a timer delay is outside what the runtime can arm (0 to 2^31-1 ms, about 24.8 days)',
  E_SHARED_LAYOUT: 'a size or slot of the memory shared by workers is out of range',
  E_SHARED_MEMORY: 'the memory shared by workers cannot be mapped as expected, or was written by another layout',
  E_START: 'Fulcrum could not start for a reason the message names (a pid file, an access log, a listener); nothing is left running',
  E_UPGRADE: 'an upgrade (SIGUSR2, fulcrum upgrade) could not start the new process; the old one goes on serving',
  E_INTERNAL: 'an internal invariant failed: a bug in Fulcrum',
} as const satisfies Readonly<Record<string, string>>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const ERROR_CODE_LIST = Object.keys(ERROR_CODES) as readonly ErrorCode[];

export class FulcrumError extends Error {
  override readonly name: string = 'FulcrumError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** The code of a FulcrumError, undefined for anything else (a runtime error, a bug). */
export function errorCode(e: unknown): ErrorCode | undefined {
  return e instanceof FulcrumError ? e.code : undefined;
}
