// A strict reader of the Prometheus text exposition format (version 0.0.4), written from the
// format's specification (prometheus docs "Exposition formats", and the rules of Go's
// expfmt.TextParser), for the metrics tests. It throws on anything Prometheus would refuse
// and on what the format forbids less loudly: a TYPE or HELP given twice or after its
// samples, a family's samples not together, a series given twice, a histogram whose buckets
// are not cumulative or whose +Inf bucket is not its _count. What it reads is checked against a
// second, independent reader (the npm package parse-prometheus-text-format): the same families
// and types, and for counters and gauges the same series and values, so a misreading of the format shared by metcd's writer and this
// reader does not pass unseen.

import parsePrometheusTextFormat from 'parse-prometheus-text-format';

export type PromType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface PromSample {
  /** The sample's own name (a histogram's: name_bucket, name_sum, name_count). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  type: PromType;
  help: string | null;
  samples: PromSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** A float as Go's strconv.ParseFloat reads one (what Prometheus uses), or throws. */
function parseValue(text: string, where: string): number {
  if (text === 'NaN') return NaN;
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** The family a sample belongs to: a histogram's _bucket/_sum/_count belong to their base name. */
function familyOf(name: string, types: ReadonlyMap<string, PromType>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const t = types.get(base);
      if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
    }
  }
  return name;
}

export function parsePromText(text: string): Map<string, PromFamily> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition must end with a line feed');
  const families = new Map<string, PromFamily>();
  const types = new Map<string, PromType>();
  const seriesSeen = new Set<string>();
  const finished = new Set<string>(); // families whose samples ended (another family's began)
  let current: string | null = null;
  const lines = text.split('\n');
  lines.pop();
  const family = (name: string): PromFamily => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: 'untyped', help: null, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (m === null) return; // a comment
      const [, keyword, name, rest] = m as unknown as [string, 'HELP' | 'TYPE', string, string | undefined];
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
      const f = family(name);
      if (f.samples.length > 0) throw new Error(`${where}: ${keyword} for ${name} after its samples`);
      if (keyword === 'HELP') {
        if (f.help !== null) throw new Error(`${where}: second HELP for ${name}`);
        f.help = unescape(rest ?? '', false, where);
      } else {
        if (types.has(name)) throw new Error(`${where}: second TYPE for ${name}`);
        const t = (rest ?? '').trim();
        if (!TYPES.has(t)) throw new Error(`${where}: unknown type ${JSON.stringify(t)}`);
        types.set(name, t as PromType);
        f.type = t as PromType;
      }
      return;
    }
    const sample = parseSample(line, where);
    const name = familyOf(sample.name, types);
    if (name !== current) {
      if (current !== null) finished.add(current);
      if (finished.has(name)) throw new Error(`${where}: samples of ${name} are not together`);
      current = name;
    }
    const f = family(name);
    if (f.type === 'counter' && !(sample.value >= 0)) throw new Error(`${where}: counter ${name} is ${sample.value}`);
    const series = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seriesSeen.has(series)) throw new Error(`${where}: series given twice: ${series}`);
    seriesSeen.add(series);
    f.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  crossCheck(text, families);
  return families;
}

function parseSample(line: string, where: string): PromSample {
  let pos = 0;
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (nameMatch === null) throw new Error(`${where}: bad sample line ${JSON.stringify(line)}`);
  const name = nameMatch[0];
  pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    for (;;) {
      while (line[pos] === ' ' || line[pos] === '\t') pos++;
      if (line[pos] === '}') {
        pos++;
        break;
      }
      const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(pos));
      if (ln === null) throw new Error(`${where}: bad label name at ${pos}`);
      const label = ln[0];
      if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new Error(`${where}: reserved label name ${label}`);
      if (label in labels) throw new Error(`${where}: label ${label} given twice`);
      pos += label.length;
      while (line[pos] === ' ' || line[pos] === '\t') pos++;
      if (line[pos] !== '=') throw new Error(`${where}: = expected after ${label}`);
      pos++;
      while (line[pos] === ' ' || line[pos] === '\t') pos++;
      if (line[pos] !== '"') throw new Error(`${where}: " expected for ${label}`);
      pos++;
      let raw = '';
      for (;;) {
        const ch = line[pos];
        if (ch === undefined) throw new Error(`${where}: unterminated label value`);
        if (ch === '"') break;
        if (ch === '\\') {
          raw += ch + (line[pos + 1] ?? '');
          pos += 2;
          continue;
        }
        raw += ch;
        pos++;
      }
      pos++;
      labels[label] = unescape(raw, true, where);
      while (line[pos] === ' ' || line[pos] === '\t') pos++;
      if (line[pos] === ',') pos++;
      else if (line[pos] !== '}') throw new Error(`${where}: , or } expected after ${label}`);
    }
  }
  const rest = line.slice(pos);
  const parts = rest.trim().split(/[ \t]+/);
  if (!/^[ \t]/.test(rest) || parts.length < 1 || parts.length > 2 || parts[0] === '') {
    throw new Error(`${where}: value (and optional timestamp) expected: ${JSON.stringify(line)}`);
  }
  const value = parseValue(parts[0]!, where);
  if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`${where}: bad timestamp ${parts[1]}`);
  return { name, labels, value };
}

