// `meshplane demo --smoke`, as CI runs it: a subprocess that brings up the control plane,
// four apps and four real Envoy sidecars (loopback 127.0.0.140-144), checks a request
// through frontend -> api -> reviews and that every proxy is SYNCED, prints a summary
// with the PIDs it started, tears everything down and exits 0. Afterwards none of those
// PIDs may still run.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { MESHPLANE_CLI } from '../support/meshplane';
import { track, untrack } from '../support/processes';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** PIDs the demo said it started (`started ... (pid N)`). */
function startedPids(stdout: string): number[] {
  return [...stdout.matchAll(/^started .*\(pid (\d+)\)/gm)].map((m) => Number(m[1]));
}

describe('meshplane demo', function () {
  this.timeout(180_000);
  let child: ChildProcess | undefined;
  let output = '';

  /** Runs `meshplane demo ARGS` in its own process group; resolves when it exits. */
  function runDemo(args: string[], timeoutMs: number): Promise<Run> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHPLANE_')) env[k] = v;
    return new Promise((resolve, reject) => {
      const c = spawn(process.execPath, [MESHPLANE_CLI, 'demo', ...args], {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env,
      });
      child = c;
      track(c.pid!);
      let stdout = '';
      let stderr = '';
      c.stdout!.on('data', (d: Buffer) => {
        stdout += d;
        output = stdout;
      });
      c.stderr!.on('data', (d: Buffer) => {
        stderr += d;
      });
      // SIGTERM lets the demo stop what it started; the after hook cleans up if even that fails.
      const timer = setTimeout(() => {
        try {
          process.kill(c.pid!, 'SIGTERM');
        } catch {
          // gone
        }
      }, timeoutMs);
      c.once('error', reject);
      c.once('close', (code, signal) => {
        clearTimeout(timer);
        untrack(c.pid!);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  afterEach(async function () {
    // Whatever happened, nothing the demo started outlives the test.
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      try {
        process.kill(child.pid!, 'SIGTERM');
      } catch {
        // gone
      }
      const t = setTimeout(() => {
        try {
          process.kill(-child!.pid!, 'SIGKILL');
        } catch {
          // gone
        }
      }, 15_000);
      await exited;
      clearTimeout(t);
    }
    for (const pid of startedPids(output)) {
      if (!alive(pid)) continue;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (this.currentTest?.state === 'failed') console.error(`--- demo output ---\n${output}`);
    child = undefined;
    output = '';
  });

  it('--smoke: up, a request through frontend -> api -> reviews, every proxy SYNCED, a summary, down, exit 0', async () => {
    const started = Date.now();
    const run = await runDemo(['--smoke'], 150_000);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 0, `exit ${run.code} (${run.signal})\n${run.stdout}\n${run.stderr}`);
    const out = run.stdout;
    assert.match(out, /^smoke: OK in \d+(\.\d+)? s$/m);
    assert.match(out, /^ {2}requests +10\/10 answered "frontend -> api -> reviews-vN" \(reviews-v\d/m);
    assert.match(out, /^ {2}proxies +4\/4 SYNCED: frontend, api, reviews-v1, reviews-v2$/m);
    assert.match(
      out,
      /cluster\.outbound\|9080\|version=vN\|reviews\.upstream_rq_total: v1 \d+, v2 \d+; mTLS handshakes to reviews [1-9]/,
    );
    // The PIDs: the summary lists exactly the processes it said it started (1 server, 4 apps, 4 Envoys)...
    const summary = out.match(/^ {2}pids +([\d ]+)$/m);
    assert.ok(summary, 'a pids line');
    const pids = summary[1].trim().split(/\s+/).map(Number);
    assert.equal(pids.length, 9);
    assert.deepEqual([...pids].sort(), startedPids(out).sort());
    assert.ok(!pids.includes(process.pid));
    // ...it reports them stopped, and none runs now.
    const stopped = out.match(/^stopped 9 processes: ([\d ]+)$/m);
    assert.ok(stopped, 'a stopped line');
    assert.deepEqual(stopped[1].trim().split(/\s+/).map(Number).sort(), [...pids].sort());
    assert.deepEqual(
      pids.filter((pid) => alive(pid)),
      [],
      'processes the demo started are still running',
    );
    console.log(`      (demo --smoke took ${seconds.toFixed(1)} s)`);
  });

  it('stops everything it started on SIGTERM while it runs, and exits', async () => {
    const run = runDemo(['--rate', '5'], 120_000);
    // Wait until the mesh is up and serving (the guide is printed), then stop it as Ctrl-C would.
    const deadline = Date.now() + 60_000;
    while (!output.includes('Ctrl-C stops everything')) {
      assert.ok(Date.now() < deadline, `the demo did not come up:\n${output}`);
      assert.ok(child && child.exitCode === null, `the demo exited early:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const pids = startedPids(output);
    assert.equal(pids.length, 9);
    assert.ok(pids.every(alive), 'everything runs before the signal');
    process.kill(child!.pid!, 'SIGTERM');
    const r = await run;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^SIGTERM: stopping everything$/m);
    assert.match(r.stdout, /^stopped 9 processes: /m);
    assert.deepEqual(
      pids.filter((pid) => alive(pid)),
      [],
      'processes the demo started are still running',
    );
  });

  it('rejects an unknown flag with exit 2 and the usage', async () => {
    const r = await runDemo(['--no-such-flag'], 20_000);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown flag --no-such-flag/);
    assert.match(r.stderr, /usage: meshplane demo \[--smoke\]/);
    assert.deepEqual(startedPids(r.stdout), [], 'nothing started');
  });
});
