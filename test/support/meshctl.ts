// Runs the compiled `meshctl` as a subprocess (as scripts and operators do), with
// a clean environment, optional stdin and a hard time limit; parses its tables.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { track, untrack } from './processes';

/** dist/src/cli/meshctl.js, next to this file's compiled dist/test/support. */
export const MESHCTL_CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'meshctl.js');

export interface MeshctlOptions {
  /** MESHCTL_SERVER (unset when undefined). */
  readonly server?: string;
  /** MESHCTL_TOKEN (unset when undefined). */
  readonly token?: string;
  readonly stdin?: string;
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
}

export interface MeshctlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** One `node meshctl.js ...args`; resolves when it exits (SIGKILL after timeoutMs). */
export function runMeshctl(args: readonly string[], o: MeshctlOptions = {}): Promise<MeshctlResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('MESHCTL_') && !k.startsWith('MESHPLANE_')) env[k] = v;
  }
  if (o.server !== undefined) env.MESHCTL_SERVER = o.server;
  if (o.token !== undefined) env.MESHCTL_TOKEN = o.token;
  Object.assign(env, o.env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MESHCTL_CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    track(child.pid!);
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      clearTimeout(timer);
      untrack(child.pid!);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      untrack(child.pid!);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => {
      // meshctl may exit before reading its stdin (e.g. a usage error)
    });
    child.stdin.end(o.stdin ?? '');
  });
}

/**
 * Parses an aligned table (columns start where the header's words start) up to the
 * first empty line: one record per row, keyed by the header's words.
 */
export function parseTable(text: string): Record<string, string>[] {
  const lines = text.split('\n');
  const end = lines.indexOf('');
  const table = lines.slice(0, end < 0 ? lines.length : end);
  const [header, ...rows] = table;
  if (header === undefined) return [];
  const columns = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0], start: m.index }));
  return rows.map((row) =>
    Object.fromEntries(
      columns.map((c, i) => [c.name, row.slice(c.start, columns[i + 1]?.start ?? row.length).trim()]),
    ),
  );
}
