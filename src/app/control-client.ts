/**
 * The client side of the control port for `fulcrum ctl`: one command line out, the reply back.
 * A light module (no balancer) so that ctl starts fast.
 */
import type { Address } from '../core/address.ts';
import { requestLine } from '../dataplane/control-socket.ts';

/** Where a control port listens: host:port or a Unix socket path. */
export type ControlAddress = Address;

/** Sends one command line and resolves to the whole reply; rejects on a connection error or timeout. */
export function sendControlCommand(address: ControlAddress, line: string, timeoutMs: number): Promise<string> {
  return requestLine(address, line, timeoutMs);
}
