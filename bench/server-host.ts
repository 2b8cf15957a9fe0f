// Runs `meshplane serve` in this process (the CLI module itself, unchanged) with
// an IPC channel to the harness, for two things the plain CLI cannot give: it
// ends when the harness goes away (even when the harness is killed), and it can
// record CPU profiles of chosen windows (--server-cpu-prof) with the in-process
// inspector.
//
// usage (forked by bench/run.ts): node server-host.js <path/to/meshplane.js> serve [flags]
import fs from 'node:fs';
import inspector from 'node:inspector';

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

process.argv = [process.argv[0], cli, ...args];
require(cli);
