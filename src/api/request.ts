// Small request helpers shared by the REST routers: the kind named by a path
// segment and the If-Match precondition.
import type { Request } from 'express';
import { findKindByPlural, KIND_NAMES, KINDS, type Kind } from '../model';
import { ApiError } from './errors';

/** The kind named by the `:kind` path segment (its plural); 404 when there is none. */
export function kindOf(req: Request): Kind {
  const plural = String(req.params.kind);
  const kind = findKindByPlural(plural);
  if (!kind) {
    throw new ApiError(
      'NOT_FOUND',
      `unknown kind "${plural}"; one of ${KIND_NAMES.map((k) => KINDS[k].plural).join(', ')}`,
    );
  }
  return kind;
}

/** The If-Match header's resourceVersion (quotes and a weak marker removed). */
export function ifMatchOf(req: Request): string | undefined {
  const h = req.get('if-match');
  if (!h) return undefined;
  return h.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}
