/**
 * `fulcrum check FILE...`: validates config files without starting anything (a light module:
 * the config loader only, no balancer).
 */
import { formatIssue } from '../config/yaml/parse.ts';
import { loadConfigFile } from './config-file.ts';

export interface CheckOutput {
  out(text: string): void;
  err(text: string): void;
}

/** Checks each file and reports it; resolves to the exit code (0 all valid, 1 otherwise). */
export async function checkConfigFiles(files: readonly string[], io: CheckOutput): Promise<number> {
  let bad = 0;
  for (const f of files) {
    const result = await loadConfigFile(f);
    if ('errors' in result) {
      bad++;
      for (const i of result.errors) io.err(formatIssue(i) + '\n');
    } else {
      io.out(`${f}: OK (${result.config.listeners.length} listener(s), ${result.config.groups.length} group(s))\n`);
    }
  }
  return bad === 0 ? 0 : 1;
}
