#!/usr/bin/env node
// `meshctl`: the operator's client of meshplane's REST API (shared/design/API.md):
// apply, get, delete, history, diff, rollback, proxy-status, proxy-config, bootstrap, token,
// version.
// A thin client: it talks HTTP to the API only, never to the store or xDS.
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse as parseYaml, stringify as yamlStringify } from 'yaml';
import packageJson from '../../package.json';
import { isDuration, parseDurationMs } from '../model/common';
import { KIND_NAMES, KINDS, type Kind } from '../model/kinds';
import { documentOf, type FieldChange, fieldChanges } from '../registry/versions';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../xds/type-urls';
import {
  type ApiClient,
  createApiClient,
  type ErrorDetail,
  ServerError,
  UnreachableError,
} from './api-client';
import { age, formatTable } from './table';

export const CLIENT_VERSION: string = packageJson.version;

/** Exit codes scripts can rely on (also in USAGE). */
export const EXIT = {
  OK: 0,
  SERVER_ERROR: 1,
  USAGE: 2,
  UNREACHABLE: 3,
  NACKED: 4,
  NOT_CONVERGED: 5,
} as const;

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export const USAGE = `usage: meshctl [global flags] VERB [arguments] [flags]

Verbs:
  apply -f FILE|DIR|- [-f ...] [--dry-run] [--wait [--timeout 30s]] [-o json|yaml]
        Create or update every document, all in one atomic apply. FILE: multi-document YAML
        or JSON; DIR: its .yaml, .yml and .json files in name order; -: standard input.
        --dry-run validates and reports what would change, storing nothing: the objects,
        and per connected proxy the Envoy resources added, changed and removed, as a diff.
        --wait blocks until every affected proxy ACKed the change (exit 0), or one rejected
        it (exit 4, with Envoy's message), or --timeout passed (exit 5).
  get KIND [NAME] [-l k=v,...] [-o table|yaml|json]
        List the objects of a kind, or show one. KIND: mesh, service, instance, trafficroute,
        destinationpolicy, authorizationpolicy (singular or plural, any case; short names svc,
        tr, dp, ap; also KIND/NAME).
        yaml and json print the objects; \`get ... -o yaml | meshctl apply -f -\` round-trips.
  delete KIND NAME
        Delete one object.
  history KIND NAME [--limit N] [-o table|json|yaml]
        The object's kept versions, newest first: REVISION, RESOURCE_VERSION, OP (put or
        delete), AGE and a summary of what each version changed (also after a delete).
  diff KIND NAME [--from RV] [--to RV] [-o text|json|yaml]
        A unified diff of two versions' YAML (default: the version before --to against --to;
        --to defaults to the newest). json and yaml add the changed fields {path, from, to}.
  rollback KIND NAME --to RV [-o text|json|yaml]
        Write version RV's labels and spec again, as a new version (a change like any other);
        only if the object did not change meanwhile. To a delete's RV: recreates the object as
        it was before that delete.
  proxy-status [NODE_ID] [--all] [-o table|json|yaml]
        Each connected proxy's sync state per xDS type (CDS LDS EDS RDS SDS): SYNCED, STALE,
        NACKED or NOT SENT; below the table, Envoy's message for every NACKED type.
        --all also lists recently disconnected proxies.
  proxy-config NODE_ID [clusters|listeners|routes|endpoints|secrets] [-o json|yaml]
        The Envoy resources meshplane holds for a proxy (default: every type; never a private key).
  bootstrap --service S --address A --app-port P [--labels k=v,...] [--inbound-port N]
            [--admin-port N] [--node-id ID] [--api-type GRPC|DELTA_GRPC] [--xds-address HOST]
            [--xds-port N] [-o FILE]
        An Envoy bootstrap (YAML) for a workload, with a fresh bootstrap token. -o writes it to
        FILE (mode 0600: it holds a token) instead of standard output.
  token create --service S [--ttl 24h] [-o json|yaml]
        Issue a bootstrap token; prints the token alone (its id and expiry go to standard error).
  token revoke ID
        Revoke a token by id.
  version [--client] [-o json]
        The client's version and the server's (from its /openapi.json).
  help [VERB]
        This text.

Global flags (anywhere on the line):
  --server URL          meshplane's REST API (env MESHCTL_SERVER; default ${DEFAULT_SERVER})
  --token TOKEN         the admin token (env MESHCTL_TOKEN)
  --token-file FILE     read the admin token from FILE, e.g. <data-dir>/admin-token
                        (env MESHCTL_TOKEN_FILE)
  --timeout DURATION    how long to wait for each answer (default 30s)
  -h, --help            this text

Exit codes:
  0  success
  1  the server answered with an error: "error: <message>" and one "  <path>: <message>" line
     per detail on standard error
  2  usage error: unknown verb or flag, missing or bad argument, unreadable local file
  3  cannot reach the server (refused, unresolvable, no answer within --timeout)
  4  proxy-status: at least one proxy NACKED its configuration (the table is still printed);
     apply --wait: a proxy rejected the change (Envoy's messages are printed)
  5  apply --wait: not every affected proxy ACKed the change within --timeout
`;

