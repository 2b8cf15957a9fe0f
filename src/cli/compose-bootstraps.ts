#!/usr/bin/env node
// The docker-compose example's sidecar bootstraps (examples/docker-compose/bootstrap/*.yaml).
//
//   compose-bootstraps generate [--dir DIR]   writes them from the demo topology with
//                                             buildBootstrap (src/bootstrap.ts); the token
//                                             is a placeholder
//   compose-bootstraps check [--dir DIR]      exits 1 when a file differs from what
//                                             `generate` would write
//   compose-bootstraps init --server URL --admin-token-file FILE --templates DIR --out DIR
//                           [--apply FILE]...
//                                             the compose `init` job: applies FILEs, issues
//                                             one bootstrap token per pod (POST /v1/tokens)
//                                             and writes DIR/<pod>/bootstrap.yaml with it
//
// Why a placeholder: tokens are signed by one deployment's control plane, so they cannot
// be in the repository. Everything else in a bootstrap is fixed by the compose file, so
// it is generated (and checked by test/compose) from the same code the REST API uses.
import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { buildBootstrap } from '../bootstrap';
import {
  ADMIN_PORT,
  APP_PORT,
  COMPOSE_MESHPLANE_HOST,
  DEMO_PODS,
  type DemoPod,
  INBOUND_PORT,
  MESHPLANE_XDS_PORT,
} from './demo-topology';

/** Stands for the bootstrap token in the committed files; the init job replaces it (envsubst syntax). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a literal placeholder, not a template
export const TOKEN_PLACEHOLDER = '${MESHPLANE_BOOTSTRAP_TOKEN}';

/** examples/docker-compose of the checkout, from this file's compiled place (dist/src/cli). */
export const COMPOSE_DIR = path.resolve(__dirname, '..', '..', '..', 'examples', 'docker-compose');

const HEADER = `# GENERATED from src/cli/demo-topology.ts by buildBootstrap (src/bootstrap.ts): do not edit.
# Regenerate: npm run build && node dist/src/cli/compose-bootstraps.js generate
# The init service replaces ${TOKEN_PLACEHOLDER} with a token from this deployment's meshplane.
`;

/** The bootstrap of one compose pod's sidecar, with the token placeholder. */
export function composeBootstrap(pod: DemoPod): Record<string, unknown> {
  return buildBootstrap({
    nodeId: pod.name,
    cluster: pod.service,
    metadata: {
      service: pod.service,
      // The pod's IP on the compose network: its inbound listener, its admin API, its instance.
      address: pod.composeAddress,
      inboundPort: INBOUND_PORT,
      appPort: APP_PORT,
      // The sidecar shares the app container's network namespace: the app listens on
      // 127.0.0.1, and calls its upstreams at 127.0.0.1:<service port>.
      appAddress: '127.0.0.1',
      outboundAddress: '127.0.0.1',
      adminPort: ADMIN_PORT,
      labels: { ...pod.labels },
    },
    xdsAddress: COMPOSE_MESHPLANE_HOST,
    xdsPort: MESHPLANE_XDS_PORT,
    apiType: 'DELTA_GRPC',
    adminAddress: pod.composeAddress,
    adminPort: ADMIN_PORT,
    token: TOKEN_PLACEHOLDER,
  });
}

function toYaml(o: unknown): string {
  return stringify(o, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** File name (`<pod>.yaml`) to content, for every pod of the demo topology. */
export function composeBootstrapFiles(): Map<string, string> {
  return new Map(DEMO_PODS.map((pod) => [`${pod.name}.yaml`, HEADER + toYaml(composeBootstrap(pod))]));
}

/** Writes every bootstrap into `dir`; returns the paths. */
export function writeComposeBootstraps(dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return [...composeBootstrapFiles()].map(([name, text]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  });
}

/** What differs between `dir` and the generator's output: missing, different and extra files. */
export function staleComposeBootstraps(dir: string): string[] {
  const want = composeBootstrapFiles();
  const problems: string[] = [];
  for (const [name, text] of want) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) problems.push(`${name}: missing`);
    else if (fs.readFileSync(file, 'utf8') !== text)
      problems.push(`${name}: differs from the generator's output`);
  }
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (name.endsWith('.yaml') && !want.has(name)) problems.push(`${name}: not a pod of the topology`);
  }
  return problems;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** The service a bootstrap (YAML text) is for: node.metadata.service. */
export function bootstrapService(text: string): string | undefined {
  const service = obj(obj(obj(parse(text))?.node)?.metadata)?.service;
  return typeof service === 'string' ? service : undefined;
}

/** A bootstrap template (YAML text) with the placeholder replaced by `token`; YAML out. */
export function fillBootstrapToken(template: string, token: string): string {
  const b = obj(parse(template));
  const entry = list(obj(obj(b?.dynamic_resources)?.ads_config)?.grpc_services)
    .flatMap((s) => list(obj(s)?.initial_metadata))
    .map(obj)
    .find((m) => m?.key === 'authorization');
  if (!entry || entry.value !== `Bearer ${TOKEN_PLACEHOLDER}`) {
    throw new Error(`not a bootstrap template: no "authorization: Bearer ${TOKEN_PLACEHOLDER}" ADS metadata`);
  }
  if (!/^[A-Za-z0-9._~+/=-]+$/.test(token)) throw new Error('the token has unexpected characters');
  entry.value = `Bearer ${token}`;
  return toYaml(b);
}

