// The embedded store: one SQLite file (<dataDir>/meshplane.db, WAL, synchronous=FULL) with the
// objects, a bounded change log, each object's bounded history and the revision counter.
// Must not depend on HTTP, xDS or Envoy.
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import Database from 'better-sqlite3';
import { isKind, KIND_NAMES, type Kind, type MeshObject, type ObjectOfKind } from '../model';
import { CompactedError, ConflictError, NotFoundError, ValidationError } from './errors';
import {
  ABSENT,
  type ApplyOptions,
  type ApplyResult,
  type ChangeAction,
  type ChangeEvent,
  type ChangeListener,
  type DeleteResult,
  type HistoryEntry,
  type HistoryOptions,
  type ListOptions,
  type ObjectChange,
  type PreconditionOptions,
  type PutOptions,
  type PutResult,
  type Store,
  type StoredObject,
  type StoreSnapshot,
  type Unsubscribe,
  type WatchOptions,
} from './store';

export interface SqliteStoreOptions {
  /** Directory for meshplane.db (created when missing). */
  dataDir: string;
  /** How many change-log entries to keep (whole revisions are dropped, oldest first). Default 10,000. */
  maxChanges?: number;
  /**
   * How many versions of each object its history keeps (the newest; at least 1, so the current
   * version is always kept). Default 20.
   */
  historyLimit?: number;
  /**
   * How many history entries to keep in all, across objects (at least historyLimit). Past it,
   * the oldest entries go first, deleted objects' included, but never the current version of a
   * live object. Default 100,000.
   */
  maxHistoryEntries?: number;
}

export const DB_FILE_NAME = 'meshplane.db';
const DEFAULT_MAX_CHANGES = 10_000;
export const DEFAULT_HISTORY_LIMIT = 20;
export const DEFAULT_MAX_HISTORY_ENTRIES = 100_000;
const SCHEMA_VERSION = 2;
const DEFAULT_PAGE = 1000;

/** Schema version 1: objects, change log, meta, kv. */
const SCHEMA_V1 = `
CREATE TABLE objects (
  kind       TEXT NOT NULL,
  name       TEXT NOT NULL CHECK (length(name) > 0),
  labels     TEXT NOT NULL CHECK (json_valid(labels) AND json_type(labels) = 'object'),
  spec       TEXT NOT NULL CHECK (json_valid(spec) AND json_type(spec) = 'object'),
  revision   INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (kind, name)
) WITHOUT ROWID;
CREATE TABLE changes (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  revision INTEGER NOT NULL,
  kind     TEXT NOT NULL,
  name     TEXT NOT NULL,
  op       TEXT NOT NULL CHECK (op IN ('put', 'delete')),
  object   TEXT NOT NULL
);
CREATE INDEX changes_by_revision ON changes (revision);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('revision', 0), ('compactedRevision', 0);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
`;

/**
 * Version 2 adds each object's history: one row per put and delete, written with the write,
 * pruned per object and in total, never by change-log compaction. `historyRows` counts its rows.
 */
const SCHEMA_V2 = `
CREATE TABLE history (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,
  kind             TEXT NOT NULL,
  name             TEXT NOT NULL,
  revision         INTEGER NOT NULL,
  resource_version TEXT NOT NULL,
  op               TEXT NOT NULL CHECK (op IN ('put', 'delete')),
  object           TEXT NOT NULL CHECK (json_valid(object)),
  at               TEXT NOT NULL
);
CREATE INDEX history_by_object ON history (kind, name, seq);
INSERT INTO meta (key, value) VALUES ('historyRows', 0);
`;

interface ObjectRow {
  kind: string;
  name: string;
  labels: string;
  spec: string;
  revision: number;
  created_at: string;
  updated_at: string;
}

interface HistoryRow {
  revision: number;
  resource_version: string;
  op: 'put' | 'delete';
  object: string;
  at: string;
}

interface ChangeRow {
  revision: number;
  kind: string;
  name: string;
  op: 'put' | 'delete';
  object: string;
}

interface Watcher {
  readonly listener: ChangeListener;
  readonly onError: ((error: Error) => void) | undefined;
  /** Events at or below this revision are never delivered. */
  readonly fromRevision: number;
  /** Revision of the last event delivered (or fromRevision). */
  cursor: number;
  /** Caught up with the log: new commits are queued in memory instead of read back. */
  live: boolean;
  /** Serialized, so that every delivery gets its own copy of the object. */
  queue: ChangeRow[];
  scheduled: boolean;
  closed: boolean;
}

