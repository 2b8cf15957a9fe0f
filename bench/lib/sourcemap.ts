// Maps a position in compiled JavaScript (dist/...js) back to its TypeScript
// source through the .js.map tsc writes next to it, so that profiles name
// src/xds/stream.ts:123 instead of dist/src/xds/stream.js:98.
import fs from 'node:fs';
import path from 'node:path';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

/** Per generated line: segments [generatedColumn, sourceIndex, originalLine, originalColumn]. */
type Mappings = number[][][];

interface LoadedMap {
  readonly sources: string[];
  readonly lines: Mappings;
}

function decodeVlq(segment: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const c of segment) {
    const digit = B64_INDEX.get(c);
    if (digit === undefined) return out;
    value += (digit & 31) << shift;
    if (digit & 32) shift += 5;
    else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}

function parse(mappings: string): Mappings {
  const lines: Mappings = [];
  let source = 0;
  let line = 0;
  let column = 0;
  for (const l of mappings.split(';')) {
    let genColumn = 0;
    const segs: number[][] = [];
    for (const s of l.split(',')) {
      if (!s) continue;
      const v = decodeVlq(s);
      genColumn += v[0];
      if (v.length >= 4) {
        source += v[1];
        line += v[2];
        column += v[3];
        segs.push([genColumn, source, line, column]);
      }
    }
    lines.push(segs);
  }
  return lines;
}

const cache = new Map<string, LoadedMap | null>();

function load(jsFile: string): LoadedMap | null {
  if (cache.has(jsFile)) return cache.get(jsFile)!;
  let loaded: LoadedMap | null = null;
  try {
    const raw = JSON.parse(fs.readFileSync(`${jsFile}.map`, 'utf8')) as {
      sources: string[];
      sourceRoot?: string;
      mappings: string;
    };
    const dir = path.dirname(jsFile);
    loaded = {
      sources: raw.sources.map((s) => path.resolve(dir, raw.sourceRoot ?? '', s)),
      lines: parse(raw.mappings),
    };
  } catch {
    loaded = null;
  }
  cache.set(jsFile, loaded);
  return loaded;
}

/** The original file and 1-based line of a 0-based generated position, if a source map says. */
export function originalPosition(
  jsFile: string,
  line: number,
  column: number,
): { file: string; line: number } | undefined {
  const m = load(jsFile);
  const segs = m?.lines[line];
  if (!m || !segs || segs.length === 0) return undefined;
  let best = segs[0];
  for (const s of segs) {
    if (s[0] <= column) best = s;
    else break;
  }
  return { file: m.sources[best[1]], line: best[2] + 1 };
}