/** A mistake on the command line or an unreadable local input (exit 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Where meshctl reads and writes; the process's streams in the binary, buffers in tests. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  stdin(): Promise<string>;
  readonly env: NodeJS.ProcessEnv;
}

// ---------------------------------------------------------------------------
// Command line

type FlagType = 'value' | 'bool' | 'list';

interface FlagDef {
  readonly name: string;
  readonly short?: string;
  readonly type: FlagType;
}

const GLOBAL_FLAGS: readonly FlagDef[] = [
  { name: 'server', type: 'value' },
  { name: 'token', type: 'value' },
  { name: 'token-file', type: 'value' },
  { name: 'timeout', type: 'value' },
  { name: 'help', short: 'h', type: 'bool' },
];

const OUTPUT: FlagDef = { name: 'output', short: 'o', type: 'value' };

const VERB_FLAGS = {
  apply: [
    { name: 'filename', short: 'f', type: 'list' },
    { name: 'dry-run', type: 'bool' },
    { name: 'wait', type: 'bool' },
    OUTPUT,
  ],
  get: [OUTPUT, { name: 'selector', short: 'l', type: 'value' }],
  delete: [],
  history: [OUTPUT, { name: 'limit', type: 'value' }],
  diff: [OUTPUT, { name: 'from', type: 'value' }, { name: 'to', type: 'value' }],
  rollback: [OUTPUT, { name: 'to', type: 'value' }],
  'proxy-status': [OUTPUT, { name: 'all', type: 'bool' }],
  'proxy-config': [OUTPUT],
  bootstrap: [
    { name: 'service', type: 'value' },
    { name: 'address', type: 'value' },
    { name: 'app-port', type: 'value' },
    { name: 'labels', type: 'value' },
    { name: 'inbound-port', type: 'value' },
    { name: 'admin-port', type: 'value' },
    { name: 'node-id', type: 'value' },
    { name: 'api-type', type: 'value' },
    { name: 'xds-address', type: 'value' },
    { name: 'xds-port', type: 'value' },
    OUTPUT,
  ],
  token: [{ name: 'service', type: 'value' }, { name: 'ttl', type: 'value' }, OUTPUT],
  version: [{ name: 'client', type: 'bool' }, OUTPUT],
  help: [],
} as const satisfies Record<string, readonly FlagDef[]>;

type Verb = keyof typeof VERB_FLAGS;

function isVerb(s: string): s is Verb {
  return Object.hasOwn(VERB_FLAGS, s);
}

export interface CommandLine {
  readonly verb: Verb | undefined;
  readonly args: readonly string[];
  readonly flags: ReadonlyMap<string, readonly string[]>;
}

function findFlag(defs: readonly FlagDef[], arg: string): { def: FlagDef; inline?: string } | undefined {
  if (arg.startsWith('--')) {
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const def = defs.find((d) => d.name === name);
    return def && { def, inline: eq > 0 ? arg.slice(eq + 1) : undefined };
  }
  const def = defs.find((d) => d.short === arg[1]);
  if (!def) return undefined;
  // -ojson, -o=json
  const rest = arg.slice(2).replace(/^=/, '');
  return { def, inline: rest === '' ? undefined : rest };
}

function isFlag(arg: string): boolean {
  return arg.startsWith('-') && arg !== '-';
}

/**
 * Parses argv: global flags anywhere, the verb's flags after it, `--flag value`,
 * `--flag=value`, `-o json`, `-ojson`; `--` ends flags.
 * @example parseCommandLine(['get', 'services', '-o', 'json']).flags.get('output') // ['json']
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  // The verb first (the first positional), skipping the values of flags any verb takes.
  const allDefs = [...GLOBAL_FLAGS, ...Object.values(VERB_FLAGS).flat()];
  let verbText: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      verbText = argv[i + 1];
      break;
    }
    if (!isFlag(a)) {
      verbText = a;
      break;
    }
    const f = findFlag(allDefs, a);
    if (f && f.def.type !== 'bool' && f.inline === undefined) i++;
  }
  if (verbText !== undefined && !isVerb(verbText)) {
    throw new UsageError(`unknown verb "${verbText}"; one of ${Object.keys(VERB_FLAGS).join(', ')}`);
  }
  const verb = verbText as Verb | undefined;
  const defs = [...GLOBAL_FLAGS, ...(verb ? VERB_FLAGS[verb] : [])];
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!isFlag(a)) {
      positional.push(a);
      continue;
    }
    const f = findFlag(defs, a);
    if (!f) {
      throw new UsageError(
        verb ? `unknown flag ${a.split('=')[0]} for "${verb}"` : `unknown flag ${a.split('=')[0]}`,
      );
    }
    const shown = a.startsWith('--') ? `--${f.def.name}` : `-${f.def.short}`;
    let value: string;
    if (f.def.type === 'bool') {
      value = f.inline ?? 'true';
      if (value !== 'true' && value !== 'false')
        throw new UsageError(`${shown}: true or false, not "${value}"`);
    } else {
      const v = f.inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${shown} needs a value`);
      value = v;
    }
    const list = flags.get(f.def.name) ?? [];
    list.push(value);
    flags.set(f.def.name, list);
  }
  return { verb, args: verb ? positional.slice(1) : positional, flags };
}

class Flags {
  constructor(private readonly cl: CommandLine) {}

  /** The last value given. */
  value(name: string): string | undefined {
    const v = this.cl.flags.get(name);
    return v?.[v.length - 1];
  }

  list(name: string): readonly string[] {
    return this.cl.flags.get(name) ?? [];
  }

  bool(name: string): boolean {
    return this.value(name) === 'true';
  }

  required(name: string): string {
    const v = this.value(name);
    if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
    return v;
  }

  output<T extends string>(allowed: readonly T[], dflt: T): T {
    const v = this.value('output') ?? dflt;
    if (!(allowed as readonly string[]).includes(v)) {
      throw new UsageError(`-o: one of ${allowed.join(', ')}, not "${v}"`);
    }
    return v as T;
  }
}

