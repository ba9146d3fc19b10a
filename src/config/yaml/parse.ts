/**
 * Config text → FulcrumConfig or the list of its problems. `yaml` parses (keeping node positions),
 * the schema checks the shape and converts the leaves, the cross-field checks see what one field
 * cannot see alone, and every problem becomes a ConfigIssue with file, line, column and field path,
 * all reported at once so that one edit round fixes the file. Pure: it reads no file (the text is
 * given; src/app/config-file.ts reads it).
 */
import { isAlias, isCollection, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import type { FulcrumConfig } from '../model.ts';
import { build } from './build.ts';
import { checkReferences } from './cross-field.ts';
import { formatPath, type Found } from './messages.ts';
import { fileSchema, flatten } from './schema.ts';
import type { ConfigIssue } from './issue.ts';

export { formatIssue, type ConfigIssue } from './issue.ts';

export type ConfigResult = { config: FulcrumConfig } | { errors: ConfigIssue[] };

/** Parses config text. Pure: `fileName` only labels the issues. */
export function parseConfigText(text: string, fileName: string): ConfigResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number, path: string, message: string): ConfigIssue => {
    const { line, col } = lineCounter.linePos(offset);
    return { file: fileName, line, column: col, path, message };
  };
  // Schema errors on top of a broken parse are mostly noise, so syntax errors come alone.
  if (doc.errors.length > 0) {
    return { errors: sortIssues(doc.errors.map((e) => at(e.pos[0], '', e.code === 'MULTIPLE_DOCS' ? 'a config file holds one YAML document; remove the extra "---"' : e.message))) };
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { errors: [at(0, '', e instanceof Error ? e.message : String(e))] };
  }
  if (raw === null || raw === undefined) {
    return { errors: [at(0, '', 'the file is empty; expected a mapping with global, acls, groups and listeners')] };
  }

  const found: Found[] = [];
  const result = fileSchema.safeParse(raw);
  if (!result.success) for (const issue of result.error.issues) found.push(...flatten(issue, []));
  found.push(...checkReferences(raw));

  if (found.length > 0 || !result.success) {
    return { errors: sortIssues(found.map((f) => at(position(doc, f), formatPath(f.path), f.message))) };
  }
  return { config: build(result.data) };
}

/**
 * A problem found after parsing (a file that cannot be opened, a name that does not resolve) as
 * a ConfigIssue at the field's place in the text, so that `fulcrum check` reports it the way it
 * reports schema errors. Pure: the text is given.
 */
export function issueAt(text: string, fileName: string, path: Found['path'], message: string): ConfigIssue {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const offset = doc.errors.length > 0 ? 0 : position(doc, { path, message });
  const { line, col } = lineCounter.linePos(offset);
  return { file: fileName, line, column: col, path: formatPath(path), message };
}

/** Offset for a problem: a scalar value's own position, else its key, else the nearest enclosing node. */
function position(doc: Document, f: Found): number {
  let node: unknown = doc.contents;
  let key: unknown = null;
  for (const seg of f.path) {
    if (isAlias(node)) node = node.resolve(doc);
    let next: { key: unknown; value: unknown } | undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair) next = { key: pair.key, value: pair.value };
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (item !== undefined) next = { key: null, value: item };
    }
    if (next === undefined) return start(key) ?? start(node) ?? 0;
    key = next.key;
    node = next.value;
  }
  if (f.atKey === true || node === null || isCollection(node)) return start(key) ?? start(node) ?? 0;
  return start(node) ?? start(key) ?? 0;
}

function start(node: unknown): number | undefined {
  if (typeof node !== 'object' || node === null || !('range' in node)) return undefined;
  const range = (node as { range?: readonly number[] | null }).range;
  return range?.[0] ?? undefined;
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}
