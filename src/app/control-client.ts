/**
 * The client side of the control port for `fulcrum ctl`: its arguments (penctl's address rule),
 * one command line out, the reply back.
 * A light module (no balancer) so that ctl starts fast.
 */
import type { Address } from '../core/address.ts';
import { MAX_TIMER_MS } from '../core/clock.ts';
import { FulcrumError } from '../core/errors.ts';
import { requestLine } from '../dataplane/control-client-socket.ts';

/** Where a control port listens: host:port or a Unix socket path. */
export type ControlAddress = Address;

/** Sends one command line and resolves to the whole reply; rejects on a connection error or timeout. */
export function sendControlCommand(address: ControlAddress, line: string, timeoutMs: number): Promise<string> {
  return requestLine(address, line, timeoutMs);
}

export class CtlUsageError extends FulcrumError {
  override readonly name = 'CtlUsageError';

  constructor(message: string, options?: ErrorOptions) {
    super('E_USAGE', message, options);
  }
}

/** penctl's address rule: a '/' means a Unix socket; otherwise the last ':' starts the port. */
export function parseCtlAddress(text: string): ControlAddress {
  if (text.includes('/')) return { kind: 'unix', path: text };
  const bracket = /^\[([^\]]+)\]:(.*)$/.exec(text);
  const colon = text.lastIndexOf(':');
  if (bracket === null && colon === -1) throw new CtlUsageError(`${text}: no port given (host:port or /path/to/socket)`);
  const host = bracket !== null ? bracket[1]! : text.slice(0, colon);
  const portText = bracket !== null ? bracket[2]! : text.slice(colon + 1);
  if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw new CtlUsageError(`${text}: "${portText}" is not a port number (1-65535)`);
  }
  return { kind: 'tcp', host: host === '' ? '127.0.0.1' : host, port: Number(portText) };
}

/** Replies that mean the command was not carried out. */
export function isErrorReply(reply: string): boolean {
  return /^(error: |do_cmd: ignoring |Exit is not enabled)/.test(reply);
}

export interface CtlRequest {
  address: ControlAddress;
  line: string;
  timeoutMs: number;
}

export function parseCtlArgs(argv: readonly string[]): CtlRequest {
  const args = [...argv];
  let timeoutMs = 10_000;
  if (args[0] === '-t') {
    const t = args[1];
    // Fractions allowed (penctl has no -t); the one upper bound every timer has (core/clock.ts).
    if (t === undefined || !/^\d+(\.\d+)?$/.test(t) || Number(t) <= 0 || Number(t) * 1000 > MAX_TIMER_MS) {
      throw new CtlUsageError(`-t needs a number of seconds above 0 and up to ${MAX_TIMER_MS / 1000}`);
    }
    timeoutMs = Math.ceil(Number(t) * 1000);
    args.splice(0, 2);
  }
  const [addr, ...words] = args;
  if (addr === undefined || words.length === 0) throw new CtlUsageError('give an address and a command');
  const line = words.join(' ');
  if (/[\r\n]/.test(line)) throw new CtlUsageError('a command is one line: it may not contain line breaks');
  return { address: parseCtlAddress(addr), line, timeoutMs };
}