function expectArgs(cl: CommandLine, min: number, max: number, shape: string): void {
  if (cl.args.length < min) throw new UsageError(`missing argument: meshctl ${shape}`);
  if (cl.args.length > max) {
    throw new UsageError(`unexpected argument "${cl.args[max]}": meshctl ${shape}`);
  }
}

// ---------------------------------------------------------------------------
// Kinds

/** Short names, as kubectl has them. */
const KIND_ALIASES: Readonly<Record<string, Kind>> = {
  svc: 'Service',
  tr: 'TrafficRoute',
  dp: 'DestinationPolicy',
  ap: 'AuthorizationPolicy',
};

/** service, services, Service, SERVICES, svc... → 'Service'. */
export function resolveKind(text: string): Kind | undefined {
  const t = text.toLowerCase();
  return KIND_NAMES.find((k) => k.toLowerCase() === t || KINDS[k].plural === t) ?? KIND_ALIASES[t];
}

function kindArg(text: string): Kind {
  const kind = resolveKind(text);
  if (!kind) {
    throw new UsageError(
      `unknown kind "${text}"; one of ${KIND_NAMES.map((k) => k.toLowerCase()).join(', ')} (or their plurals)`,
    );
  }
  return kind;
}

/** `KIND NAME` or `KIND/NAME` at the start of the arguments. */
function kindAndName(args: readonly string[]): { kind: Kind; name?: string; rest: readonly string[] } {
  const [first, ...rest] = args;
  if (first === undefined)
    throw new UsageError(`missing KIND: one of ${KIND_NAMES.map((k) => k.toLowerCase()).join(', ')}`);
  const slash = first.indexOf('/');
  if (slash > 0)
    return { kind: kindArg(first.slice(0, slash)), name: first.slice(slash + 1) || undefined, rest };
  const [name, ...more] = rest;
  return { kind: kindArg(first), name, rest: more };
}

const seg = (s: string) => encodeURIComponent(s);

// ---------------------------------------------------------------------------
// Output helpers

type Obj = Record<string, unknown>;

function asObj(v: unknown): Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
}

function cell(v: unknown): string {
  if (v === undefined || v === null || v === '') return '-';
  return String(v);
}

function toJson(v: unknown): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}

/** YAML without line folding, so long strings (regexes, PEM) stay on one line and round-trip. */
function toYaml(v: unknown): string {
  return yamlStringify(v, { lineWidth: 0 });
}

function print(io: Io, format: 'json' | 'yaml', v: unknown): void {
  io.out(format === 'json' ? toJson(v) : toYaml(v));
}

/** Columns a table shows for a kind between NAME and REVISION. */
const KIND_COLUMNS: Partial<Record<Kind, readonly [string, (o: Obj) => unknown][]>> = {
  Mesh: [
    ['MTLS', (o) => asObj(asObj(o.spec).mtls).mode],
    ['TRUST-DOMAIN', (o) => asObj(o.spec).trustDomain],
  ],
  Service: [
    ['PROTOCOL', (o) => asObj(o.spec).protocol],
    ['PORT', (o) => asObj(o.spec).port],
  ],
  Instance: [
    ['SERVICE', (o) => asObj(o.spec).service],
    ['ADDRESS', (o) => asObj(o.spec).address],
    ['PORT', (o) => asObj(o.spec).port],
    ['HEALTH', (o) => asObj(o.spec).health],
  ],
  TrafficRoute: [
    ['SERVICE', (o) => asObj(o.spec).service],
    [
      'RULES',
      (o) => (Array.isArray(asObj(o.spec).http) ? (asObj(o.spec).http as unknown[]).length : undefined),
    ],
  ],
  DestinationPolicy: [['SERVICE', (o) => asObj(o.spec).service]],
  AuthorizationPolicy: [
    ['SERVICE', (o) => asObj(o.spec).service],
    ['ACTION', (o) => asObj(o.spec).action],
  ],
};

function warningsOf(o: Obj): string[] | undefined {
  const status = o.status;
  if (typeof status !== 'object' || status === null) return undefined;
  const w = (status as Obj).warnings;
  return Array.isArray(w) ? w.map(String) : [];
}

function objectTable(kind: Kind, items: readonly Obj[]): string {
  const extra = KIND_COLUMNS[kind] ?? [];
  const withStatus = items.some((o) => warningsOf(o) !== undefined);
  const header = ['NAME', ...extra.map(([h]) => h), 'REVISION', 'AGE', ...(withStatus ? ['WARNINGS'] : [])];
  const now = Date.now();
  const rows = items.map((o) => [
    cell(o.name),
    ...extra.map(([, f]) => cell(f(o))),
    cell(o.revision),
    age(o.createdAt, now),
    ...(withStatus ? [String(warningsOf(o)?.length ?? 0)] : []),
  ]);
  return formatTable(header, rows);
}

// ---------------------------------------------------------------------------
// apply

/** One input of an apply, as embedded in the request body. */
interface Source {
  readonly label: string;
  readonly text: string;
  readonly json: boolean;
}

interface Placed extends Source {
  /** 1-based line of the body where this source starts. */
  readonly startLine: number;
  readonly lineCount: number;
  /** Index (in the server's numbering) of this source's first document, and how many it holds. */
  readonly firstDocument: number;
  readonly documents: number;
}

