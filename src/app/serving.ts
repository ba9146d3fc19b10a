/**
 * What every serving process has, whatever its mode (single, primary or worker): the balancer
 * and its access log, reopened together on SIGHUP and closed together on stop; and the switch
 * to -u's user once the listeners are bound. start.ts and workers/worker.ts both build on it.
 */
import { readFile } from 'node:fs/promises';
import type { Clock, Random } from '../core/clock.ts';
import type { AccessLogConfig, FulcrumConfig } from '../config/model.ts';
import type { AccessLog } from '../control/access-log.ts';
import { Balancer, type BalancerOptions, type Diagnostics } from './balancer.ts';
import { FulcrumError } from '../core/errors.ts';

export class Serving {
  readonly balancer: Balancer;
  /** One JSON or text line per finished connection, when configured. */
  accessLog: AccessLog | null = null;

  constructor(config: FulcrumConfig, diag: Diagnostics, clock: Clock, random: Random, options: BalancerOptions) {
    this.balancer = new Balancer(config, diag, clock, random, options);
  }

  /**
   * Opens the configured access log as an observer of finished sessions; throws if it cannot.
   * Loaded only when configured: pino is several MB resident that a balancer without it need not hold.
   */
  async openAccessLog(config: AccessLogConfig | null): Promise<void> {
    if (config === null) return;
    const { AccessLog } = await import('../control/access-log.ts');
    this.accessLog = new AccessLog(config, this.balancer.clock);
    this.balancer.onSessionEnd.push(this.accessLog.onSessionEnd);
    this.balancer.onUdpSessionEnd.push(this.accessLog.onSessionEnd);
  }

  /** SIGHUP: reopen pen's -l log and the access log (rotation by mv). */
  reopenLogs(): void {
    this.balancer.log?.reopen();
    this.accessLog?.reopen();
  }

  async closeLogs(): Promise<void> {
    await this.accessLog?.close();
  }
}

/** -u: a user name (from /etc/passwd) or a numeric id. */
export async function lookupUser(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
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
