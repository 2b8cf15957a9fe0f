// Typed errors for the store's expected failures: conflict, not found, invalid input, compacted
// change log. Must not depend on a database, HTTP or the API layer (which maps `code` to a status).

/** Identifies one object. */
export interface ObjectRef {
  kind: string;
  name: string;
}

/**
 * A problem with one field: `path` as in `spec.http[0].backends[1].weight` or `[2].name`.
 * A type alias (not an interface) so that it fits wider detail types with extra keys.
 */
export type ErrorDetail = {
  path: string;
  message: string;
};

export type StoreErrorCode = 'CONFLICT' | 'NOT_FOUND' | 'INVALID' | 'COMPACTED';

/** Base of every error the store throws on purpose; anything else is a bug or an I/O failure. */
export abstract class StoreError extends Error {
  abstract readonly code: StoreErrorCode;
}

/**
 * An `ifMatch` precondition failed: the object is at another resourceVersion (HTTP 409).
 * @example if (err instanceof ConflictError) reply(409, `${err.object.name} is at ${err.actual}`);
 */
export class ConflictError extends StoreError {
  override readonly code = 'CONFLICT' as const;
  constructor(
    readonly object: ObjectRef,
    /** The resourceVersion the caller gave. */
    readonly expected: string,
    /** The object's current resourceVersion. */
    readonly actual: string,
  ) {
    super(`${object.kind} "${object.name}" is at resourceVersion ${actual}, not ${expected}`);
    this.name = 'ConflictError';
  }
}

/** The object does not exist (HTTP 404). */
export class NotFoundError extends StoreError {
  override readonly code = 'NOT_FOUND' as const;
  constructor(readonly object: ObjectRef) {
    super(`${object.kind} "${object.name}" not found`);
    this.name = 'NotFoundError';
  }
}

/** Input the store cannot take, with every problem and its field path (HTTP 400). */
export class ValidationError extends StoreError {
  override readonly code = 'INVALID' as const;
  constructor(
    message: string,
    readonly details: readonly ErrorDetail[],
  ) {
    super(message);
    this.name = 'ValidationError';
  }
}

/**
 * The change log no longer holds every change after `requested` (it keeps a bounded tail):
 * the caller must re-read the current state (e.g. `snapshot()`) and watch from its revision
 * (HTTP 410).
 */
export class CompactedError extends StoreError {
  override readonly code = 'COMPACTED' as const;
  constructor(
    readonly requested: number,
    /** Changes at revisions up to and including this one are gone. */
    readonly compactedRevision: number,
  ) {
    super(`changes after revision ${requested} are no longer kept (compacted up to ${compactedRevision})`);
    this.name = 'CompactedError';
  }
}
