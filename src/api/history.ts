// Object history over REST: GET /v1/{plural}/{name}/history, GET .../diff and
// POST .../rollback?to=<resourceVersion>. Reads the store's per-object history;
// a rollback is an ordinary write (a put with a precondition), so it is tracked
// like any other change. Mounted by app.ts before the generic /v1/:kind/:name routes.
//
// Rollback semantics:
// - to a `put` entry: that version's labels and spec are written again, as a new version
//   (new revision and resourceVersion). `unchanged` when the object already has them.
// - to a `delete` entry: the object as it was just before that delete (the last put before
//   it) is written again; this recreates a deleted object.
// - the write is conditional: on the If-Match header when given, else on the resourceVersion
//   the object had when the rollback read it (a concurrent change in between is a 409). When the
//   object does not exist, it is created only if it still does not exist (else 409).
// - the restored document is validated again (as PUT does): a version the current schema no
//   longer accepts is a 400.
import { type Request, type RequestHandler, Router } from 'express';
import { stringify as toYaml } from 'yaml';
import { type Kind, validateDocuments } from '../model';
import { documentOf, fieldChanges, type HistoryEntry, type Store, unifiedDiff } from '../registry';
import { ApiError, type ErrorDetail } from './errors';
import { ifMatchOf, kindOf } from './request';

export interface HistoryRouterOptions {
  readonly store: Store;
  /** The auth guards of app.ts: `read` for history and diff, `write` for rollback. */
  readonly read: RequestHandler;
  readonly write: RequestHandler;
  /** Waits for the pipeline to translate a revision; the objects' warnings (as PUT reports them). */
  readonly warningsAfter: (
    revision: number,
    objects: readonly { kind: Kind; name: string }[],
  ) => Promise<unknown[]>;
}

/** Upper bound of ?limit= (a store keeps far fewer versions per object anyway). */
const MAX_LIMIT = 10_000;

/** A query parameter given at most once, as a non-empty string; undefined when absent. */
function queryString(req: Request, field: string): string | undefined {
  const v = req.query[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') {
    throw new ApiError('INVALID', `${field} must be given once`, [{ path: field, message: 'repeated' }]);
  }
  if (v === '') {
    throw new ApiError('INVALID', `${field} must not be empty`, [
      { path: field, message: 'a resourceVersion from the history' },
    ]);
  }
  return v;
}

function limitOf(req: Request): number | undefined {
  const v = queryString(req, 'limit');
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1 || n > MAX_LIMIT) {
    throw new ApiError('INVALID', `limit must be an integer from 1 to ${MAX_LIMIT}, not "${v}"`, [
      { path: 'limit', message: `an integer from 1 to ${MAX_LIMIT}` },
    ]);
  }
  return n;
}

function noHistory(kind: Kind, name: string): ApiError {
  return new ApiError(
    'NOT_FOUND',
    `${kind} "${name}" not found: no history is kept of it (never written, or pruned)`,
  );
}

/** Every kept version of the object, newest first; 404 when there is none. */
async function historyOf(store: Store, kind: Kind, name: string): Promise<HistoryEntry[]> {
  const items = await store.history(kind, name);
  if (items.length === 0) throw noHistory(kind, name);
  return items;
}

/** The entry with this resourceVersion; 404 naming the query field when it is not kept. */
function entryAt(
  items: readonly HistoryEntry[],
  kind: Kind,
  name: string,
  rv: string,
  field: string,
): HistoryEntry {
  const entry = items.find((e) => e.resourceVersion === rv);
  if (entry) return entry;
  const kept = items.map((e) => e.resourceVersion).join(', ');
  const details: ErrorDetail[] = [{ path: field, message: `not in the history; kept: ${kept}` }];
  throw new ApiError('NOT_FOUND', `${kind} "${name}" has no version ${rv} in its history`, details);
}

function entryJson(e: HistoryEntry) {
  return { revision: e.revision, resourceVersion: e.resourceVersion, op: e.op, at: e.at, object: e.object };
}

/** The document at an entry: undefined for a delete (the object did not exist). */
function stateAt(e: HistoryEntry | undefined) {
  return e?.op === 'put' && e.object ? documentOf(e.object) : undefined;
}

