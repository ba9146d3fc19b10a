/**
 * What every serving process has, whatever its mode (single, primary or worker): the balancer
 * and its access log, reopened together on SIGHUP and closed together on stop; and the switch
 * to -u's user once the listeners are bound. start.ts and workers/worker.ts both build on it.
 */
import type { Clock, Random } from '../core/clock.ts';
import type { AccessLogConfig, FulcrumConfig } from '../config/model.ts';
import type { AccessLog } from '../control/access-log.ts';
import { Balancer, type BalancerOptions, type Diagnostics } from './balancer.ts';
import { FulcrumError } from '../core/errors.ts';
import { fileProblem } from './files.ts';

export class Serving {
  readonly balancer: Balancer;
  /** One JSON or text line per finished connection (HTTP mode: per request), when configured. */
  accessLog: AccessLog | null = null;

  constructor(config: FulcrumConfig, diag: Diagnostics, clock: Clock, random: Random, options: BalancerOptions) {
    this.balancer = new Balancer(config, diag, clock, random, options);
  }

  /** Log files that could not be reopened (or written) since start, for /metrics. */
  logReopenFailures = 0;

  /**
   * Opens the configured access log as an observer of finished sessions; resolves once the file
   * is open, rejects if it cannot be. Loaded only when configured: pino is several MB resident
   * that a balancer without it need not hold.
   */
  async openAccessLog(config: AccessLogConfig | null): Promise<void> {
    if (config === null) return;
    const { AccessLog } = await import('../control/access-log.ts');
    const log = new AccessLog(config, this.balancer.clock, (e) => {
      this.logReopenFailures++;
      this.balancer.diag.error(`access log ${config.path}: ${e.message}`);
    });
    await log.ready();
    this.accessLog = log;
    this.balancer.onSessionEnd.push(log.onSessionEnd);
    this.balancer.onUdpSessionEnd.push(log.onSessionEnd);
    this.balancer.onHttpRequestEnd.push(log.onHttpRequestEnd);
  }

  /**
   * SIGHUP: reopen pen's -l log and the access log (rotation by mv). A file that cannot be
   * reopened is reported (the returned lines, the log, the metric) and the old one stays open:
   * the balancer keeps serving and logging.
   */
  reopenLogs(): string[] {
    const problems: string[] = [];
    const reopen = (what: string, file: { path: string; reopen(): void } | null | undefined): void => {
      if (file == null) return;
      try {
        file.reopen();
      } catch (e) {
        problems.push(`cannot reopen the ${what} ${file.path}: ${fileProblem(e, file.path, 'write', this.balancer.global.user)}; still writing to the old file`);
      }
    };
    reopen('log file', this.balancer.log);
    reopen('access log', this.accessLog === null ? null : { path: this.accessLog.config.path, reopen: () => this.accessLog?.reopen() });
    this.logReopenFailures += problems.length;
    for (const p of problems) this.balancer.diag.error(p);
    return problems;
  }

  async closeLogs(): Promise<void> {
    await this.accessLog?.close();
  }
}

/** -u: a user name (from /etc/passwd) or a numeric id. */
export async function lookupUser(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await process.getBuiltinModule('node:fs/promises').readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && f[3] !== undefined) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  if (/^\d+$/.test(name)) return { uid: Number(name), gid: Number(name) };
  throw new FulcrumError('E_USAGE', `-u: no such user "${name}"`);
}

export function switchTo(ids: { uid: number; gid: number }): void {
  process.setgid?.(ids.gid);
  process.setuid?.(ids.uid);
}
