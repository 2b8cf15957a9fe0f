#!/usr/bin/env node
// `meshplane`: the control-plane process. `meshplane serve` runs the REST API and
// the xDS server with the embedded SQLite store. Flags and env: shared/design/API.md.
import pino from 'pino';
import type { Logger } from '../log';
import { type ControlPlaneConfig, startControlPlane, VERSION } from '../main';
import { runDemo } from './demo';

const USAGE = `usage: meshplane serve [flags]
       meshplane demo [--smoke]      the docker-compose example's mesh as local processes (--help)

  --http-address host:port    REST API, /metrics       (MESHPLANE_HTTP_ADDRESS, default 0.0.0.0:8080)
  --xds-address host:port     ADS gRPC server          (MESHPLANE_XDS_ADDRESS, default 0.0.0.0:18000)
  --xds-advertise-address h:p what bootstraps dial     (MESHPLANE_XDS_ADVERTISE_ADDRESS)
  --data-dir DIR              SQLite store, admin token (MESHPLANE_DATA_DIR, default ./data)
  --store sqlite|postgres     store implementation     (MESHPLANE_STORE, default sqlite)
  --postgres-url URL          for --store postgres     (MESHPLANE_POSTGRES_URL)
  --reads-require-token       GETs need the admin token too (MESHPLANE_READS_REQUIRE_TOKEN=true)
  --instance-grace DURATION   how long a sidecar's instance outlives its stream, and how long
                              sidecars have to reconnect after a restart (default 10s)
  --log-level LEVEL           debug | info | warn | error (MESHPLANE_LOG_LEVEL, default info)
  --ca-cert FILE --ca-key FILE  the mesh CA from PEM files (MESHPLANE_CA_CERT, MESHPLANE_CA_KEY);
                              default: generated on first start and kept in the store
  --history-limit N           versions kept per object for history and rollback (default 20;
                              MESHPLANE_HISTORY_LIMIT)
  --insecure-xds              accept ADS streams without a bootstrap token (development only;
                              MESHPLANE_INSECURE_XDS=true)

The admin token comes from MESHPLANE_ADMIN_TOKEN, or <data-dir>/admin-token
(generated on first start, mode 0600).`;

class UsageError extends Error {}

function positiveInt(flag: string, s: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag}: a positive integer, not "${s}"`);
  return n;
}

function parseDuration(flag: string, s: string): number {
  const m = s.match(/^(\d+)(ms|s|m)$/);
  if (!m) throw new UsageError(`${flag}: expected a duration such as 10s, got "${s}"`);
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000 } as const)[m[2] as 'ms' | 's' | 'm'];
}

function parseBoolean(flag: string, s: string): boolean {
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  throw new UsageError(`${flag}: expected true or false, got "${s}"`);
}

export function parseServeFlags(
  argv: string[],
  env: NodeJS.ProcessEnv,
): Omit<ControlPlaneConfig, 'log'> & { logLevel: string } {
  const c = {
    httpAddress: env.MESHPLANE_HTTP_ADDRESS ?? '0.0.0.0:8080',
    xdsAddress: env.MESHPLANE_XDS_ADDRESS ?? '0.0.0.0:18000',
    xdsAdvertiseAddress: env.MESHPLANE_XDS_ADVERTISE_ADDRESS,
    dataDir: env.MESHPLANE_DATA_DIR ?? './data',
    store: (env.MESHPLANE_STORE ?? 'sqlite') as string,
    postgresUrl: env.MESHPLANE_POSTGRES_URL,
    adminToken: env.MESHPLANE_ADMIN_TOKEN || undefined,
    readsRequireToken: env.MESHPLANE_READS_REQUIRE_TOKEN === 'true',
    instanceGraceMs: 10_000,
    logLevel: env.MESHPLANE_LOG_LEVEL ?? 'info',
    insecureXds: env.MESHPLANE_INSECURE_XDS === 'true',
    historyLimit: env.MESHPLANE_HISTORY_LIMIT
      ? positiveInt('MESHPLANE_HISTORY_LIMIT', env.MESHPLANE_HISTORY_LIMIT)
      : undefined,
    caCertFile: env.MESHPLANE_CA_CERT as string | undefined,
    caKeyFile: env.MESHPLANE_CA_KEY as string | undefined,
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
      case '--http-address':
        c.httpAddress = value();
        break;
      case '--xds-address':
        c.xdsAddress = value();
        break;
      case '--xds-advertise-address':
        c.xdsAdvertiseAddress = value();
        break;
      case '--data-dir':
        c.dataDir = value();
        break;
      case '--store':
        c.store = value();
        break;
      case '--postgres-url':
        c.postgresUrl = value();
        break;
      case '--reads-require-token':
        c.readsRequireToken = eq > 0 ? parseBoolean(name, value()) : true;
        break;
      case '--instance-grace':
        c.instanceGraceMs = parseDuration(name, value());
        break;
      case '--log-level':
        c.logLevel = value();
        break;
      case '--history-limit':
        c.historyLimit = positiveInt(name, value());
        break;
      case '--insecure-xds':
        c.insecureXds = true;
        break;
      case '--ca-cert':
        c.caCertFile = value();
        break;
      case '--ca-key':
        c.caKeyFile = value();
        break;
      default:
        throw new UsageError(`unknown flag ${name}`);
    }
  }
  if (c.store !== 'sqlite' && c.store !== 'postgres')
    throw new UsageError(`--store: sqlite or postgres, not "${c.store}"`);
  if (c.store === 'postgres' && !c.postgresUrl) throw new UsageError('--store postgres needs --postgres-url');
  return { ...c, store: c.store };
}

async function serve(argv: string[]): Promise<void> {
  const flags = parseServeFlags(argv, process.env);
  // Lines are written asynchronously: one written at once when the log is quiet, and those logged
  // meanwhile in one write (a connect storm logs a few lines per proxy; a synchronous write each
  // cost the event loop a syscall per line). pino flushes what is left when the process exits.
  const log = pino(
    { level: flags.logLevel, base: { service: 'meshplane' } },
    pino.destination({ dest: 1, sync: false }),
  ) as unknown as Logger;
  const cp = await startControlPlane({ ...flags, log });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await cp.close();
    log.info({}, 'stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'serve':
      return serve(rest);
    case 'demo':
      process.exitCode = await runDemo(rest);
      return;
    case 'version':
    case '--version':
      console.log(VERSION);
      return;
    default:
      console.error(USAGE);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((err) => {
  if (err instanceof UsageError) {
    console.error(`meshplane: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  console.error(`meshplane: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