function yamlOf(doc: object | undefined): string {
  return doc === undefined ? '' : toYaml(doc, { lineWidth: 0 });
}

function labelOf(kind: Kind, name: string, e: HistoryEntry | undefined): string {
  if (!e) return '/dev/null';
  return `${kind}/${name} resourceVersion ${e.resourceVersion}${e.op === 'delete' ? ' (deleted)' : ''}`;
}

/**
 * The history routes, with the same guards and error shape as the rest of the API.
 * @example app.use(createHistoryRouter({ store, read, write, warningsAfter }));
 */
export function createHistoryRouter(o: HistoryRouterOptions): Router {
  const router = Router();

  router.get('/v1/:kind/:name/history', o.read, async (req, res) => {
    const kind = kindOf(req);
    const name = String(req.params.name);
    const limit = limitOf(req);
    const items = await o.store.history(kind, name, { limit });
    if (items.length === 0) throw noHistory(kind, name);
    res.json({ kind, name, items: items.map(entryJson) });
  });

  // Default: the version before `to` against `to`, and `to` is the newest (current) one.
  router.get('/v1/:kind/:name/diff', o.read, async (req, res) => {
    const kind = kindOf(req);
    const name = String(req.params.name);
    const fromRv = queryString(req, 'from');
    const toRv = queryString(req, 'to');
    const items = await historyOf(o.store, kind, name);
    const to = toRv === undefined ? items[0]! : entryAt(items, kind, name, toRv, 'to');
    const from =
      fromRv === undefined ? items[items.indexOf(to) + 1] : entryAt(items, kind, name, fromRv, 'from');
    const a = stateAt(from);
    const b = stateAt(to);
    res.json({
      kind,
      name,
      from: from?.resourceVersion ?? null,
      to: to.resourceVersion,
      diff: unifiedDiff(yamlOf(a), yamlOf(b), {
        fromLabel: labelOf(kind, name, from),
        toLabel: labelOf(kind, name, to),
      }),
      changes: fieldChanges(a ?? {}, b ?? {}),
    });
  });

  router.post('/v1/:kind/:name/rollback', o.write, async (req, res) => {
    const kind = kindOf(req);
    const name = String(req.params.name);
    const toRv = queryString(req, 'to');
    if (toRv === undefined) {
      throw new ApiError('INVALID', 'rollback needs ?to=<resourceVersion>', [
        { path: 'to', message: 'required: a resourceVersion from the history' },
      ]);
    }
    const ifMatch = ifMatchOf(req);
    const items = await historyOf(o.store, kind, name);
    const target = entryAt(items, kind, name, toRv, 'to');
    if (!target.object) {
      throw new ApiError('NOT_FOUND', `${kind} "${name}" version ${toRv} has no stored object to restore`, [
        { path: 'to', message: 'no object kept for this version' },
      ]);
    }
    const validated = validateDocuments([documentOf(target.object)]);
    if (!validated.ok) {
      throw new ApiError(
        'INVALID',
        `${kind} "${name}" version ${toRv} is no longer a valid document; nothing was stored`,
        validated.errors.map((e) => ({ path: e.path || 'to', message: e.message })),
      );
    }
    const doc = validated.value[0]!;
    const current = await o.store.get(kind, name);
    if (!current && ifMatch !== undefined) {
      throw new ApiError(
        'CONFLICT',
        `${kind} "${name}" does not exist, so it is not at resourceVersion ${ifMatch}`,
        [{ path: 'resourceVersion', message: `expected ${ifMatch}, the object does not exist` }],
      );
    }
    const r = current
      ? await o.store.put(doc, { ifMatch: ifMatch ?? current.resourceVersion })
      : await o.store.put(doc, { ifNoneMatch: '*' });
    res
      .status(r.action === 'created' ? 201 : 200)
      .set('etag', `"${r.object.resourceVersion}"`)
      .json({
        revision: r.revision,
        action: r.action,
        ...(r.action !== 'unchanged' ? { changeId: r.revision } : {}),
        object: r.object,
        rolledBackTo: { resourceVersion: target.resourceVersion, revision: target.revision, op: target.op },
        warnings: await o.warningsAfter(r.revision, [doc]),
      });
  });

  return router;
}