const APPLY_EXTENSIONS = /\.(ya?ml|json)$/i;

function looksLikeJson(text: string): boolean {
  const t = text.trim();
  if (!t.startsWith('{') && !t.startsWith('[')) return false;
  try {
    JSON.parse(t);
    return true;
  } catch {
    return false;
  }
}

async function readSources(paths: readonly string[], io: Io): Promise<Source[]> {
  const out: Source[] = [];
  let usedStdin = false;
  for (const p of paths) {
    if (p === '-') {
      if (usedStdin) throw new UsageError('-f - (standard input) can be given only once');
      usedStdin = true;
      const text = await io.stdin();
      out.push({ label: '<stdin>', text, json: looksLikeJson(text) });
      continue;
    }
    let stat: fs.Stats;
    try {
      stat = fs.statSync(p);
    } catch (err) {
      throw new UsageError(
        `cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    const files = stat.isDirectory()
      ? fs
          .readdirSync(p, { withFileTypes: true })
          .filter((e) => e.isFile() && APPLY_EXTENSIONS.test(e.name))
          .map((e) => e.name)
          .sort()
          .map((n) => path.join(p, n))
      : [p];
    if (files.length === 0) throw new UsageError(`no .yaml, .yml or .json files in ${p}`);
    for (const f of files) {
      let text: string;
      try {
        text = fs.readFileSync(f, 'utf8');
      } catch (err) {
        throw new UsageError(
          `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      out.push({ label: f, text, json: /\.json$/i.test(f) });
    }
  }
  return out;
}

/** How many documents the server will count in this source (parse.ts: empty ones skipped, lists spread). */
function countDocuments(s: Source): number {
  if (s.json) {
    try {
      const v = JSON.parse(s.text) as unknown;
      return Array.isArray(v) ? v.length : 1;
    } catch {
      return 1;
    }
  }
  let n = 0;
  for (const doc of parseAllDocuments(s.text, { uniqueKeys: true })) {
    if (doc.errors.length > 0) {
      n++;
      continue;
    }
    let js: unknown;
    try {
      js = doc.toJS({ maxAliasCount: 100 });
    } catch {
      n++;
      continue;
    }
    if (js === null || js === undefined) continue;
    n += Array.isArray(js) ? js.length : 1;
  }
  return n;
}

/**
 * One request body for every source: a single JSON source is sent as JSON; anything else as
 * one YAML stream (JSON documents re-encoded on one line, which is YAML flow syntax).
 */
function buildApplyBody(sources: readonly Source[]): { body: string; contentType: string; placed: Placed[] } {
  if (sources.length === 1 && sources[0]!.json) {
    const s = sources[0]!;
    return {
      body: s.text,
      contentType: 'application/json',
      placed: [
        {
          ...s,
          startLine: 1,
          lineCount: s.text.split('\n').length,
          firstDocument: 0,
          documents: countDocuments(s),
        },
      ],
    };
  }
  let body = '';
  let line = 1;
  let doc = 0;
  const placed: Placed[] = [];
  for (const [i, s] of sources.entries()) {
    let text = s.text;
    if (s.json) {
      try {
        text = JSON.stringify(JSON.parse(text));
      } catch {
        // sent as is: the server reports the syntax error
      }
    }
    if (!text.endsWith('\n')) text += '\n';
    if (i > 0) {
      // A directive (%YAML) may only follow a document end marker.
      const sep = text.startsWith('%') ? '...\n' : '---\n';
      body += sep;
      line += 1;
    }
    const documents = countDocuments({ ...s, text });
    const lineCount = text.split('\n').length - 1;
    placed.push({ ...s, text, startLine: line, lineCount, firstDocument: doc, documents });
    body += text;
    line += lineCount;
    doc += documents;
  }
  return { body, contentType: 'application/yaml', placed };
}

/** " (in FILE, document N)" or " (in FILE, line L)" for a detail of a multi-source apply. */
function locate(d: ErrorDetail, placed: readonly Placed[]): string {
  if (placed.length < 2) return '';
  if (typeof d.line === 'number') {
    // `<=`: an error at a source's end is reported on the line after its last (the separator's).
    const p = placed.find((x) => d.line! >= x.startLine && d.line! <= x.startLine + x.lineCount);
    if (p) return ` (in ${p.label}, line ${d.line - p.startLine + 1})`;
  }
  const m = /^documents\[(\d+)\]/.exec(d.path);
  if (m) {
    const n = Number(m[1]);
    const p = placed.find((x) => n >= x.firstDocument && n < x.firstDocument + x.documents);
    if (p) return ` (in ${p.label}, document ${n - p.firstDocument + 1})`;
  }
  return '';
}

interface ApplyAnswer {
  dryRun: boolean;
  revision: number;
  changeId?: number;
  changes: { kind: string; name: string; action: string }[];
  warnings?: { kind: string; name: string; message: string }[];
  proxies?: {
    nodeId: string;
    added: Record<string, string[]>;
    changed: Record<string, string[]>;
    removed: Record<string, string[]>;
    diff: string;
  }[];
}

interface ChangeAnswer {
  id: number;
  state: 'pending' | 'converged' | 'partially-rejected' | 'rejected' | 'timed-out';
  proxies: { nodeId: string; state: string; ms?: number; message?: string; type?: string }[];
}

/** Follows a change until every affected proxy ACKed (0), one rejected it (4) or time ran out (5). */
async function waitForChange(
  id: number,
  timeoutMs: number,
  client: () => ApiClient,
  io: Io,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let c: ChangeAnswer;
  for (;;) {
    c = await client().json<ChangeAnswer>('GET', `/v1/changes/${id}`);
    if (c.state !== 'pending' || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const p of c.proxies) {
    io.out(`${p.nodeId} ${p.state.toUpperCase()}${p.ms !== undefined ? ` ${p.ms}ms` : ''}\n`);
    if (p.message) io.err(`${p.nodeId} rejected ${p.type ?? ''}: ${p.message}\n`);
  }
  if (c.state === 'converged') {
    io.out(`change ${id} converged on ${c.proxies.length} prox${c.proxies.length === 1 ? 'y' : 'ies'}\n`);
    return EXIT.OK;
  }
  if (c.state === 'rejected' || c.state === 'partially-rejected') {
    io.err(`error: change ${id} was ${c.state}\n`);
    return EXIT.NACKED;
  }
  io.err(`error: change ${id} did not converge within ${timeoutMs / 1000}s (${c.state})\n`);
  return EXIT.NOT_CONVERGED;
}

async function cmdApply(cl: CommandLine, f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  expectArgs(cl, 0, 0, 'apply -f FILE|DIR|- [--dry-run]');
  const files = f.list('filename');
  if (files.length === 0) throw new UsageError('apply needs -f FILE, -f DIR or -f - (standard input)');
  const format = f.output(['text', 'json', 'yaml'], 'text');
  const dryRun = f.bool('dry-run');
  const sources = await readSources(files, io);
  const { body, contentType, placed } = buildApplyBody(sources);
  let answer: ApplyAnswer;
  try {
    answer = await client().json<ApplyAnswer>('POST', '/v1/apply', {
      body,
      contentType,
      query: dryRun ? { dryRun: 'true' } : {},
    });
  } catch (err) {
    if (err instanceof ServerError && placed.length > 1) {
      throw new ServerError(
        err.status,
        err.code,
        err.message,
        err.details.map((d) => ({ ...d, message: `${d.message}${locate(d, placed)}` })),
      );
    }
    throw err;
  }
  if (format !== 'text') {
    print(io, format, answer);
    return EXIT.OK;
  }
  for (const c of answer.changes)
    io.out(`${c.kind}/${c.name} ${c.action}${answer.dryRun ? ' (dry run)' : ''}\n`);
  for (const w of answer.warnings ?? []) io.err(`warning: ${w.kind}/${w.name}: ${w.message}\n`);
  // A dry run shows its effect on each connected proxy, in Envoy's terms.
  for (const p of answer.proxies ?? []) {
    const parts = (['added', 'changed', 'removed'] as const).flatMap((what) =>
      Object.entries(p[what]).map(([type, names]) => `${type} ${what}: ${names.join(', ')}`),
    );
    io.out(`\nproxy ${p.nodeId}: ${parts.join('; ')}\n${p.diff}\n`);
  }
  if (f.bool('wait') && !answer.dryRun && answer.changeId !== undefined) {
    return waitForChange(answer.changeId, timeoutOf(f), client, io);
  }
  return EXIT.OK;
}

// ---------------------------------------------------------------------------
// get, delete

async function cmdGet(cl: CommandLine, f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  const shape = 'get KIND [NAME] [-o table|yaml|json]';
  const { kind, name, rest } = kindAndName(cl.args);
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}": meshctl ${shape}`);
  const format = f.output(['table', 'yaml', 'json'], 'table');
  const selector = f.value('selector');
  const plural = KINDS[kind].plural;
  if (name !== undefined) {
    if (selector !== undefined) throw new UsageError('give a NAME or a -l selector, not both');
    const obj = await client().json<Obj>('GET', `/v1/${plural}/${seg(name)}`);
    if (format !== 'table') {
      print(io, format, obj);
      return EXIT.OK;
    }
    io.out(objectTable(kind, [obj]));
    for (const w of warningsOf(obj) ?? []) io.err(`warning: ${kind}/${obj.name}: ${w}\n`);
    return EXIT.OK;
  }
  const list = await client().json<{ items?: Obj[] }>('GET', `/v1/${plural}`, {
    query: { labels: selector },
  });
  const items = Array.isArray(list.items) ? list.items : [];
  if (format === 'json') io.out(toJson(items));
  else if (format === 'yaml') io.out(items.map(toYaml).join('---\n'));
  else if (items.length === 0) io.err(`no ${kind} objects found\n`);
  else io.out(objectTable(kind, items));
  return EXIT.OK;
}

async function cmdDelete(cl: CommandLine, _f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  const { kind, name, rest } = kindAndName(cl.args);
  if (name === undefined) throw new UsageError('missing NAME: meshctl delete KIND NAME');
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}": meshctl delete KIND NAME`);
  await client().json('DELETE', `/v1/${KINDS[kind].plural}/${seg(name)}`);
  io.out(`${kind}/${name} deleted\n`);
  return EXIT.OK;
}

