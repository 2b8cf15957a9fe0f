// Runs `meshplane serve` in this process (the CLI module itself, unchanged) with
// an IPC channel to the harness, for two things the plain CLI cannot give: it
// ends when the harness goes away (even when the harness is killed), and it can
// record CPU profiles of chosen windows (--server-cpu-prof) with the in-process
// inspector.
//
// usage (forked by bench/run.ts): node server-host.js <path/to/meshplane.js> serve [flags]
import fs from 'node:fs';
import inspector from 'node:inspector';
import v8 from 'node:v8';

type Msg = { op: 'profile-start' } | { op: 'profile-stop'; file: string };

const [cli, ...args] = process.argv.slice(2);
if (!cli) {
  console.error('usage: server-host.js <meshplane.js> serve [flags]');
  process.exit(2);
}

let session: inspector.Session | undefined;

function post(method: string, params?: object): Promise<any> {
  return new Promise((resolve, reject) => {
    session!.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

process.on('message', async (raw: unknown) => {
  const m = raw as Msg;
  try {
    if (m.op === 'profile-start') {
      if (!session) {
        session = new inspector.Session();
        session.connect();
        await post('Profiler.enable');
        await post('Profiler.setSamplingInterval', { interval: 1000 });
      }
      await post('Profiler.start');
      process.send?.({ op: 'profile-started' });
    } else if (m.op === 'profile-stop') {
      const { profile } = await post('Profiler.stop');
      fs.writeFileSync(m.file, JSON.stringify(profile));
      process.send?.({ op: 'profile-written', file: m.file });
    }
  } catch (err) {
    process.send?.({ op: 'profile-error', message: (err as Error).message });
  }
});

// The harness is gone: shut down like on SIGTERM (the CLI's handler closes everything).
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));

// MESHPLANE_BENCH_MEMLOG=ms: memory breakdown to stderr at that interval (heap vs buffers vs the rest).
const memlog = Number(process.env.MESHPLANE_BENCH_MEMLOG ?? 0);
if (memlog > 0) {
  setInterval(() => {
    const m = process.memoryUsage();
    const mb = (n: number) => Math.round(n / 1048576);
    console.error(
      `mem rss=${mb(m.rss)} heapUsed=${mb(m.heapUsed)} heapTotal=${mb(m.heapTotal)} external=${mb(m.external)} arrayBuffers=${mb(m.arrayBuffers)}`,
      // Committed and used per V8 space: where heapTotal goes.
      v8
        .getHeapSpaceStatistics()
        .map((s) => `${s.space_name.replace(/_space$/, '')}=${mb(s.space_size)}/${mb(s.space_used_size)}`)
        .join(' '),
    );
  }, memlog).unref();
}

// MESHPLANE_BENCH_HEAPSAMPLE=file: the sampling heap profiler runs from the start and its live
// allocations (by allocation site) are written to the file every 2 s.
const heapFile = process.env.MESHPLANE_BENCH_HEAPSAMPLE;
if (heapFile) {
  const hs = new inspector.Session();
  hs.connect();
  hs.post('HeapProfiler.startSampling', { samplingInterval: 32768 });
  setInterval(() => {
    hs.post('HeapProfiler.getSamplingProfile', (err, r) => {
      if (!err) fs.writeFileSync(heapFile, JSON.stringify((r as { profile: unknown }).profile));
    });
  }, 2_000).unref();
}

process.argv = [process.argv[0], cli, ...args];
require(cli);
