// Starts the real control plane for tests: `meshplane serve` as a child process
// (the CLI, as operators run it) on its own loopback address, waits for /readyz,
// and always stops it by PID (process group). Its log goes to a temp file, shown
// when startup fails (and on demand: logTail(), showLogOnFailure()).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually } from './eventually';
import { type HttpResponse, httpRequest } from './http';
import { track, untrack } from './processes';

/** dist/src/cli/meshplane.js, next to this file's compiled dist/test/support. */
export const MESHPLANE_CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'meshplane.js');

export interface MeshplaneOptions {
  /** The loopback address the REST API and xDS listen on (127.0.0.N). */
  readonly address: string;
  readonly httpPort?: number;
  readonly xdsPort?: number;
  /** Reused across restarts; a fresh temp dir when absent (removed by stop()). */
  readonly dataDir?: string;
  /** Extra environment (MESHPLANE_* of the test process are never inherited). */
  readonly env?: Record<string, string>;
  /** Extra `serve` flags, e.g. ['--instance-grace', '1s']. */
  readonly args?: readonly string[];
  readonly readyTimeoutMs?: number;
}

export interface ApiCallOptions {
  /** The bearer token; default the admin token; null sends no Authorization header. */
  readonly token?: string | null;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
}

export interface ApiResponse extends HttpResponse {
  /** The body parsed as JSON, when it is JSON. */
  readonly json: any;
}

export interface Meshplane {
  readonly url: string;
  /** The loopback address both servers listen on. */
  readonly address: string;
  /** The xDS server's host (the same address) and port. */
  readonly xdsAddress: string;
  readonly xdsPort: number;
  readonly adminToken: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** PID of the running server (changes on restart). */
  readonly pid: number;
  readonly running: boolean;
  /**
   * One request. A string body is sent as is (content type from `headers`, else YAML);
   * any other body as JSON.
   */
  api(method: string, pathAndQuery: string, body?: unknown, o?: ApiCallOptions): Promise<ApiResponse>;
  /** The last lines of the server's log. */
  logTail(lines?: number): string;
  /** SIGTERM, then waits for the exit (SIGKILL after 10 s). Removes a temp data dir it made. */
  stop(): Promise<void>;
  /** SIGKILL, then waits for the exit. Keeps the data dir. */
  kill(): Promise<void>;
  /** Stops the server (SIGTERM) if it runs, then starts it again on the same address, ports and data dir. Not after stop(). */
  restart(): Promise<void>;
}

function cleanEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHPLANE_')) env[k] = v;
  return { ...env, MESHPLANE_LOG_LEVEL: 'debug', ...extra };
}

class MeshplaneProcess implements Meshplane {
  readonly url: string;
  readonly xdsAddress: string;
  readonly logFile: string;
  adminToken = '';
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private exitInfo: string | undefined;
  private stopped = false;

  constructor(
    private readonly o: MeshplaneOptions,
    readonly dataDir: string,
    private readonly ownsDataDir: boolean,
    private readonly logDir: string,
  ) {
    this.url = `http://${o.address}:${o.httpPort ?? 8080}`;
    this.xdsAddress = o.address;
    this.logFile = path.join(logDir, 'meshplane.log');
  }

  get address(): string {
    return this.o.address;
  }

  get xdsPort(): number {
    return this.o.xdsPort ?? 18000;
  }

  get pid(): number {
    if (!this.child?.pid) throw new Error('meshplane is not running');
    return this.child.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitInfo === undefined;
  }

