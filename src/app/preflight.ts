/**
 * What a config needs from the machine before it can start: files it will write (-l log, access
 * log, pid file, status and state files) in directories that exist and may be written, the admin
 * token file, certificate and key files that load, -u's user, and server host names that
 * resolve. `fulcrum check` reports every problem at once; a start (start.ts) meets the file
 * problems before anything is bound, so that a mistake is one line, never a stack trace.
 *
 * Order: Fulcrum opens the -l log and the access log before it drops privileges (as pen), so
 * those are checked as this process; the pid file is written after dropping to -u's user (as pen
 * 0.34.1 does: `pen -u nobody -p /root-owned/f.pid` says "Can't create pidfile"), so it is checked
 * as that user.
 */
import type { FulcrumConfig } from '../config/model.ts';
import { writeProblem, type Ids } from './files.ts';
import { resolveServer } from './resolve.ts';
import { lookupUser } from './serving.ts';

/** One problem, with the config file's field when it comes from one (YAML keys). */
export interface StartProblem {
  field: (string | number)[];
  message: string;
}

/** Problems with the files Fulcrum writes and -u's user: the ones a start checks first. */
export async function fileProblems(config: FulcrumConfig): Promise<StartProblem[]> {
  const g = config.global;
  const out: StartProblem[] = [];
  let ids: Ids | null = null;
  if (g.user !== null) {
    try {
      ids = await lookupUser(g.user);
    } catch (e) {
      out.push({ field: ['global', 'user'], message: `cannot switch to user ${g.user}: ${(e as Error).message}` });
    }
  }
  const writable = (path: string | null, what: string, field: (string | number)[], as: Ids | null): void => {
    if (path === null || path === '' || path === '-') return;
    const problem = writeProblem(path, as, as === null ? null : g.user);
    if (problem !== null) out.push({ field, message: `cannot write the ${what} ${path}: ${problem}` });
  };
  writable(g.logFile, 'log file', ['global', 'log_file'], null);
  writable(g.accessLog?.path ?? null, 'access log', ['access_log', 'file'], null);
  writable(g.pidFile, 'pid file', ['global', 'pid_file'], ids);
  writable(g.statusFile, 'status file', ['global', 'status_file'], ids);
  writable(g.stateFile, 'state file', ['global', 'state_file'], ids);
  return out;
}

/** Everything `fulcrum check` can know without binding: files, token, certificates, host names. */
export async function startProblems(config: FulcrumConfig, now: Date): Promise<StartProblem[]> {
  const out = await fileProblems(config);
  // The token and certificate code loads only for a config that has them (a start runs fileProblems alone).
  const tokenFile = config.global.admin?.tokenFile ?? null;
  if (tokenFile !== null) {
    const { readTokenFile } = await import('../control/admin-http.ts');
    try {
      readTokenFile(tokenFile);
    } catch (e) {
      out.push({ field: ['admin', 'token_file'], message: (e as Error).message });
    }
  }
  const certificates = config.listeners.flatMap((l, i) => (l.tls?.certificates ?? []).map((c, j) => ({ c, field: ['listeners', i, 'tls', 'certificates', j] })));
  if (certificates.length > 0) {
    const { loadCertificate } = await import('./tls-material.ts');
    for (const { c, field } of certificates) {
      try {
        loadCertificate(c, now);
      } catch (e) {
        out.push({ field, message: (e as Error).message });
      }
    }
  }
  const lookups: Promise<void>[] = [];
  for (const g of config.groups) {
    g.servers.forEach((s, k) => {
      lookups.push(
        resolveServer(s).then(
          () => undefined,
          (e: Error) => void out.push({ field: ['groups', g.name, 'servers', k], message: e.message }),
        ),
      );
    });
  }
  await Promise.all(lookups);
  return out;
}
