/**
 * A problem found in a config file, and its one-line form. Apart from parse.ts so that code
 * which only reports issues (reloads) does not load the YAML parser and the schema at start.
 */
export interface ConfigIssue {
  file: string;
  /** 1-based; 0 when the problem concerns the file as a whole (e.g. it cannot be read). */
  line: number;
  column: number;
  /** Field path such as `groups.app.servers[1].weight`; empty for syntax errors. */
  path: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.column}` : i.file;
  return i.path === '' ? `${where}: ${i.message}` : `${where}: ${i.path}: ${i.message}`;
}
