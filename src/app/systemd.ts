/**
 * systemd's readiness protocol (sd_notify(3)) for `Type=notify` units: READY=1 once listening,
 * RELOADING=1 then READY=1 around a reload, STOPPING=1 on stop, and a STATUS= line that
 * `systemctl status` shows. NOTIFY_SOCKET names a Unix datagram socket (a path, or `@name` in the
 * abstract namespace); without it every call does nothing. Messages are sent from this process
 * (dataplane/unix-datagram.ts), so the unit's default NotifyAccess=main accepts them.
 */
import { openUnixDatagram, type UnixDatagram } from '../dataplane/unix-datagram.ts';
import type { Diagnostics } from './diagnostics.ts';

export interface Notifier {
  ready(status: string): void;
  reloading(status: string): void;
  stopping(status: string): void;
  status(status: string): void;
}

const NONE: Notifier = { ready: () => undefined, reloading: () => undefined, stopping: () => undefined, status: () => undefined };

/** One line: a STATUS= value may not contain a newline (it would start another assignment). */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, '; ').trim();
}

/**
 * The notifier NOTIFY_SOCKET asks for (or one that does nothing). A socket that cannot be
 * created or a message that cannot be sent is reported once as an error, never thrown: systemd
 * would then time the start out, which says more than a balancer that refuses to run.
 */
export function systemdNotifier(env: Record<string, string | undefined>, diag: Diagnostics): Notifier {
  const path = env['NOTIFY_SOCKET'];
  if (path === undefined || path === '') return NONE;
  let socket: UnixDatagram;
  try {
    socket = openUnixDatagram(path);
  } catch (e) {
    diag.error(`cannot notify systemd at ${path}: ${(e as Error).message}`);
    return NONE;
  }
  let complained = false;
  const send = (lines: string[]): void => {
    const r = socket.send(lines.join('\n') + '\n');
    if (r !== 'sent' && !complained) {
      complained = true;
      diag.error(`cannot notify systemd at ${path}: ${r === 'full' ? 'its queue is full' : `errno ${r.errno}`}`);
    }
  };
  return {
    ready: (status) => send(['READY=1', `STATUS=${oneLine(status)}`, `MAINPID=${process.pid}`]),
    reloading: (status) => send(['RELOADING=1', `STATUS=${oneLine(status)}`]),
    stopping: (status) => send(['STOPPING=1', `STATUS=${oneLine(status)}`]),
    status: (status) => send([`STATUS=${oneLine(status)}`]),
  };
}
