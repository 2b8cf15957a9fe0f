// The store interface: the only place mesh state lives, with a mesh revision and a change feed.
// Implementations (SQLite now, PostgreSQL later) sit behind it; callers must not depend on either.
import type { Kind, MeshObject, ObjectOfKind } from '../model';

/** What the store adds to every object it holds. */
export interface ObjectMeta {
  /** The mesh revision of this object's last write. */
  revision: number;
  /** Opaque; changes on every write of this object. Give it back as `ifMatch`. */
  resourceVersion: string;
  /** ISO 8601 times of the first and the last write. */
  createdAt: string;
  updatedAt: string;
}

/** An object as stored: the document (labels omitted when empty) plus its metadata. */
export type StoredObject<T extends MeshObject = MeshObject> = T & ObjectMeta;

export type ChangeAction = 'created' | 'updated' | 'unchanged';

export interface ObjectChange {
  kind: Kind;
  name: string;
  action: ChangeAction;
  /** The object's resourceVersion after the write (its current one when unchanged). */
  resourceVersion: string;
}

export interface ApplyResult {
  /** The mesh revision after the apply; unchanged when no object changed. */
  revision: number;
  /** One entry per object, in input order. */
  changes: ObjectChange[];
}

export interface PutResult {
  revision: number;
  action: ChangeAction;
  object: StoredObject;
}

export interface DeleteResult {
  revision: number;
  /** The object as it was just before it was deleted. */
  object: StoredObject;
}

/**
 * One entry of the change feed. For `put`, `object` is the object as written; for `delete`, it
 * is the object as it was just before deletion (so that e.g. a removed Instance's service is
 * known). One apply that changes several objects yields several events with the same revision.
 */
export interface ChangeEvent {
  revision: number;
  kind: Kind;
  name: string;
  op: 'put' | 'delete';
  object: StoredObject;
}

export interface ListOptions {
  /** Label selector: an object matches when it has every one of these labels with these values. */
  labels?: Readonly<Record<string, string>>;
}

export interface ApplyOptions {
  /** Compute and return the changes without storing anything. */
  dryRun?: boolean;
}

export interface PreconditionOptions {
  /**
   * Write only if the object's current resourceVersion is this one (else ConflictError).
   * `'*'` means "only if it exists". When the object does not exist, any ifMatch gives
   * NotFoundError: the caller meant to change a particular object, and it is gone.
   */
  ifMatch?: string;
}

export interface PutOptions extends PreconditionOptions {
  /**
   * `'*'`: write only if the object does not exist (else ConflictError, with `expected`
   * `ABSENT` and the object's current resourceVersion). Not together with ifMatch.
   */
  ifNoneMatch?: '*';
}

/** The `expected` of a ConflictError from `ifNoneMatch: '*'`: the caller expected no object. */
export const ABSENT = '(absent)';

/**
 * One version of an object in its history.
 * - `put`: a write that changed the object (create, update, rollback); `object` is the
 *   object as written, and `resourceVersion` is its resourceVersion.
 * - `delete`: the object was deleted; `object` is the object as it was just before (as in
 *   the change feed), and `resourceVersion` names the deletion itself (unique per object,
 *   never the resourceVersion of a live object).
 */
export interface HistoryEntry {
  /** The mesh revision of the write. */
  revision: number;
  resourceVersion: string;
  op: 'put' | 'delete';
  /** ISO 8601 time of the write. */
  at: string;
  /** Absent only when a store keeps no bodies for an entry (the SQLite store always does). */
  object?: StoredObject;
}

export interface HistoryOptions {
  /** At most this many entries (the newest ones). */
  limit?: number;
}

export interface WatchOptions {
  /**
   * Told when the watch cannot continue (CompactedError: the change log no longer reaches back
   * to where the watcher is; the watch then ends) or when the listener throws (the watch goes
   * on). Without it, the error is thrown asynchronously: a watcher must not stop silently.
   */
  onError?: (error: Error) => void;
}

export type ChangeListener = (event: ChangeEvent) => void;
export type Unsubscribe = () => void;

/** Every object at one revision. */
export interface StoreSnapshot {
  revision: number;
  objects: StoredObject[];
}

/**
 * The durable mesh store. Every method is async so that a networked implementation fits
 * behind the same interface. Writes are atomic; the mesh revision bumps once per write call
 * that changes something. The store does not validate documents (callers run
 * validateDocuments first) but refuses objects without a known kind or a name.
 */
export interface Store {
  /** One object, or undefined. */
  get<K extends Kind>(kind: K, name: string): Promise<StoredObject<ObjectOfKind<K>> | undefined>;
  /** Every object of a kind, by name, optionally filtered by labels. */
  list<K extends Kind>(kind: K, options?: ListOptions): Promise<StoredObject<ObjectOfKind<K>>[]>;
  /** Every object, read at one revision (watch from `revision` to follow it). */
  snapshot(): Promise<StoreSnapshot>;
  /**
   * Creates or updates all objects, all or nothing. An object whose labels and spec equal the
   * stored ones is `unchanged` and is not written. Two objects with the same kind and name in
   * one call are a ValidationError.
   */
  apply(objects: readonly MeshObject[], options?: ApplyOptions): Promise<ApplyResult>;
  /** Creates or replaces one object. */
  put(object: MeshObject, options?: PutOptions): Promise<PutResult>;
  /** Deletes one object; NotFoundError when absent. */
  delete(kind: Kind, name: string, options?: PreconditionOptions): Promise<DeleteResult>;
  /** The current mesh revision (0 for an empty store). */
  revision(): Promise<number>;
  /**
   * Changes after `revision`, oldest first: whole revisions, about `limit` events (more when
   * needed to finish the last revision). CompactedError when the log no longer reaches back.
   */
  changesSince(revision: number, limit?: number): Promise<ChangeEvent[]>;
  /**
   * Calls `listener` with every change after `fromRevision` in revision order: first those
   * already in the log, then new ones as they are committed, always after the commit and
   * never inside a write. Returns a function that stops the watch.
   */
  watch(fromRevision: number, listener: ChangeListener, options?: WatchOptions): Unsubscribe;
  /**
   * An object's versions, newest first: one entry per write that changed it (`put`, never for
   * an `unchanged` one or a dry run) and per `delete`, written in the same transaction as the
   * write. Not subject to change-log compaction: bounded per object instead (the newest
   * entries; the current version of a live object is always kept), and kept after a delete
   * (a deleted object's history stays readable until pruned). [] when none is kept.
   */
  history(kind: Kind, name: string, options?: HistoryOptions): Promise<HistoryEntry[]>;
  /** A small durable key-value space for other modules (e.g. the CA). */
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
  /** Stops every watch and releases the database. */
  close(): Promise<void>;
}
