/**
 * What a starting process tells the process waiting for it over fd 3 — a daemon's parent
 * (cli/daemon.ts) or an upgrade's old process (upgrade.ts): one `ready LINE` line once it serves
 * (LINE is the start line, possibly empty), or `error CODE MESSAGE` if it cannot start.
 */

export function readyReport(line: string): string {
  return `ready ${line}\n`;
}

export function errorReport(code: number, message: string): string {
  return `error ${code} ${message}\n`;
}

export type StartReport = { ready: true; line: string } | { ready: false; code: number | null; message: string | null };

/** What `text` (everything read so far) says; null while it says nothing yet. */
export function readStartReport(text: string): StartReport | null {
  const ready = /^ready ?(.*)\n/m.exec(text);
  if (ready !== null) return { ready: true, line: ready[1] ?? '' };
  const error = /^error (\d+) ([\s\S]*)$/m.exec(text);
  if (error !== null && text.endsWith('\n')) return { ready: false, code: Number(error[1]), message: error[2]!.trim() };
  return null;
}

/** The outcome once the starting process has exited or the wait is over. */
export function finalStartReport(text: string): StartReport {
  return readStartReport(text) ?? { ready: false, code: null, message: null };
}