// ---------------------------------------------------------------------------
// history, diff, rollback

interface HistoryItem {
  revision?: number;
  resourceVersion?: string;
  op?: string;
  at?: string;
  object?: Obj;
}

/** KIND NAME (or KIND/NAME) and nothing else. */
function objectArgs(cl: CommandLine, shape: string): { kind: Kind; name: string } {
  const { kind, name, rest } = kindAndName(cl.args);
  if (name === undefined) throw new UsageError(`missing NAME: meshctl ${shape}`);
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}": meshctl ${shape}`);
  return { kind, name };
}

function short(v: unknown): string {
  const s = v === undefined ? '(none)' : JSON.stringify(v);
  return s.length > 24 ? `${s.slice(0, 21)}...` : s;
}

const SUMMARY_WIDTH = 72;

/** What a version changed, from the one before it (older), in one line. */
export function historySummary(entry: HistoryItem, older: HistoryItem | undefined): string {
  if (entry.op === 'delete') return 'deleted';
  if (!entry.object) return '-';
  if (!older) {
    const created = entry.object.createdAt !== undefined && entry.object.createdAt === entry.object.updatedAt;
    return created ? 'created' : '(earlier versions not kept)';
  }
  if (older.op === 'delete' || !older.object) return 'recreated';
  const doc = (o: Obj) => documentOf(o as { kind: string; name: string });
  const changes: FieldChange[] = fieldChanges(doc(older.object), doc(entry.object));
  if (changes.length === 0) return 'no change';
  let text = '';
  for (const [i, c] of changes.entries()) {
    const part = `${c.path}: ${short(c.from)}->${short(c.to)}`;
    if (i > 0 && text.length + 2 + part.length > SUMMARY_WIDTH)
      return `${text} (+${changes.length - i} more)`;
    text = i === 0 ? part : `${text}, ${part}`;
  }
  return text;
}

