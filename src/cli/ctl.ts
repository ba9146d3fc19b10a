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
import { isErrorReply, parseCtlArgs, sendControlCommand, type CtlRequest } from '../app/control-client.ts';

const USAGE = `usage: fulcrum ctl [-t SECONDS] host:port|/path/to/socket command [args...]
  e.g. fulcrum ctl 127.0.0.1:10080 servers
       fulcrum ctl /run/fulcrum.ctl server 1 weight 3
  -t SECONDS   give up when there is no complete reply within this time [10]
`;

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
