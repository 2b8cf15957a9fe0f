// The REST API's error shape {error: {code, message, details: [{path, message}]}}
// and the mapping from typed errors (store, validation, body) to HTTP statuses.
import { CompactedError, ConflictError, NotFoundError, StoreError, ValidationError } from '../registry';

export interface ErrorDetail {
  readonly path: string;
  readonly message: string;
  readonly [extra: string]: unknown;
}

export type ApiErrorCode =
  | 'INVALID'
  | 'UNAUTHENTICATED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'GONE'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'NOT_READY'
  | 'INTERNAL';

const STATUS: Record<ApiErrorCode, number> = {
  INVALID: 400,
  UNAUTHENTICATED: 401,
  NOT_FOUND: 404,
  CONFLICT: 409,
  GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_READY: 503,
  INTERNAL: 500,
};

/** An error the API answers with on purpose. */
export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly details: readonly ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get status(): number {
    return STATUS[this.code];
  }

  toJSON(): { error: { code: ApiErrorCode; message: string; details: readonly ErrorDetail[] } } {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

/** Maps anything thrown in a handler to an ApiError (unknown errors become INTERNAL). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StoreError) {
    if (err instanceof ConflictError) {
      return new ApiError('CONFLICT', err.message, [
        { path: 'resourceVersion', message: `expected ${err.expected}, current is ${err.actual}` },
      ]);
    }
    if (err instanceof NotFoundError) return new ApiError('NOT_FOUND', err.message);
    if (err instanceof ValidationError) return new ApiError('INVALID', err.message, err.details);
    if (err instanceof CompactedError) return new ApiError('GONE', err.message);
  }
  // body-parser's errors carry a type and a status.
  const e = err as { type?: string; status?: number; message?: string };
  if (e?.type === 'entity.too.large') return new ApiError('PAYLOAD_TOO_LARGE', 'request body too large');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
    return new ApiError('UNSUPPORTED_MEDIA_TYPE', e.message ?? 'unsupported encoding');
  }
  if (e?.type === 'request.aborted') return new ApiError('INVALID', 'request aborted');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return new ApiError('INVALID', e.message ?? 'bad request');
  }
  return new ApiError('INTERNAL', 'internal error');
}