/**
 * Opens (creating when needed) the store in `dataDir`.
 * @example
 * const store = createSqliteStore({ dataDir: './data' });
 * await store.apply([{ kind: 'Service', name: 'reviews', spec: { protocol: 'http', port: 9080 } }]);
 */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}

export class SqliteStore implements Store {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly maxChanges: number;
  private readonly historyLimit: number;
  private readonly maxHistoryEntries: number;
  private readonly watchers = new Set<Watcher>();
  private closed = false;
  private readonly stmt: Statements;

  constructor(options: SqliteStoreOptions) {
    const maxChanges = options.maxChanges ?? DEFAULT_MAX_CHANGES;
    if (!Number.isSafeInteger(maxChanges) || maxChanges < 1) {
      throw new RangeError(`maxChanges must be a positive integer, got ${maxChanges}`);
    }
    this.maxChanges = maxChanges;
    const historyLimit = options.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    if (!Number.isSafeInteger(historyLimit) || historyLimit < 1) {
      throw new RangeError(`historyLimit must be a positive integer, got ${historyLimit}`);
    }
    const maxHistoryEntries =
      options.maxHistoryEntries ?? Math.max(DEFAULT_MAX_HISTORY_ENTRIES, historyLimit);
    if (!Number.isSafeInteger(maxHistoryEntries) || maxHistoryEntries < historyLimit) {
      throw new RangeError(
        `maxHistoryEntries must be an integer of at least historyLimit (${historyLimit}), got ${maxHistoryEntries}`,
      );
    }
    this.historyLimit = historyLimit;
    this.maxHistoryEntries = maxHistoryEntries;
    // Owner-only: the data dir and the database will also hold the CA (via setMeta).
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    this.path = join(options.dataDir, DB_FILE_NAME);
    this.db = new Database(this.path);
    try {
      chmodSync(this.path, 0o600); // SQLite gives its -wal and -shm files the same mode
      this.db.pragma('journal_mode = WAL');
      // FULL: a commit is fsynced before it returns, so an acknowledged write survives SIGKILL
      // and power loss (NORMAL in WAL mode may lose the last commits on power loss).
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.stmt = prepareStatements(this.db);
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `${this.path} has schema version ${version}; this meshplane knows up to ${SCHEMA_VERSION}`,
      );
    }
    this.db
      .transaction(() => {
        if (version < 1) this.db.exec(SCHEMA_V1);
        if (version < 2) this.migrateToV2();
        this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
      })
      .immediate();
  }

  /** Adds the history table; each existing object's current version becomes its first entry. */
  private migrateToV2(): void {
    this.db.exec(SCHEMA_V2);
    const insert = this.db.prepare<[string, string, number, string, string, string]>(
      "INSERT INTO history (kind, name, revision, resource_version, op, object, at) VALUES (?, ?, ?, ?, 'put', ?, ?)",
    );
    let rows = 0;
    const objects = this.db
      .prepare<[], ObjectRow>('SELECT * FROM objects ORDER BY revision, kind, name')
      .all();
    for (const row of objects) {
      const obj = toStored(row);
      insert.run(obj.kind, obj.name, obj.revision, obj.resourceVersion, JSON.stringify(obj), obj.updatedAt);
      rows++;
    }
    this.db.prepare("UPDATE meta SET value = ? WHERE key = 'historyRows'").run(rows);
  }

  /** The database settings in effect, for diagnostics and tests. */
  settings(): {
    journalMode: string;
    synchronous: 'off' | 'normal' | 'full' | 'extra';
    schemaVersion: number;
  } {
    this.assertOpen();
    const sync = this.db.pragma('synchronous', { simple: true }) as number;
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: (['off', 'normal', 'full', 'extra'] as const)[sync]!,
      schemaVersion: this.db.pragma('user_version', { simple: true }) as number,
    };
  }

  async get<K extends Kind>(kind: K, name: string): Promise<StoredObject<ObjectOfKind<K>> | undefined> {
    this.assertOpen();
    const row = this.stmt.getObject.get(kind, name);
    return row ? (toStored(row) as StoredObject<ObjectOfKind<K>>) : undefined;
  }

  async list<K extends Kind>(kind: K, options: ListOptions = {}): Promise<StoredObject<ObjectOfKind<K>>[]> {
    this.assertOpen();
    const selector = Object.entries(options.labels ?? {});
    const out: StoredObject<ObjectOfKind<K>>[] = [];
    for (const row of this.stmt.listKind.iterate(kind)) {
      const obj = toStored(row) as StoredObject<ObjectOfKind<K>>;
      if (selector.every(([k, v]) => obj.labels?.[k] === v)) out.push(obj);
    }
    return out;
  }

  async snapshot(): Promise<StoreSnapshot> {
    this.assertOpen();
    return this.db
      .transaction(() => {
        const revision = this.readMeta('revision');
        const order = (k: string) => KIND_NAMES.indexOf(k as Kind);
        const objects = this.stmt.listAll.all().map(toStored);
        objects.sort((a, b) => order(a.kind) - order(b.kind)); // stable: names stay sorted
        return { revision, objects };
      })
      .deferred();
  }

  async apply(objects: readonly MeshObject[], options: ApplyOptions = {}): Promise<ApplyResult> {
    this.assertOpen();
    checkObjects(objects);
    const run = () => {
      const current = this.readMeta('revision');
      const next = current + 1;
      const now = new Date().toISOString();
      const changes: ObjectChange[] = [];
      const events: ChangeEvent[] = [];
      for (const obj of objects) {
        const { action, stored } = this.writeObject(obj, next, now, options.dryRun === true);
        changes.push({ kind: obj.kind, name: obj.name, action, resourceVersion: stored.resourceVersion });
        if (action !== 'unchanged') events.push(putEvent(stored));
      }
      const revision = events.length > 0 ? next : current;
      const logged = options.dryRun ? [] : this.commitEvents(events, revision, now);
      return { result: { revision, changes }, logged };
    };
    const { result, logged } = options.dryRun
      ? this.db.transaction(run).deferred()
      : this.db.transaction(run).immediate();
    this.publish(logged);
    return result;
  }

  async put(object: MeshObject, options: PutOptions = {}): Promise<PutResult> {
    this.assertOpen();
    checkObjects([object]);
    if (options.ifNoneMatch !== undefined && options.ifNoneMatch !== '*') {
      throw new RangeError(`ifNoneMatch must be '*', got ${String(options.ifNoneMatch)}`);
    }
    if (options.ifNoneMatch !== undefined && options.ifMatch !== undefined) {
      throw new RangeError('give ifMatch or ifNoneMatch, not both');
    }
    const { result, logged } = this.db
      .transaction(() => {
        const existing = this.stmt.getObject.get(object.kind, object.name);
        checkPrecondition(object, existing, options.ifMatch);
        if (options.ifNoneMatch === '*' && existing) {
          throw new ConflictError(
            { kind: object.kind, name: object.name },
            ABSENT,
            String(existing.revision),
          );
        }
        const current = this.readMeta('revision');
        const now = new Date().toISOString();
        const { action, stored } = this.writeObject(object, current + 1, now, false);
        const events = action === 'unchanged' ? [] : [putEvent(stored)];
        const revision = events.length > 0 ? current + 1 : current;
        const logged = this.commitEvents(events, revision, now);
        return { result: { revision, action, object: stored }, logged };
      })
      .immediate();
    this.publish(logged);
    return result;
  }

  async delete(kind: Kind, name: string, options: PreconditionOptions = {}): Promise<DeleteResult> {
    this.assertOpen();
    const { result, logged } = this.db
      .transaction(() => {
        const existing = this.stmt.getObject.get(kind, name);
        checkPrecondition({ kind, name }, existing, options.ifMatch);
        if (!existing) throw new NotFoundError({ kind, name });
        const revision = this.readMeta('revision') + 1;
        this.stmt.deleteObject.run(kind, name);
        const object = toStored(existing);
        const logged = this.commitEvents(
          [{ revision, kind, name, op: 'delete', object }],
          revision,
          new Date().toISOString(),
        );
        return { result: { revision, object }, logged };
      })
      .immediate();
    this.publish(logged);
    return result;
  }

  async revision(): Promise<number> {
    this.assertOpen();
    return this.readMeta('revision');
  }

  async changesSince(revision: number, limit = DEFAULT_PAGE): Promise<ChangeEvent[]> {
    this.assertOpen();
    return this.readChangeRows(revision, limit).map(toEvent);
  }

  watch(fromRevision: number, listener: ChangeListener, options: WatchOptions = {}): Unsubscribe {
    this.assertOpen();
    if (!Number.isSafeInteger(fromRevision) || fromRevision < 0) {
      throw new RangeError(`fromRevision must be a non-negative integer, got ${fromRevision}`);
    }
    const w: Watcher = {
      listener,
      onError: options.onError,
      fromRevision,
      cursor: fromRevision,
      live: false,
      queue: [],
      scheduled: false,
      closed: false,
    };
    this.watchers.add(w);
    this.schedule(w);
    return () => this.stopWatcher(w);
  }

  async history(kind: Kind, name: string, options: HistoryOptions = {}): Promise<HistoryEntry[]> {
    this.assertOpen();
    const limit = options.limit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw new RangeError(`limit must be a positive integer, got ${limit}`);
    }
    return this.stmt.historyOf.all(kind, name, limit ?? -1).map(toHistoryEntry);
  }

  async getMeta(key: string): Promise<string | undefined> {
    this.assertOpen();
    return this.stmt.getKv.get(key)?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.assertOpen();
    this.db.transaction(() => this.stmt.setKv.run(key, value, new Date().toISOString())).immediate();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers) w.closed = true;
    this.watchers.clear();
    this.db.close();
  }

  // ---- writes (always called inside a transaction)

  /** Creates, updates or leaves one object at revision `next`; writes nothing when `dryRun`. */
  private writeObject(
    obj: MeshObject,
    next: number,
    now: string,
    dryRun: boolean,
  ): { action: ChangeAction; stored: StoredObject } {
    const existing = this.stmt.getObject.get(obj.kind, obj.name);
    const labels = JSON.stringify(obj.labels ?? {});
    const spec = JSON.stringify(obj.spec);
    if (existing && sameJson(existing.labels, labels) && sameJson(existing.spec, spec)) {
      return { action: 'unchanged', stored: toStored(existing) };
    }
    const row: ObjectRow = {
      kind: obj.kind,
      name: obj.name,
      labels,
      spec,
      revision: next,
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    if (!dryRun) {
      if (existing) this.stmt.updateObject.run(labels, spec, next, now, obj.kind, obj.name);
      else this.stmt.insertObject.run(obj.kind, obj.name, labels, spec, next, now, now);
    }
    return { action: existing ? 'updated' : 'created', stored: toStored(row) };
  }

  /**
   * Logs the events and records them in the objects' histories, bumps the revision, trims the
   * log and prunes the histories; nothing when there are no events.
   */
  private commitEvents(events: readonly ChangeEvent[], revision: number, now: string): ChangeRow[] {
    if (events.length === 0) return [];
    const rows = events.map((e) => ({ ...e, object: JSON.stringify(e.object) }));
    rows.forEach((r, i) => {
      this.stmt.insertChange.run(r.revision, r.kind, r.name, r.op, r.object);
      // A put's entry is named by the object's resourceVersion; a delete's by its revision.
      const rv = r.op === 'put' ? events[i]!.object.resourceVersion : String(r.revision);
      this.stmt.insertHistory.run(r.kind, r.name, r.revision, rv, r.op, r.object, now);
    });
    this.stmt.setMeta.run(revision, 'revision');
    this.trimChanges(revision);
    this.pruneHistory(rows);
    return rows;
  }

  /** Keeps historyLimit entries per written object, then at most maxHistoryEntries in all. */
  private pruneHistory(rows: readonly ChangeRow[]): void {
    let count = this.readMeta('historyRows') + rows.length;
    const done = new Set<string>();
    for (const r of rows) {
      const key = `${r.kind}/${r.name}`;
      if (done.has(key)) continue;
      done.add(key);
      count -= this.stmt.pruneObjectHistory.run(r.kind, r.name, r.kind, r.name, this.historyLimit).changes;
    }
    if (count > this.maxHistoryEntries) {
      count -= this.stmt.pruneOldestHistory.run(count - this.maxHistoryEntries).changes;
    }
    this.stmt.setMeta.run(count, 'historyRows');
  }

  /** Keeps about maxChanges log entries, dropping whole revisions but never the newest one. */
  private trimChanges(revision: number): void {
    const { minSeq, maxSeq } = this.stmt.changeBounds.get()!;
    if (minSeq === null || maxSeq === null || maxSeq - minSeq + 1 <= this.maxChanges) return;
    const cutRow = this.stmt.revisionAtOrBelowSeq.get(maxSeq - this.maxChanges);
    if (!cutRow) return;
    const cut = Math.min(cutRow.revision, revision - 1);
    if (cut <= this.readMeta('compactedRevision')) return;
    this.stmt.deleteChangesUpTo.run(cut);
    this.stmt.setMeta.run(cut, 'compactedRevision');
  }

  private readMeta(key: 'revision' | 'compactedRevision' | 'historyRows'): number {
    return this.stmt.getMeta.get(key)!.value;
  }

  private readChangeRows(revision: number, limit: number): ChangeRow[] {
    if (!Number.isSafeInteger(revision) || revision < 0) {
      throw new RangeError(`revision must be a non-negative integer, got ${revision}`);
    }
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`limit must be a positive integer, got ${limit}`);
    }
    return this.db
      .transaction(() => {
        const compacted = this.readMeta('compactedRevision');
        if (revision < compacted) throw new CompactedError(revision, compacted);
        // Up to the revision of the limit-th event, so that no revision is split across pages.
        const last =
          this.stmt.nthChangeRevision.get(revision, limit - 1)?.revision ?? this.readMeta('revision');
        return this.stmt.changesBetween.all(revision, last);
      })
      .deferred();
  }

  // ---- the change feed

  /** Called after a commit: queues its changes for live watchers and wakes every watcher. */
  private publish(rows: readonly ChangeRow[]): void {
    if (rows.length === 0) return;
    for (const w of this.watchers) {
      if (w.live) w.queue.push(...rows);
      this.schedule(w);
    }
  }

  private schedule(w: Watcher): void {
    if (w.scheduled || w.closed) return;
    w.scheduled = true;
    setImmediate(() => {
      w.scheduled = false;
      this.pump(w);
    });
  }

  /** Delivers what a watcher has not seen: from the log while catching up, then from its queue. */
  private pump(w: Watcher): void {
    if (w.closed || this.closed) return;
    // Catching up: read the log until it has nothing newer. Reads and commits are synchronous,
    // so no commit can fall between the last read and `live = true`.
    while (!w.live) {
      let page: ChangeRow[];
      try {
        page = this.readChangeRows(w.cursor, DEFAULT_PAGE);
      } catch (err) {
        this.stopWatcher(w);
        this.report(w, err as Error);
        return;
      }
      if (page.length === 0) w.live = true;
      for (const row of page) {
        if (w.closed) return;
        this.deliver(w, row);
      }
    }
    while (w.queue.length > 0) {
      const batch = w.queue;
      w.queue = [];
      for (const row of batch) {
        if (w.closed) return;
        this.deliver(w, row);
      }
    }
  }

  private deliver(w: Watcher, row: ChangeRow): void {
    if (row.revision <= w.fromRevision) return;
    w.cursor = row.revision;
    try {
      w.listener(toEvent(row));
    } catch (err) {
      this.report(w, err as Error);
    }
  }

  private report(w: Watcher, error: Error): void {
    if (w.onError) w.onError(error);
    else
      setImmediate(() => {
        throw error;
      });
  }

  private stopWatcher(w: Watcher): void {
    w.closed = true;
    w.queue = [];
    this.watchers.delete(w);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the store is closed');
  }
}

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: Database.Database) {
  return {
    getObject: db.prepare<[string, string], ObjectRow>('SELECT * FROM objects WHERE kind = ? AND name = ?'),
    listKind: db.prepare<[string], ObjectRow>('SELECT * FROM objects WHERE kind = ? ORDER BY name'),
    listAll: db.prepare<[], ObjectRow>('SELECT * FROM objects ORDER BY kind, name'),
    insertObject: db.prepare<[string, string, string, string, number, string, string]>(
      'INSERT INTO objects (kind, name, labels, spec, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    updateObject: db.prepare<[string, string, number, string, string, string]>(
      'UPDATE objects SET labels = ?, spec = ?, revision = ?, updated_at = ? WHERE kind = ? AND name = ?',
    ),
    deleteObject: db.prepare<[string, string]>('DELETE FROM objects WHERE kind = ? AND name = ?'),
    getMeta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare<[number, string]>('UPDATE meta SET value = ? WHERE key = ?'),
    insertChange: db.prepare<[number, string, string, string, string]>(
      'INSERT INTO changes (revision, kind, name, op, object) VALUES (?, ?, ?, ?, ?)',
    ),
    changeBounds: db.prepare<[], { minSeq: number | null; maxSeq: number | null }>(
      // Two subqueries: SQLite answers a lone min() or max() from the index, but both in one
      // SELECT scan the whole table (every write pays for it).
      'SELECT (SELECT min(seq) FROM changes) AS minSeq, (SELECT max(seq) FROM changes) AS maxSeq',
    ),
    revisionAtOrBelowSeq: db.prepare<[number], { revision: number }>(
      'SELECT revision FROM changes WHERE seq <= ? ORDER BY seq DESC LIMIT 1',
    ),
    deleteChangesUpTo: db.prepare<[number]>('DELETE FROM changes WHERE revision <= ?'),
    nthChangeRevision: db.prepare<[number, number], { revision: number }>(
      'SELECT revision FROM changes WHERE revision > ? ORDER BY seq LIMIT 1 OFFSET ?',
    ),
    changesBetween: db.prepare<[number, number], ChangeRow>(
      'SELECT revision, kind, name, op, object FROM changes WHERE revision > ? AND revision <= ? ORDER BY seq',
    ),
    insertHistory: db.prepare<[string, string, number, string, string, string, string]>(
      'INSERT INTO history (kind, name, revision, resource_version, op, object, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    historyOf: db.prepare<[string, string, number], HistoryRow>(
      'SELECT revision, resource_version, op, object, at FROM history WHERE kind = ? AND name = ? ' +
        'ORDER BY seq DESC LIMIT ?',
    ),
    /** Drops an object's entries older than its newest `?` (the last parameter). */
    pruneObjectHistory: db.prepare<[string, string, string, string, number]>(
      'DELETE FROM history WHERE kind = ? AND name = ? AND seq <= ' +
        '(SELECT seq FROM history WHERE kind = ? AND name = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)',
    ),
    /** Drops the oldest `?` entries that are not the current version of a live object. */
    pruneOldestHistory: db.prepare<[number]>(
      'DELETE FROM history WHERE seq IN (SELECT h.seq FROM history h WHERE NOT EXISTS ' +
        '(SELECT 1 FROM objects o WHERE o.kind = h.kind AND o.name = h.name AND o.revision = h.revision) ' +
        'ORDER BY h.seq LIMIT ?)',
    ),
    getKv: db.prepare<[string], { value: string }>('SELECT value FROM kv WHERE key = ?'),
    setKv: db.prepare<[string, string, string]>(
      'INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ' +
        'ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    ),
  };
}

function toStored(row: ObjectRow): StoredObject {
  const labels = JSON.parse(row.labels) as Record<string, string>;
  return {
    kind: row.kind,
    name: row.name,
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
    spec: JSON.parse(row.spec),
    revision: row.revision,
    resourceVersion: String(row.revision),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  } as StoredObject;
}

function toEvent(row: ChangeRow): ChangeEvent {
  return {
    revision: row.revision,
    kind: row.kind as Kind,
    name: row.name,
    op: row.op,
    object: JSON.parse(row.object) as StoredObject,
  };
}

function toHistoryEntry(row: HistoryRow): HistoryEntry {
  return {
    revision: row.revision,
    resourceVersion: row.resource_version,
    op: row.op,
    at: row.at,
    object: JSON.parse(row.object) as StoredObject,
  };
}

function putEvent(stored: StoredObject): ChangeEvent {
  return { revision: stored.revision, kind: stored.kind, name: stored.name, op: 'put', object: stored };
}

/** Equal JSON values regardless of key order (YAML and JSON clients order keys differently). */
function sameJson(a: string, b: string): boolean {
  return a === b || isDeepStrictEqual(JSON.parse(a), JSON.parse(b));
}

/** The store's only input check: a known kind and a name, each object at most once. */
function checkObjects(objects: readonly MeshObject[]): void {
  const details: { path: string; message: string }[] = [];
  const seen = new Set<string>();
  objects.forEach((obj, i) => {
    const o = obj as { kind?: unknown; name?: unknown } | null;
    if (typeof o !== 'object' || o === null) {
      details.push({ path: `[${i}]`, message: 'must be an object' });
      return;
    }
    if (!isKind(o.kind)) details.push({ path: `[${i}].kind`, message: 'must be a known kind' });
    if (typeof o.name !== 'string' || o.name === '') {
      details.push({ path: `[${i}].name`, message: 'must be a non-empty string' });
    }
    const key = `${String(o.kind)}/${String(o.name)}`;
    if (seen.has(key)) details.push({ path: `[${i}].name`, message: `${key} appears twice` });
    seen.add(key);
  });
  if (details.length > 0) throw new ValidationError('objects need a known kind and a name', details);
}

function checkPrecondition(
  ref: { kind: string; name: string },
  existing: ObjectRow | undefined,
  ifMatch?: string,
) {
  if (ifMatch === undefined) return;
  if (!existing) throw new NotFoundError({ kind: ref.kind, name: ref.name });
  const actual = String(existing.revision);
  if (ifMatch !== '*' && ifMatch !== actual) {
    throw new ConflictError({ kind: ref.kind, name: ref.name }, ifMatch, actual);
  }
}
