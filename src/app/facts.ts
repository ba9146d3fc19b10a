/**
 * What the command line prints about Fulcrum itself (version, algorithm names), kept apart
 * from the balancer so that `--help`, `--version` and `fulcrum ctl` load nothing heavy.
 */
import pkg from '../../package.json' with { type: 'json' };

export { algorithmNames } from '../core/balancing/registry.ts';

export const VERSION: string = pkg.version;

/** `fulcrum --version`. */
export function versionLine(): string {
  return `fulcrum ${VERSION} (bun ${Bun.version})\n`;
}
