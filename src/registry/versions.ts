// Comparing two versions of an object: the document part of a stored object, the fields that
// differ ({path, from, to}) and a line-based unified diff (LCS) of two texts. Pure functions,
// no I/O and no dependencies: the API (diff, rollback) and meshctl (history summaries) use them.
import { isDeepStrictEqual } from 'node:util';

/** What a user writes of an object: kind, name, labels (when any) and spec. */
export interface ObjectDocument {
  kind: string;
  name: string;
  labels?: Record<string, string>;
  spec: unknown;
}

/** The document part of a stored object: drops revision, resourceVersion, times and status. */
export function documentOf(obj: {
  kind: string;
  name: string;
  labels?: Record<string, string>;
  spec?: unknown;
}): ObjectDocument {
  const labels = obj.labels && Object.keys(obj.labels).length > 0 ? { labels: { ...obj.labels } } : {};
  return { kind: obj.kind, name: obj.name, ...labels, spec: obj.spec };
}

/** One field that differs. `from` is absent when the field was added, `to` when it was removed. */
export interface FieldChange {
  path: string;
  from?: unknown;
  to?: unknown;
}

const PLAIN_KEY = /^[A-Za-z_][\w-]*$/;

function keyPath(base: string, key: string): string {
  if (!PLAIN_KEY.test(key)) return `${base}[${JSON.stringify(key)}]`;
  return base === '' ? key : `${base}.${key}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The leaf fields that differ between two values, as `spec.http[0].backends[1].weight` paths, in
 * document order (a's keys first, then keys only b has). Arrays are compared index by index; a
 * value of another type, or an element or key present on one side only, is one change.
 * @example fieldChanges({spec: {port: 80}}, {spec: {port: 81}}) // [{path: 'spec.port', from: 80, to: 81}]
 */
export function fieldChanges(a: unknown, b: unknown, path = ''): FieldChange[] {
  if (isDeepStrictEqual(a, b)) return [];
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...Object.keys(a), ...Object.keys(b).filter((k) => !Object.hasOwn(a, k))];
    return keys.flatMap((k) => fieldChanges(a[k], b[k], keyPath(path, k)));
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: FieldChange[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      out.push(...fieldChanges(a[i], b[i], `${path}[${i}]`));
    }
    return out;
  }
  return [{ path, ...(a !== undefined ? { from: a } : {}), ...(b !== undefined ? { to: b } : {}) }];
}

/** One line of an edit script: kept (' '), removed ('-') or added ('+'). */
export interface DiffLine {
  op: ' ' | '-' | '+';
  text: string;
}

/** Above this many cells, the changed middle is shown as all removed, then all added. */
const MAX_LCS_CELLS = 4_000_000;

/**
 * The shortest edit script from lines `a` to lines `b` (longest common subsequence), with common
 * head and tail lines trimmed first; removals come before additions within a change.
 */
export function diffLines(a: readonly string[], b: readonly string[]): DiffLine[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  ) {
    tail++;
  }
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  const out: DiffLine[] = a.slice(0, head).map((text) => ({ op: ' ', text }));
  if (x.length * y.length > MAX_LCS_CELLS) {
    out.push(
      ...x.map((text) => ({ op: '-' as const, text })),
      ...y.map((text) => ({ op: '+' as const, text })),
    );
  } else {
    // lcs[i][j]: the LCS length of x[i..] and y[j..], in one flat array.
    const w = y.length + 1;
    const lcs = new Uint32Array((x.length + 1) * w);
    for (let i = x.length - 1; i >= 0; i--) {
      for (let j = y.length - 1; j >= 0; j--) {
        lcs[i * w + j] =
          x[i] === y[j]
            ? lcs[(i + 1) * w + j + 1]! + 1
            : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
      }
    }
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      if (i < x.length && j < y.length && x[i] === y[j]) {
        out.push({ op: ' ', text: x[i]! });
        i++;
        j++;
      } else if (j >= y.length || (i < x.length && lcs[(i + 1) * w + j]! >= lcs[i * w + j + 1]!)) {
        out.push({ op: '-', text: x[i++]! });
      } else {
        out.push({ op: '+', text: y[j++]! });
      }
    }
  }
  out.push(...a.slice(a.length - tail).map((text) => ({ op: ' ' as const, text })));
  return out;
}

function linesOf(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

function range(start: number, count: number): string {
  // As GNU diff: an empty range names the line before it; a one-line range omits its count.
  if (count === 0) return `${start - 1},0`;
  return count === 1 ? `${start}` : `${start},${count}`;
}

/**
 * A unified diff (`---`/`+++` headers, `@@ -a,n +b,m @@` hunks, `context` lines around each
 * change) from text `a` to text `b`; '' when they are equal.
 * @example unifiedDiff('a\nb\n', 'a\nc\n', {fromLabel: 'v1', toLabel: 'v2'})
 * // '--- v1\n+++ v2\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n'
 */
export function unifiedDiff(
  a: string,
  b: string,
  o: { fromLabel: string; toLabel: string; context?: number },
): string {
  const script = diffLines(linesOf(a), linesOf(b));
  const context = o.context ?? 3;
  const changed = script.flatMap((l, i) => (l.op === ' ' ? [] : [i]));
  if (changed.length === 0) return '';
  // Group changes whose context windows touch into hunks: [first, last] script indexes.
  const hunks: [number, number][] = [];
  for (const i of changed) {
    const start = Math.max(0, i - context);
    const end = Math.min(script.length - 1, i + context);
    const last = hunks[hunks.length - 1];
    if (last && start <= last[1] + 1) last[1] = end;
    else hunks.push([start, end]);
  }
  let out = `--- ${o.fromLabel}\n+++ ${o.toLabel}\n`;
  // Line numbers (1-based) in a and b at each script index.
  let aLine = 1;
  let bLine = 1;
  let k = 0;
  for (const [start, end] of hunks) {
    for (; k < start; k++) {
      if (script[k]!.op !== '+') aLine++;
      if (script[k]!.op !== '-') bLine++;
    }
    const body = script.slice(start, end + 1);
    const aCount = body.filter((l) => l.op !== '+').length;
    const bCount = body.filter((l) => l.op !== '-').length;
    out += `@@ -${range(aLine, aCount)} +${range(bLine, bCount)} @@\n`;
    for (const l of body) out += `${l.op}${l.text}\n`;
  }
  return out;
}
