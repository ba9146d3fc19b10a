/**
 * The wording of config problems: field paths as written in the file, "expected X, got Y", and
 * "did you mean" suggestions for misspelt names. Shared by the schema and the cross-field checks.
 */

export type Path = readonly PropertyKey[];

/** One problem before it is placed on a line. `atKey`: point at the key, not its value. */
export interface Found {
  path: Path;
  message: string;
  atKey?: boolean;
}

export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

export function expecting(what: string): (iss: { input?: unknown }) => string {
  return (iss) => (iss.input === undefined ? `missing; expected ${what}` : `expected ${what}, got ${describe(iss.input)}`);
}

/** Optimal string alignment distance: Levenshtein plus adjacent swaps ("wieght"). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest known word, if it is close enough to be a likely typo (or a camelCase spelling). */
function suggest(word: string, known: readonly string[]): string | undefined {
  const squash = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const same = known.find((k) => squash(k) === squash(word));
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3));
  for (const k of known) {
    const dist = editDistance(word.toLowerCase(), k.toLowerCase());
    if (dist <= bestDistance && (best === undefined || dist < bestDistance)) {
      best = k;
      bestDistance = dist;
    }
  }
  return best;
}

export function didYouMean(word: string, known: readonly string[]): string {
  const s = suggest(word, known);
  return s === undefined ? '' : ` (did you mean '${s}'?)`;
}
