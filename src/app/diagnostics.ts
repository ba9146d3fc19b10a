/**
 * The process's diagnostics (start-up, reloads, errors, pen's -d debug lines, SIGUSR1's report)
 * and where they go (docs/operations.md, "Logs"): standard error in the foreground, syslog when
 * daemonised (as pen does), or a file. The debug level is read at each line, so that a
 * reload's new level applies at once.
 */
import type { Clock } from '../core/clock.ts';
import { FulcrumError } from '../core/errors.ts';
import type { UnixDatagram } from '../dataplane/unix-datagram.ts';
import type { Diagnostics } from '../control/observed.ts';
import { LogFile } from './log-file.ts';
import { writeStderr } from './stderr.ts';

/** Where the balancer's own messages go (declared by control/, which writes some of them). */
export type { Diagnostics } from '../control/observed.ts';

/** The environment variable that tells worker processes the primary's diagnostics target. */
export const DIAGNOSTICS_ENV = 'FULCRUM_DIAGNOSTICS_LOG';
/** The local syslog socket (journald's or a syslog daemon's). */
export const SYSLOG_SOCKET = '/dev/log';

export type Severity = 'error' | 'info' | 'debug';

/** One destination for diagnostic lines. */
export interface DiagnosticOutput {
  /** Where the lines go, for the start line and the docs: `stderr`, `syslog (/dev/log)`, a path. */
  readonly where: string;
  /** `name` is the process (`fulcrum`, `fulcrum worker 2`); `text` one line or a block. */
  write(severity: Severity, name: string, text: string): void;
  /** SIGHUP: a file is reopened (rotation by `mv`); other outputs ignore it. */
  reopen(): void;
  close(): Promise<void>;
}

/** syslog's facility user (pen's) and the severities: err 3, info 6, debug 7. */
const SYSLOG_PRI: Record<Severity, number> = { error: 8 + 3, info: 8 + 6, debug: 8 + 7 };
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function prefix(severity: Severity, text: string): string {
  return severity === 'error' ? `error: ${text}` : text;
}

/** True when systemd connected our stderr to the journal (JOURNAL_STREAM names its device:inode). */
function stderrIsJournal(env: Record<string, string | undefined>): boolean {
  const js = env['JOURNAL_STREAM'];
  if (js === undefined) return false;
  try {
    const st = process.getBuiltinModule('node:fs').fstatSync(2);
    return js === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

function stderrOutput(clock: Clock, env: Record<string, string | undefined>): DiagnosticOutput {
  // The journal stamps each line itself and reads a `<N>` prefix as its priority.
  const journal = stderrIsJournal(env);
  const stamp = (): string => new Date(clock.now()).toISOString();
  return {
    where: journal ? 'the journal (stderr)' : 'stderr',
    write: (severity, name, text) => {
      const line = `${name}: ${prefix(severity, text)}`;
      writeStderr(journal ? `<${SYSLOG_PRI[severity] - 8}>${line}\n` : `${stamp()} ${line}\n`);
    },
    reopen: () => undefined,
    close: async () => undefined,
  };
}

function fileOutput(path: string, clock: Clock): DiagnosticOutput {
  let file: LogFile;
  try {
    file = new LogFile(path);
  } catch (e) {
    throw new FulcrumError('E_START', `cannot open the diagnostics log ${path}: ${(e as Error).message}`, { cause: e });
  }
  return {
    where: path,
    write: (severity, name, text) => file.write(`${new Date(clock.now()).toISOString()} ${name}: ${prefix(severity, text)}`),
    reopen: () => file.reopen(),
    close: () => file.close(),
  };
}

/**
 * RFC 3164 datagrams, as syslog(3) writes them: `<PRI>Mmm dd hh:mm:ss fulcrum[pid]: text`, one
 * per line of the text. A datagram the reader has no room for is dropped (never waited for) and
 * counted; the count is reported in the next line that gets through.
 */
async function syslogOutput(path: string, clock: Clock): Promise<DiagnosticOutput> {
  // The Unix datagram socket's code (bun:ffi and libc) loads only for syslog.
  const { openUnixDatagram } = await import('../dataplane/unix-datagram.ts');
  let socket: UnixDatagram;
  try {
    socket = openUnixDatagram(path);
  } catch (e) {
    throw new FulcrumError('E_START', `cannot log to syslog at ${path}: ${(e as Error).message}`, { cause: e });
  }
  let dropped = 0;
  const stamp = (): string => {
    const d = new Date(clock.now());
    const two = (n: number): string => String(n).padStart(2, '0');
    return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  };
  const send = (severity: Severity, line: string): boolean => {
    const r = socket.send(`<${SYSLOG_PRI[severity]}>${stamp()} fulcrum[${process.pid}]: ${line}`);
    if (r === 'sent') return true;
    dropped++;
    return false;
  };
  const out: DiagnosticOutput = {
    where: path === SYSLOG_SOCKET ? 'syslog' : `syslog (${path})`,
    write: (severity, name, text) => {
      if (dropped > 0) {
        const n = dropped;
        dropped = 0;
        if (!send('error', `${n} diagnostic line(s) dropped: the syslog socket was full or missing`)) dropped += n;
      }
      // The tag already says fulcrum[pid]; a worker or a debug level follows it.
      const rest = name.replace(/^fulcrum ?/, '').replace(/^\[(.*)\]$/, '$1');
      const who = rest === '' ? '' : `${rest}: `;
      for (const line of text.replace(/\n$/, '').split('\n')) send(severity, who + prefix(severity, line));
    },
    reopen: () => undefined,
    close: async () => socket.close(),
  };
  return out;
}

/**
 * Opens `target`: `stderr`, `syslog` (/dev/log), `syslog:PATH` (another local syslog socket) or a
 * file path. Asking for syslog where no socket exists is an error (E_START): the messages would
 * go nowhere.
 */
export async function openDiagnosticOutput(target: string, clock: Clock, env: Record<string, string | undefined> = process.env): Promise<DiagnosticOutput> {
  if (target === 'stderr') return stderrOutput(clock, env);
  if (target === 'syslog' || target.startsWith('syslog:')) {
    const path = target === 'syslog' ? SYSLOG_SOCKET : target.slice('syslog:'.length);
    if (!path.startsWith('@') && !process.getBuiltinModule('node:fs').existsSync(path)) {
      throw new FulcrumError('E_START', `cannot log to syslog: there is no socket at ${path} (no syslog daemon or journald?); give --diagnostics-log FILE`);
    }
    return syslogOutput(path, clock);
  }
  return fileOutput(target, clock);
}

/**
 * Where a process's messages go when nothing was configured: standard error in the foreground;
 * syslog when daemonised and a syslog socket exists; else null (the caller tells the user that
 * the daemon's messages would be lost).
 */
export function defaultDiagnosticsTarget(daemon: boolean): string | null {
  if (!daemon) return 'stderr';
  return process.getBuiltinModule('node:fs').existsSync(SYSLOG_SOCKET) ? 'syslog' : null;
}

export function makeDiagnostics(name: string, getDebug: () => number, clock: Clock, output: DiagnosticOutput = stderrOutput(clock, process.env)): Diagnostics {
  return {
    info: (m) => output.write('info', name, m),
    error: (m) => output.write('error', name, m),
    debug: (level, m) => {
      if (getDebug() >= level) output.write('debug', `${name}[debug${level}]`, m);
    },
  };
}