async function cmdHistory(cl: CommandLine, f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  const { kind, name } = objectArgs(cl, 'history KIND NAME [--limit N] [-o table|json|yaml]');
  const format = f.output(['table', 'json', 'yaml'], 'table');
  const limit = f.value('limit');
  if (limit !== undefined && !/^[1-9]\d*$/.test(limit)) {
    throw new UsageError(`--limit: a positive integer, not "${limit}"`);
  }
  const answer = await client().json<{ items?: HistoryItem[] }>(
    'GET',
    `/v1/${KINDS[kind].plural}/${seg(name)}/history`,
    { query: { limit } },
  );
  if (format !== 'table') {
    print(io, format, answer);
    return EXIT.OK;
  }
  const items = Array.isArray(answer.items) ? answer.items : [];
  const now = Date.now();
  const rows = items.map((e, i) => [
    cell(e.revision),
    cell(e.resourceVersion),
    cell(e.op),
    age(e.at, now),
    // The oldest row of a --limit page has an older version the server did not send.
    i === items.length - 1 && limit !== undefined && items.length === Number(limit)
      ? '-'
      : historySummary(e, items[i + 1]),
  ]);
  io.out(formatTable(['REVISION', 'RESOURCE_VERSION', 'OP', 'AGE', 'SUMMARY'], rows));
  return EXIT.OK;
}

async function cmdDiff(cl: CommandLine, f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  const { kind, name } = objectArgs(cl, 'diff KIND NAME [--from RV] [--to RV] [-o text|json|yaml]');
  const format = f.output(['text', 'json', 'yaml'], 'text');
  const answer = await client().json<Obj>('GET', `/v1/${KINDS[kind].plural}/${seg(name)}/diff`, {
    query: { from: f.value('from'), to: f.value('to') },
  });
  if (format !== 'text') {
    print(io, format, answer);
    return EXIT.OK;
  }
  const diff = typeof answer.diff === 'string' ? answer.diff : '';
  if (diff === '')
    io.err(`no differences between resourceVersion ${cell(answer.from)} and ${cell(answer.to)}\n`);
  else io.out(diff);
  return EXIT.OK;
}

async function cmdRollback(cl: CommandLine, f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  const { kind, name } = objectArgs(cl, 'rollback KIND NAME --to RV [-o text|json|yaml]');
  const format = f.output(['text', 'json', 'yaml'], 'text');
  const to = f.required('to');
  const answer = await client().json<{
    revision?: number;
    action?: string;
    object?: Obj;
    warnings?: { kind: string; name: string; message: string }[];
  }>('POST', `/v1/${KINDS[kind].plural}/${seg(name)}/rollback`, { query: { to } });
  if (format !== 'text') {
    print(io, format, answer);
    return EXIT.OK;
  }
  if (answer.action === 'unchanged') {
    io.out(`${kind}/${name} unchanged: it already has resourceVersion ${to}'s labels and spec\n`);
  } else {
    io.out(
      `${kind}/${name} rolled back to resourceVersion ${to}: ${cell(answer.action)}, ` +
        `now resourceVersion ${cell(answer.object?.resourceVersion)} (revision ${cell(answer.revision)})\n`,
    );
  }
  for (const w of answer.warnings ?? []) io.err(`warning: ${w.kind}/${w.name}: ${w.message}\n`);
  return EXIT.OK;
}

// ---------------------------------------------------------------------------
// proxy-status, proxy-config

/** The xDS types proxy-status shows, as operators name them. */
export const STATUS_TYPES: readonly (readonly [string, string])[] = [
  ['CDS', CLUSTER_TYPE],
  ['LDS', LISTENER_TYPE],
  ['EDS', ENDPOINT_TYPE],
  ['RDS', ROUTE_TYPE],
  ['SDS', SECRET_TYPE],
];

interface ProxyTypeJson {
  state?: string;
  lastSent?: { version?: string };
  lastNack?: { version?: string; message?: string };
}

interface ProxyJson {
  nodeId: string;
  metadata?: Obj;
  protocol?: string;
  disconnectedAt?: string;
  state?: string;
  types?: Record<string, ProxyTypeJson>;
}

