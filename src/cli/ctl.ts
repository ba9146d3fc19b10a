/**
 * `fulcrum ctl ADDRESS COMMAND...`: a penctl(1)-compatible client for the control port (and for
 * pen's). ADDRESS is host:port (the last colon separates the port, so ::1:10080 works as in
 * penctl; [::1]:10080 works too) or a Unix socket path. The words of the command are joined by
 * spaces and sent as one line; the reply is printed as it came.
 *
 * Unlike penctl, the exit status says what happened: 0 for a reply, 1 when the connection
 * fails or the reply is an error ("error: ..." from Fulcrum, "do_cmd: ignoring ..." from pen),
 * 2 for a usage mistake.
 */
import { sendControlCommand, type ControlAddress } from '../app/control-client.ts';

const USAGE = `usage: fulcrum ctl [-t SECONDS] host:port|/path/to/socket command [args...]
  e.g. fulcrum ctl 127.0.0.1:10080 servers
       fulcrum ctl /run/fulcrum.ctl server 1 weight 3
  -t SECONDS   give up when there is no complete reply within this time [10]
`;

export class CtlUsageError extends Error {
  override readonly name = 'CtlUsageError';
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
    if (t === undefined || !/^\d+(\.\d+)?$/.test(t) || Number(t) <= 0) throw new CtlUsageError('-t needs a number of seconds above 0');
    timeoutMs = Number(t) * 1000;
    args.splice(0, 2);
  }
  const [addr, ...words] = args;
  if (addr === undefined || words.length === 0) throw new CtlUsageError('give an address and a command');
  const line = words.join(' ');
  if (/[\r\n]/.test(line)) throw new CtlUsageError('a command is one line: it may not contain line breaks');
  return { address: parseCtlAddress(addr), line, timeoutMs };
}

export async function ctl(argv: readonly string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  let req: CtlRequest;
  try {
    req = parseCtlArgs(argv);
  } catch (e) {
    process.stderr.write(`fulcrum ctl: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const where = req.address.kind === 'unix' ? req.address.path : `${req.address.host}:${req.address.port}`;
  let reply: string;
  try {
    reply = await sendControlCommand(req.address, req.line, req.timeoutMs);
  } catch (e) {
    process.stderr.write(`fulcrum ctl: ${where}: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(reply);
  return isErrorReply(reply) ? 1 : 0;
}
