/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for checking what
 * /metrics serves. It throws on anything Prometheus would reject or that is ambiguous:
 * malformed names, labels or values, bad escapes, a TYPE after samples of its family, a family
 * split in two, duplicate series, unknown types, and suffixes that do not fit the family's type.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface PromFamily {
  name: string;
  type: MetricType;
  help: string | undefined;
  samples: PromSample[];
}

export class PromParseError extends Error {
  override readonly name = 'PromParseError';
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, lineNo: number): number {
  if (text === 'NaN') return NaN;
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new PromParseError(`line ${lineNo}: "${text}" is not a sample value`);
  return Number(text);
}

/** The family a sample name belongs to, given the families declared so far. */
function familyOf(sample: string, families: Map<string, PromFamily>): PromFamily | undefined {
  const direct = families.get(sample);
  if (direct !== undefined) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const f = families.get(sample.slice(0, -suffix.length));
    if (f === undefined) continue;
    if (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket')) return f;
  }
  return undefined;
}

/** Label set `{a="x",b="y"}` starting at text[i] === '{'; returns the labels and the index after '}'. */
function parseLabels(text: string, start: number, lineNo: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  const fail = (m: string): never => {
    throw new PromParseError(`line ${lineNo}: ${m} at column ${i + 1}`);
  };
  for (;;) {
    if (text[i] === '}') return { labels, end: i + 1 };
    const eq = text.indexOf('=', i);
    if (eq === -1) fail('expected label="value"');
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) fail(`bad label name "${name}"`);
    if (name.startsWith('__')) fail(`label name "${name}" is reserved`);
    if (Object.hasOwn(labels, name)) fail(`label "${name}" given twice`);
    i = eq + 1;
    if (text[i] !== '"') fail('a label value must be quoted');
    i++;
    let value = '';
    for (;;) {
      const ch = text[i];
      if (ch === undefined) fail('unterminated label value');
      if (ch === '"') break;
      if (ch === '\\') {
        const next = text[i + 1];
        if (next === '\\') value += '\\';
        else if (next === '"') value += '"';
        else if (next === 'n') value += '\n';
        else fail(`bad escape "\\${next ?? ''}" in a label value`);
        i += 2;
        continue;
      }
      if (ch === '\n') fail('line break in a label value');
      value += ch;
      i++;
    }
    labels[name] = value;
    i++;
    if (text[i] === ',') {
      i++;
      if (text[i] === '}') return { labels, end: i + 1 }; // a trailing comma is allowed
      continue;
    }
    if (text[i] !== '}') fail('expected "," or "}" after a label');
  }
}

export function parsePrometheusText(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  const seriesSeen = new Set<string>();
  /** Families whose samples have ended (another family's line came after them). */
  const closed = new Set<string>();
  let current: PromFamily | null = null;
  if (text !== '' && !text.endsWith('\n')) throw new PromParseError('the exposition must end with a line break');
  const lines = text.split('\n');
  lines.pop();

  const enter = (f: PromFamily, lineNo: number): void => {
    if (current === f) return;
    if (closed.has(f.name)) throw new PromParseError(`line ${lineNo}: family ${f.name} continues after other families (its lines must be together)`);
    if (current !== null) closed.add(current.name);
    current = f;
  };

  lines.forEach((line, idx) => {
    const lineNo = idx + 1;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (m === null) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, 'HELP' | 'TYPE', string, string | undefined];
      if (!METRIC_NAME.test(name)) throw new PromParseError(`line ${lineNo}: bad metric name "${name}"`);
      let f = families.get(name);
      if (kind === 'TYPE') {
        const type = (rest ?? '').trim() as MetricType;
        if (!TYPES.has(type)) throw new PromParseError(`line ${lineNo}: unknown type "${rest ?? ''}" for ${name}`);
        if (f !== undefined && f.samples.length > 0) throw new PromParseError(`line ${lineNo}: TYPE of ${name} after its samples`);
        if (f !== undefined && f.type !== 'untyped') throw new PromParseError(`line ${lineNo}: second TYPE line for ${name}`);
        if (f === undefined) {
          f = { name, type, help: undefined, samples: [] };
          families.set(name, f);
        } else {
          f.type = type;
        }
      } else {
        if (f !== undefined && f.help !== undefined) throw new PromParseError(`line ${lineNo}: second HELP line for ${name}`);
        if (f === undefined) {
          f = { name, type: 'untyped', help: undefined, samples: [] };
          families.set(name, f);
        }
        const help = rest ?? '';
        if (/\\(?![\\n])/.test(help)) throw new PromParseError(`line ${lineNo}: bad escape in the HELP of ${name}`);
        f.help = help.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      }
      enter(f, lineNo);
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (nameMatch === null) throw new PromParseError(`line ${lineNo}: a sample must start with a metric name: ${JSON.stringify(line)}`);
    const name = nameMatch[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i, lineNo));
    if (line[i] !== ' ' && line[i] !== '\t') throw new PromParseError(`line ${lineNo}: expected a space before the value`);
    const fields = line.slice(i).trim().split(/[ \t]+/);
    if (fields.length < 1 || fields.length > 2 || fields[0] === '') throw new PromParseError(`line ${lineNo}: expected "value [timestamp]"`);
    const value = parseValue(fields[0]!, lineNo);
    let timestampMs: number | undefined;
    if (fields[1] !== undefined) {
      if (!/^-?\d+$/.test(fields[1])) throw new PromParseError(`line ${lineNo}: bad timestamp "${fields[1]}"`);
      timestampMs = Number(fields[1]);
    }
    let f = familyOf(name, families);
    if (f === undefined) {
      f = { name, type: 'untyped', help: undefined, samples: [] };
      families.set(name, f);
    }
    if (f.type === 'counter' && value < 0) throw new PromParseError(`line ${lineNo}: counter ${name} is negative`);
    if ((f.type === 'histogram' || f.type === 'summary') && name === f.name && f.type === 'histogram') {
      throw new PromParseError(`line ${lineNo}: histogram ${f.name} has a sample without _bucket, _sum or _count`);
    }
    enter(f, lineNo);
    const key = name + JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
    if (seriesSeen.has(key)) throw new PromParseError(`line ${lineNo}: duplicate series ${name}${JSON.stringify(labels)}`);
    seriesSeen.add(key);
    f.samples.push(timestampMs === undefined ? { name, labels, value } : { name, labels, value, timestampMs });
  });
  return families;
}

/** The one sample of `family` whose labels include `labels`; throws when there is not exactly one. */
export function sampleValue(families: Map<string, PromFamily>, family: string, labels: Record<string, string> = {}): number {
  const f = families.get(family);
  if (f === undefined) throw new Error(`no metric family ${family}`);
  const found = f.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`${found.length} samples of ${family} match ${JSON.stringify(labels)}`);
  return found[0]!.value;
}