/** SYNCED, STALE, NACKED, or NOT SENT when nothing of that type was ever sent. */
export function typeState(t: ProxyTypeJson | undefined): string {
  if (!t) return 'NOT SENT';
  if (t.state === 'NACKED') return 'NACKED';
  if (!t.lastSent) return 'NOT SENT';
  return t.state ?? 'STALE';
}

async function cmdProxyStatus(cl: CommandLine, f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  expectArgs(cl, 0, 1, 'proxy-status [NODE_ID] [--all] [-o table|json|yaml]');
  const format = f.output(['table', 'json', 'yaml'], 'table');
  const node = cl.args[0];
  const all = f.bool('all');
  const answer = await client().json<{ builtRevision?: number; items?: ProxyJson[] }>('GET', '/v1/proxies');
  const proxies = (answer.items ?? [])
    .filter((p) => (node === undefined || p.nodeId === node) && (all || !p.disconnectedAt))
    .sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  const nacked = proxies.some(
    (p) => !p.disconnectedAt && STATUS_TYPES.some(([, url]) => typeState(p.types?.[url]) === 'NACKED'),
  );
  const code = nacked ? EXIT.NACKED : EXIT.OK;
  if (format !== 'table') {
    print(io, format, { ...answer, items: proxies });
    return code;
  }
  if (proxies.length === 0) {
    if (node !== undefined) throw new UsageError(`no connected proxy "${node}"`);
    io.err('no proxies connected\n');
    return code;
  }
  const header = [
    'NODE',
    'SERVICE',
    'PROTOCOL',
    ...STATUS_TYPES.map(([n]) => n),
    ...(all ? ['CONNECTED'] : []),
  ];
  const rows = proxies.map((p) => [
    p.nodeId,
    cell(p.metadata?.service),
    cell(p.protocol),
    ...STATUS_TYPES.map(([, url]) => typeState(p.types?.[url])),
    ...(all ? [p.disconnectedAt ? `no (${age(p.disconnectedAt)} ago)` : 'yes'] : []),
  ]);
  io.out(formatTable(header, rows));
  const nacks: string[] = [];
  for (const p of proxies) {
    for (const [short, url] of STATUS_TYPES) {
      const t = p.types?.[url];
      if (typeState(t) !== 'NACKED') continue;
      const message = (t?.lastNack?.message ?? '(no message)').replace(/\n/g, '\n    ');
      nacks.push(`${p.nodeId} ${short} NACK of version ${cell(t?.lastNack?.version)}: ${message}\n`);
    }
  }
  if (nacks.length > 0) io.out(`\n${nacks.join('')}`);
  return code;
}

const CONFIG_TYPES: Record<string, string> = {
  clusters: 'clusters',
  cluster: 'clusters',
  cds: 'clusters',
  listeners: 'listeners',
  listener: 'listeners',
  lds: 'listeners',
  routes: 'routes',
  route: 'routes',
  rds: 'routes',
  endpoints: 'endpoints',
  endpoint: 'endpoints',
  eds: 'endpoints',
  secrets: 'secrets',
  secret: 'secrets',
  sds: 'secrets',
};

async function cmdProxyConfig(cl: CommandLine, f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  expectArgs(cl, 1, 2, 'proxy-config NODE_ID [clusters|listeners|routes|endpoints|secrets]');
  const format = f.output(['json', 'yaml'], 'json');
  const [node, typeText] = cl.args as [string, string | undefined];
  let type: string | undefined;
  if (typeText !== undefined) {
    type = CONFIG_TYPES[typeText.toLowerCase()];
    if (!type)
      throw new UsageError(
        `unknown type "${typeText}"; one of clusters, listeners, routes, endpoints, secrets`,
      );
  }
  const config = await client().json('GET', `/v1/proxies/${seg(node)}/config`, { query: { type } });
  print(io, format, config);
  return EXIT.OK;
}

// ---------------------------------------------------------------------------
// bootstrap, token, version

