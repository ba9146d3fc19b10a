/**
 * `fulcrum check FILE...`: validates config files without starting anything (a light module:
 * the config loader and the start checks, no balancer). Beyond the schema, it reports what a
 * start would meet one by one (preflight.ts): files that cannot be written, a missing token,
 * certificate or key file, an unknown user, host names that do not resolve; all at once, at
 * file:line:column of the field concerned.
 */
import { formatIssue, issueAt } from '../config/yaml/parse.ts';
import { systemClock } from '../dataplane/system-clock.ts';
import { loadConfigFile } from './config-file.ts';
import { readBoundedText } from './files.ts';
import { startProblems } from './preflight.ts';

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
      continue;
    }
    const problems = await startProblems(result.config, new Date(systemClock.now()));
    if (problems.length > 0) {
      bad++;
      const text = readBoundedText(f, 'config file'); // read once more only to place the problems
      const issues = problems.map((p) => issueAt(text, f, p.field, p.message)).sort((a, b) => a.line - b.line || a.column - b.column);
      for (const i of issues) io.err(formatIssue(i) + '\n');
      continue;
    }
    io.out(`${f}: OK (${result.config.listeners.length} listener(s), ${result.config.groups.length} group(s))\n`);
  }
  return bad === 0 ? 0 : 1;
}