function unescape(raw: string, quoteToo: boolean, where: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch !== '\\') {
      if (quoteToo && ch === '\n') throw new Error(`${where}: raw line feed in a label value`);
      out += ch;
      continue;
    }
    const next = raw[++i];
    if (next === '\\') out += '\\';
    else if (next === 'n') out += '\n';
    else if (next === '"' && quoteToo) out += '"';
    else throw new Error(`${where}: bad escape \\${next ?? ''}`);
  }
  return out;
}

/** Per label set (without le): buckets in increasing le, cumulative, +Inf = _count, a _sum. */
function checkHistogram(f: PromFamily): void {
  const groups = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { buckets: [] }));
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      g.buckets.push([parseValue(le, f.name), s.value]);
    } else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else if (s.name === `${f.name}_count`) g.count = s.value;
    else throw new Error(`${f.name}: unexpected sample ${s.name}`);
  }
  for (const [key, g] of groups) {
    if (g.sum === undefined || g.count === undefined) throw new Error(`${f.name}${key}: _sum and _count required`);
    const last = g.buckets[g.buckets.length - 1];
    if (last === undefined || last[0] !== Infinity) throw new Error(`${f.name}${key}: the +Inf bucket must come last`);
    if (last[1] !== g.count) throw new Error(`${f.name}${key}: +Inf bucket ${last[1]} is not _count ${g.count}`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${f.name}${key}: le not increasing`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${f.name}${key}: buckets not cumulative`);
    }
  }
}

/** Throws unless the independent parser reads `text` as the same families, series and values. */
function crossCheck(text: string, families: Map<string, PromFamily>): void {
  const theirs = parsePrometheusTextFormat(text);
  const num = (v: string | undefined) => (v === undefined ? NaN : v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v));
  const ours = [...families.values()];
  const seen = theirs.map((f) => `${f.name} ${f.type.toLowerCase()}`).sort();
  const expected = ours.map((f) => `${f.name} ${f.type}`).sort();
  if (JSON.stringify(seen) !== JSON.stringify(expected)) {
    throw new Error(`parse-prometheus-text-format reads other families: ${JSON.stringify(seen)} vs ${JSON.stringify(expected)}`);
  }
  for (const t of theirs) {
    const f = families.get(t.name)!;
    const series = (labels: Record<string, string> | undefined) => JSON.stringify(Object.entries(labels ?? {}).sort());
    // It merges a histogram's labelled series into one and drops their labels and _count, so
    // histograms (bucket order, cumulative counts, +Inf = _count) are this reader's checks alone.
    if (f.type === 'histogram') continue;
    if (t.metrics.length !== f.samples.length) throw new Error(`${f.name}: ${t.metrics.length} series vs ${f.samples.length}`);
    for (const m of t.metrics) {
      const mine = f.samples.find((s) => series(s.labels) === series(m.labels));
      const value = num(m.value);
      if (mine === undefined || !(mine.value === value || (Number.isNaN(mine.value) && Number.isNaN(value)))) {
        throw new Error(`${f.name}${series(m.labels)}: value ${m.value} vs ${String(mine?.value)}`);
      }
    }
  }
}

/** The value of `name`'s sample with exactly these labels (a subset match: every given label). */
export function sampleValue(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}

/** The value of `name`'s sample with these labels; a missing one fails the test. */
export function requiredSample(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number {
  const v = sampleValue(families, name, labels);
  if (v === undefined) throw new Error(`${name}${JSON.stringify(labels)} missing`);
  return v;
}
