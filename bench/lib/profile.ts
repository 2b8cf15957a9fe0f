// Summarizes a V8 .cpuprofile: top functions by self time and by total
// (inclusive) time, and self time per file/package.
import fs from 'node:fs';
import { originalPosition } from './sourcemap';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: CpuNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface ProfileEntry {
  readonly name: string;
  readonly ms: number;
  readonly pct: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  /** Time outside JS idle: what the process was busy with. */
  readonly busyMs: number;
  readonly topSelf: ProfileEntry[];
  readonly topTotal: ProfileEntry[];
  readonly byFile: ProfileEntry[];
}

const ROOT = process.cwd();

function shortUrl(url: string): string {
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(ROOT)) u = u.slice(ROOT.length + 1);
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm + 'node_modules/'.length);
  return u;
}

/** Our compiled code maps back to its TypeScript source (dist/src/x.js:98 -> src/x.ts:123). */
function location(f: CpuNode['callFrame']): { file: string; line: number } {
  const file = f.url.replace(/^file:\/\//, '');
  if (file.startsWith(ROOT) && file.includes('/dist/') && !file.includes('node_modules')) {
    const o = originalPosition(file, f.lineNumber, f.columnNumber);
    if (o) return { file: shortUrl(o.file), line: o.line };
  }
  return { file: shortUrl(f.url), line: f.lineNumber + 1 };
}

function keyOf(n: CpuNode): string {
  const f = n.callFrame;
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name; // (garbage collector), (program), (idle), native
  const at = location(f);
  return `${name} ${at.file}:${at.line}`;
}

function fileOf(n: CpuNode): string {
  const f = n.callFrame;
  if (!f.url) return f.functionName || '(native)';
  const u = location(f).file;
  // Packages: their name; node internals: 'node:<module>'; ours: the file.
  if (u.startsWith('node:')) return u;
  if (/^(dist\/|src\/|bench\/|envoy-protos\/)/.test(u)) return u;
  const parts = u.split('/');
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

export function summarizeProfile(file: string, top = 40): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, CpuNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const totalSamples = p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const totalMs = (p.endTime - p.startTime) / 1000;
  const msPerSample = totalSamples > 0 ? totalMs / totalSamples : 0;

  const self = new Map<string, number>();
  const files = new Map<string, number>();
  let idle = 0;
  for (const n of p.nodes) {
    const ms = (n.hitCount ?? 0) * msPerSample;
    if (ms === 0) continue;
    const k = keyOf(n);
    if (k === '(idle)') idle += ms;
    self.set(k, (self.get(k) ?? 0) + ms);
    const f = fileOf(n);
    files.set(f, (files.get(f) ?? 0) + ms);
  }

  // Inclusive time per function, counted once per stack (recursion does not double it).
  const inclusive = new Map<string, number>();
  const onStack = new Map<string, number>();
  const subtotal = new Map<number, number>();
  const total = (id: number): number => {
    const cached = subtotal.get(id);
    if (cached !== undefined) return cached;
    const n = byId.get(id)!;
    let t = (n.hitCount ?? 0) * msPerSample;
    for (const c of n.children ?? []) t += total(c);
    subtotal.set(id, t);
    return t;
  };
  const rootNode = p.nodes[0];
  const walk = (id: number) => {
    const n = byId.get(id)!;
    const k = keyOf(n);
    const depth = onStack.get(k) ?? 0;
    if (depth === 0) inclusive.set(k, (inclusive.get(k) ?? 0) + total(id));
    onStack.set(k, depth + 1);
    for (const c of n.children ?? []) walk(c);
    onStack.set(k, depth);
  };
  if (rootNode) walk(rootNode.id);

  const busyMs = totalMs - idle;
  const entries = (m: Map<string, number>, skip: (k: string) => boolean) =>
    [...m.entries()]
      .filter(([k]) => !skip(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({
        name,
        ms: Math.round(ms),
        pct: busyMs > 0 ? Math.round((ms / busyMs) * 1000) / 10 : 0,
      }));
  const meta = (k: string) => k === '(idle)' || k === '(root)' || k === '(program)';
  return {
    file,
    totalMs: Math.round(totalMs),
    busyMs: Math.round(busyMs),
    topSelf: entries(self, (k) => k === '(idle)'),
    topTotal: entries(inclusive, meta),
    byFile: entries(files, (k) => k === '(idle)'),
  };
}
