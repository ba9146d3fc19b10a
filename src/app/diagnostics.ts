/**
 * The process's diagnostics: timestamped lines on stderr, debug lines under pen's -d level
 * (read at each line, so that a reload's new level applies at once).
 */
import type { Clock } from '../core/clock.ts';

import type { Diagnostics } from '../control/observed.ts';

/** Where the balancer's own messages go (declared by control/, which writes some of them). */
export type { Diagnostics } from '../control/observed.ts';

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