async function cmdBootstrap(cl: CommandLine, f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  expectArgs(cl, 0, 0, 'bootstrap --service S --address A --app-port P');
  const query = {
    service: f.required('service'),
    address: f.required('address'),
    appPort: f.required('app-port'),
    labels: f.value('labels'),
    inboundPort: f.value('inbound-port'),
    adminPort: f.value('admin-port'),
    nodeId: f.value('node-id'),
    apiType: f.value('api-type'),
    xdsAddress: f.value('xds-address'),
    xdsPort: f.value('xds-port'),
  };
  const res = await client().request('GET', '/v1/bootstrap', { query });
  const file = f.value('output');
  if (file === undefined) {
    io.out(res.text);
    return EXIT.OK;
  }
  try {
    fs.writeFileSync(file, res.text, { mode: 0o600 });
    fs.chmodSync(file, 0o600); // writeFileSync's mode applies only to a new file
  } catch (err) {
    throw new UsageError(
      `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const nodeId = asObj(asObj(parseYaml(res.text)).node).id;
  io.err(`wrote the bootstrap of node ${cell(nodeId)} to ${file}\n`);
  return EXIT.OK;
}

async function cmdToken(cl: CommandLine, f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  const [sub, ...rest] = cl.args;
  if (sub === 'create') {
    if (rest.length > 0)
      throw new UsageError(`unexpected argument "${rest[0]}": meshctl token create --service S`);
    const format = f.output(['text', 'json', 'yaml'], 'text');
    const body: Obj = { service: f.required('service') };
    const ttl = f.value('ttl');
    if (ttl !== undefined) body.ttl = ttl;
    const answer = await client().json<Obj>('POST', '/v1/tokens', {
      body: JSON.stringify(body),
      contentType: 'application/json',
    });
    if (format !== 'text') {
      print(io, format, answer);
    } else {
      io.out(`${answer.token}\n`);
      io.err(
        `token ${cell(answer.id)} for service ${cell(answer.service)}, expires ${cell(answer.expiresAt)}\n`,
      );
    }
    return EXIT.OK;
  }
  if (sub === 'revoke') {
    if (rest.length !== 1) throw new UsageError('usage: meshctl token revoke ID');
    await client().json('DELETE', `/v1/tokens/${seg(rest[0]!)}`);
    io.out(`token ${rest[0]} revoked\n`);
    return EXIT.OK;
  }
  throw new UsageError(
    sub === undefined
      ? 'missing token verb: create or revoke'
      : `unknown token verb "${sub}": create or revoke`,
  );
}

async function cmdVersion(cl: CommandLine, f: Flags, client: () => ApiClient, io: Io): Promise<number> {
  expectArgs(cl, 0, 0, 'version [--client] [-o json]');
  const format = f.output(['text', 'json', 'yaml'], 'text');
  if (f.bool('client')) {
    if (format === 'text') io.out(`client version: ${CLIENT_VERSION}\n`);
    else print(io, format, { client: CLIENT_VERSION });
    return EXIT.OK;
  }
  if (format === 'text') io.out(`client version: ${CLIENT_VERSION}\n`);
  const c = client();
  const doc = await c.json<Obj>('GET', '/openapi.json');
  const version = asObj(doc.info).version;
  if (format === 'text') io.out(`server version: ${cell(version)} (${c.server})\n`);
  else print(io, format, { client: CLIENT_VERSION, server: { url: c.server, version } });
  return EXIT.OK;
}

// ---------------------------------------------------------------------------
// main

const VERBS: Record<
  Exclude<Verb, 'help'>,
  (cl: CommandLine, f: Flags, c: () => ApiClient, io: Io) => Promise<number>
> = {
  apply: cmdApply,
  get: cmdGet,
  delete: cmdDelete,
  history: cmdHistory,
  diff: cmdDiff,
  rollback: cmdRollback,
  'proxy-status': cmdProxyStatus,
  'proxy-config': cmdProxyConfig,
  bootstrap: cmdBootstrap,
  token: cmdToken,
  version: cmdVersion,
};

function readTokenFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(
      `cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** --token, --token-file, MESHCTL_TOKEN, MESHCTL_TOKEN_FILE: the first one given. */
function tokenOf(f: Flags, env: NodeJS.ProcessEnv): string | undefined {
  const flag = f.value('token');
  if (flag !== undefined) return flag;
  const file = f.value('token-file');
  if (file !== undefined) return readTokenFile(file);
  if (env.MESHCTL_TOKEN) return env.MESHCTL_TOKEN;
  if (env.MESHCTL_TOKEN_FILE) return readTokenFile(env.MESHCTL_TOKEN_FILE);
  return undefined;
}

function timeoutOf(f: Flags): number {
  const t = f.value('timeout') ?? '30s';
  if (!isDuration(t) || parseDurationMs(t) <= 0) {
    throw new UsageError(`--timeout: a positive duration such as 30s or 500ms, not "${t}"`);
  }
  return parseDurationMs(t);
}

/**
 * Runs one meshctl command line; returns the exit code (EXIT). Never throws.
 * @example process.exitCode = await run(['get', 'services'], processIo())
 */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  try {
    const cl = parseCommandLine(argv);
    const f = new Flags(cl);
    if (cl.verb === undefined) {
      if (f.bool('help')) {
        io.out(USAGE);
        return EXIT.OK;
      }
      io.err(USAGE);
      return EXIT.USAGE;
    }
    if (cl.verb === 'help' || f.bool('help')) {
      io.out(USAGE);
      return EXIT.OK;
    }
    let client: ApiClient | undefined;
    const getClient = () => {
      if (!client) {
        const server = f.value('server') ?? (io.env.MESHCTL_SERVER || DEFAULT_SERVER);
        try {
          client = createApiClient({ server, token: tokenOf(f, io.env), timeoutMs: timeoutOf(f) });
        } catch (err) {
          if (err instanceof TypeError) throw new UsageError(`--server: not a URL: "${server}"`);
          throw err;
        }
      }
      return client;
    };
    // Flags are checked before any request: a typo never reaches the server.
    timeoutOf(f);
    return await VERBS[cl.verb](cl, f, getClient, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\nrun "meshctl --help" for usage\n`);
      return EXIT.USAGE;
    }
    if (err instanceof ServerError) {
      io.err(`error: ${err.message}\n`);
      for (const d of err.details) io.err(`  ${d.path}: ${d.message}\n`);
      if (err.status === 401)
        io.err('hint: give the admin token with --token, --token-file or MESHCTL_TOKEN\n');
      return EXIT.SERVER_ERROR;
    }
    if (err instanceof UnreachableError) {
      io.err(`error: ${err.message}\n`);
      return EXIT.UNREACHABLE;
    }
    io.err(`error: internal error in meshctl: ${(err as Error)?.stack ?? String(err)}\n`);
    return EXIT.SERVER_ERROR;
  }
}

/** The process's own streams. */
export function processIo(): Io {
  return {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
    stdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

if (require.main === module) {
  // A closed pipe (meshctl get ... | head) is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  run(process.argv.slice(2), processIo()).then((code) => {
    process.exitCode = code;
  });
}