export interface InitOptions {
  readonly server: string;
  readonly adminToken: string;
  readonly templatesDir: string;
  readonly outDir: string;
  readonly apply: readonly string[];
  readonly log: (line: string) => void;
  /** How long to wait for the server (default 60 s). */
  readonly timeoutMs?: number;
}

async function call(
  o: InitOptions,
  method: string,
  urlPath: string,
  body: string,
  contentType: string,
): Promise<{ status: number; text: string }> {
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  for (;;) {
    try {
      const res = await fetch(`${o.server}${urlPath}`, {
        method,
        headers: { authorization: `Bearer ${o.adminToken}`, 'content-type': contentType },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      if (res.status < 500 || Date.now() > deadline) return { status: res.status, text };
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`${method} ${o.server}${urlPath}: ${(err as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The compose `init` job: see the file comment. Returns the bootstrap files written. */
export async function initCompose(o: InitOptions): Promise<string[]> {
  for (const file of o.apply) {
    const r = await call(o, 'POST', '/v1/apply', fs.readFileSync(file, 'utf8'), 'application/yaml');
    if (r.status !== 200) throw new Error(`applying ${file}: HTTP ${r.status} ${r.text}`);
    const changes = (JSON.parse(r.text).changes ?? []) as { kind: string; name: string; action?: string }[];
    o.log(
      `applied ${file}: ${changes.map((c) => `${c.kind}/${c.name}${c.action ? ` ${c.action}` : ''}`).join(', ')}`,
    );
  }
  const templates = fs
    .readdirSync(o.templatesDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  if (templates.length === 0) throw new Error(`no bootstrap templates (*.yaml) in ${o.templatesDir}`);
  const written: string[] = [];
  for (const name of templates) {
    const pod = name.replace(/\.yaml$/, '');
    const podDir = path.join(o.outDir, pod);
    // Each pod's directory is that pod's own volume: a sidecar sees only its own token.
    if (!fs.existsSync(podDir))
      throw new Error(`${podDir} does not exist: mount pod ${pod}'s bootstrap volume there`);
    const template = fs.readFileSync(path.join(o.templatesDir, name), 'utf8');
    const service = bootstrapService(template);
    if (!service) throw new Error(`${name}: node.metadata.service is missing`);
    const r = await call(o, 'POST', '/v1/tokens', JSON.stringify({ service }), 'application/json');
    if (r.status !== 201) throw new Error(`token for ${service}: HTTP ${r.status} ${r.text}`);
    const { token, id, expiresAt } = JSON.parse(r.text) as { token: string; id: string; expiresAt: string };
    const file = path.join(podDir, 'bootstrap.yaml');
    const tmp = `${file}.tmp`;
    // Readable by the Envoy image's own user (it runs as uid 101); only this pod mounts the volume.
    fs.writeFileSync(tmp, fillBootstrapToken(template, token), { mode: 0o644 });
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, file);
    o.log(`wrote ${file} (service ${service}, token ${id}, expires ${expiresAt})`);
    written.push(file);
  }
  return written;
}

function usage(): never {
  console.error(
    'usage: compose-bootstraps generate|check [--dir DIR]\n' +
      '       compose-bootstraps init --server URL --admin-token-file FILE --templates DIR --out DIR [--apply FILE]...',
  );
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const flags = new Map<string, string[]>();
  for (let i = 0; i < rest.length; i += 2) {
    if (!rest[i].startsWith('--') || rest[i + 1] === undefined) usage();
    flags.set(rest[i], [...(flags.get(rest[i]) ?? []), rest[i + 1]]);
  }
  const one = (k: string, dflt?: string): string => {
    const v = flags.get(k)?.[0] ?? dflt;
    if (v === undefined) usage();
    return v;
  };
  const dir = one('--dir', path.join(COMPOSE_DIR, 'bootstrap'));
  switch (verb) {
    case 'generate':
      for (const f of writeComposeBootstraps(dir)) console.log(`wrote ${f}`);
      return 0;
    case 'check': {
      const problems = staleComposeBootstraps(dir);
      for (const p of problems) console.error(p);
      if (problems.length > 0) console.error('regenerate: node dist/src/cli/compose-bootstraps.js generate');
      return problems.length > 0 ? 1 : 0;
    }
    case 'init': {
      // The admin token: MESHPLANE_ADMIN_TOKEN, else the file meshplane generated in its data dir.
      const adminToken =
        process.env.MESHPLANE_ADMIN_TOKEN || fs.readFileSync(one('--admin-token-file'), 'utf8').trim();
      await initCompose({
        server: one('--server').replace(/\/+$/, ''),
        adminToken,
        templatesDir: one('--templates'),
        outDir: one('--out'),
        apply: flags.get('--apply') ?? [],
        log: (line) => console.log(line),
      });
      return 0;
    }
    default:
      usage();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(`compose-bootstraps: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
