/**
 * The process's diagnostics: timestamped lines on stderr, debug lines under pen's -d level
 * (read at each line, so that a reload's new level applies at once).
 */
import type { Clock } from '../core/clock.ts';

/** Where the balancer's own messages go. */
export interface Diagnostics {
  info(msg: string): void;
  debug(level: number, msg: string): void;
  error(msg: string): void;
}

export function makeDiagnostics(name: string, getDebug: () => number, clock: Clock): Diagnostics {
  const stamp = (): string => new Date(clock.now()).toISOString();
  return {
    info: (m) => process.stderr.write(`${stamp()} ${name}: ${m}\n`),
    error: (m) => process.stderr.write(`${stamp()} ${name}: error: ${m}\n`),
    debug: (level, m) => {
      if (getDebug() >= level) process.stderr.write(`${stamp()} ${name}[debug${level}]: ${m}\n`);
    },
  };
}