  logTail(lines = 40): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async start(): Promise<void> {
    if (this.running) throw new Error('meshplane is already running');
    const log = fs.openSync(this.logFile, 'a');
    const child = spawn(
      process.execPath,
      [
        MESHPLANE_CLI,
        'serve',
        '--data-dir',
        this.dataDir,
        '--http-address',
        `${this.o.address}:${this.o.httpPort ?? 8080}`,
        '--xds-address',
        `${this.xdsAddress}:${this.xdsPort}`,
        ...(this.o.args ?? []),
      ],
      { detached: true, stdio: ['ignore', log, log], env: cleanEnv(this.o.env) },
    );
    fs.closeSync(log);
    track(child.pid!);
    this.child = child;
    this.exitInfo = undefined;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        untrack(child.pid!);
        resolve();
      });
    });
    try {
      await eventually(
        async () => {
          if (this.exitInfo) throw new Error(`meshplane exited (${this.exitInfo})`);
          const r = await httpRequest(`${this.url}/readyz`, { timeoutMs: 2_000 });
          if (r.status !== 200) throw new Error(`/readyz: HTTP ${r.status} ${r.body}`);
        },
        { timeoutMs: this.o.readyTimeoutMs ?? 15_000, message: `meshplane on ${this.o.address} ready` },
      );
      this.adminToken =
        this.o.env?.MESHPLANE_ADMIN_TOKEN ??
        fs.readFileSync(path.join(this.dataDir, 'admin-token'), 'utf8').trim();
    } catch (err) {
      await this.kill();
      throw new Error(
        `${(err as Error).message}\n--- meshplane log (${this.logFile}) ---\n${this.logTail()}`,
      );
    }
  }

  private async signal(sig: NodeJS.Signals, killAfterMs?: number): Promise<void> {
    if (!this.running) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      // already gone
    }
    const timer =
      killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            try {
              process.kill(-this.pid, 'SIGKILL');
            } catch {
              // gone
            }
          }, killAfterMs);
    await this.exited;
    if (timer) clearTimeout(timer);
  }

  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.signal('SIGTERM', 10_000);
    if (this.ownsDataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
    fs.rmSync(this.logDir, { recursive: true, force: true });
  }

  async restart(): Promise<void> {
    if (this.stopped) throw new Error('meshplane was stopped (its temp dirs are gone): start a new one');
    await this.signal('SIGTERM', 10_000);
    await this.start();
  }

  async api(method: string, pathAndQuery: string, body?: unknown, o: ApiCallOptions = {}) {
    const token = o.token === undefined ? this.adminToken : o.token;
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let payload: string | Buffer | undefined;
    if (body !== undefined) {
      if (typeof body === 'string' || Buffer.isBuffer(body)) {
        payload = body;
        headers['content-type'] = 'application/yaml';
      } else {
        payload = JSON.stringify(body);
        headers['content-type'] = 'application/json';
      }
    }
    Object.assign(headers, o.headers);
    const res = await httpRequest(`${this.url}${pathAndQuery}`, {
      method,
      headers,
      body: payload,
      timeoutMs: o.timeoutMs,
    });
    let json: unknown;
    if (String(res.headers['content-type'] ?? '').includes('json')) {
      try {
        json = JSON.parse(res.body);
      } catch {
        json = undefined;
      }
    }
    return { ...res, json };
  }
}

/** Starts `meshplane serve` on `o.address` and waits until it is ready. */
export async function startMeshplane(o: MeshplaneOptions): Promise<Meshplane> {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-log-'));
  const dataDir = o.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-data-'));
  const mp = new MeshplaneProcess(o, dataDir, o.dataDir === undefined, logDir);
  try {
    await mp.start();
  } catch (err) {
    await mp.stop();
    throw err;
  }
  return mp;
}

/**
 * Mocha hook: prints the server's log after each failed test of the current suite.
 * Call inside a describe(); `get` returns the server (or undefined before it started).
 */
export function showLogOnFailure(get: () => Meshplane | undefined): void {
  afterEach(function () {
    const mp = get();
    if (this.currentTest?.state === 'failed' && mp) {
      console.error(`--- meshplane log (${mp.logFile}), last lines ---\n${mp.logTail(60)}`);
    }
  });
}

/** Asserts the API's error shape and returns it: {error: {code, message, details[]}}. */
export function errorOf(res: ApiResponse): {
  code: string;
  message: string;
  details: { path: string; message: string; [k: string]: unknown }[];
} {
  const e = res.json?.error;
  if (
    !e ||
    typeof e.code !== 'string' ||
    typeof e.message !== 'string' ||
    !Array.isArray(e.details) ||
    !e.details.every((d: any) => typeof d?.path === 'string' && typeof d?.message === 'string')
  ) {
    throw new Error(`not an API error (HTTP ${res.status}, ${res.headers['content-type']}): ${res.body}`);
  }
  return e;
}
