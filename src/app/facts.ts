/**
 * What the command line prints about Fulcrum itself (version, algorithm names), kept apart
 * from the balancer so that `--help`, `--version` and `fulcrum ctl` load nothing heavy.
 */
export { algorithmNames } from '../core/balancing/registry.ts';

let version: string | null = null;

/**
 * Fulcrum's version, from package.json, read when first asked (--version, the admin API, -d's
 * start line): a JSON module at start costs ≈0.8 MB resident for good (docs/performance.md).
 */
export async function fulcrumVersion(): Promise<string> {
  version ??= ((await import('../../package.json', { with: { type: 'json' } })) as { default: { version: string } }).default.version;
  return version;
}

/** `fulcrum --version`. */
export async function versionLine(): Promise<string> {
  return `fulcrum ${await fulcrumVersion()} (bun ${Bun.version})\n`;
}
