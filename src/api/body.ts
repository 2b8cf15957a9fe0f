// Turns a raw request body into validated mesh documents, with errors that name
// the document and the field. Bounded: size (by the caller), depth, UTF-8.
import {
  formatForContentType,
  type KINDS,
  type MeshObject,
  parseDocuments,
  validateDocuments,
} from '../model';
import { ApiError, type ErrorDetail } from './errors';

/** Deeper nesting than any valid document needs; guards parsers and validators. */
export const MAX_DEPTH = 32;

/** Decodes UTF-8 strictly: a body that is not UTF-8 is a 400, not mojibake. */
export function decodeUtf8(body: unknown): string {
  if (body === undefined || body === null) return '';
  if (!Buffer.isBuffer(body)) throw new ApiError('INVALID', 'request body could not be read');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new ApiError('INVALID', 'request body is not valid UTF-8');
  }
}

/** Depth of nested arrays and objects, measured without recursion. */
export function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (d > MAX_DEPTH + 1) return d;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** A cheap pre-parse guard: bracket nesting in JSON or flow YAML beyond the limit. */
function bracketDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 91 || c === 123) {
      depth++;
      if (depth > limit) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}

/**
 * Top-level fields the server sets on what it returns (GET), never part of a document.
 * Dropped from input so that `get -o yaml | apply -f -` round-trips.
 */
export const SERVER_SET_FIELDS = ['revision', 'resourceVersion', 'createdAt', 'updatedAt', 'status'] as const;

/** A copy of a raw document without the server-set fields (anything else is returned as is). */
export function stripServerFields(doc: unknown): unknown {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return doc;
  const copy: Record<string, unknown> = { ...(doc as Record<string, unknown>) };
  for (const f of SERVER_SET_FIELDS) delete copy[f];
  return copy;
}

/** The YAML parser reports a blown stack as a syntax error: say what it means. */
function syntaxMessage(message: string): string {
  return /call stack/i.test(message) ? `documents are nested too deeply (${message})` : message;
}

function problemPath(p: { document: number; path: string }): string {
  return `documents[${p.document}]${p.path ? (p.path.startsWith('[') ? p.path : `.${p.path}`) : ''}`;
}

/**
 * Parses and validates a document set (YAML multi-doc or JSON). Every problem of
 * every document is reported, as `documents[i].spec.field` paths. Server-set
 * fields (SERVER_SET_FIELDS) are dropped first, so objects read from the API can
 * be applied again as they are.
 */
export function readDocuments(body: unknown, contentType: string | undefined): MeshObject[] {
  // The content type first: a body of the wrong type is a 415 whatever it holds.
  if (formatForContentType(contentType) === undefined) {
    throw new ApiError(
      'UNSUPPORTED_MEDIA_TYPE',
      `unsupported content type ${JSON.stringify(contentType)}: use application/json or application/yaml`,
    );
  }
  const text = decodeUtf8(body);
  if (text.trim() === '') throw new ApiError('INVALID', 'request body is empty');
  if (bracketDepthExceeds(text, MAX_DEPTH * 2)) {
    throw new ApiError('INVALID', `documents are nested deeper than ${MAX_DEPTH} levels`);
  }
  let parsed: ReturnType<typeof parseDocuments>;
  try {
    parsed = parseDocuments(text, contentType);
  } catch (err) {
    throw new ApiError('INVALID', `body could not be parsed: ${syntaxMessage((err as Error).message)}`);
  }
  if (!parsed.ok) {
    throw new ApiError(
      'INVALID',
      'body is not valid YAML or JSON',
      parsed.errors.map((e) => detailOf({ ...e, message: syntaxMessage(e.message) })),
    );
  }
  const docs = parsed.value.map(stripServerFields);
  for (const [i, doc] of docs.entries()) {
    if (depthOf(doc) > MAX_DEPTH) {
      throw new ApiError('INVALID', `document ${i} is nested deeper than ${MAX_DEPTH} levels`, [
        { path: `documents[${i}]`, message: 'too deeply nested' },
      ]);
    }
  }
  const validated = validateDocuments(docs);
  if (!validated.ok) {
    throw new ApiError(
      'INVALID',
      `${validated.errors.length} problem(s) in ${new Set(validated.errors.map((e) => e.document)).size} document(s); nothing was stored`,
      validated.errors.map(detailOf),
    );
  }
  return validated.value;
}

function detailOf(p: {
  document: number;
  kind?: string;
  name?: string;
  path: string;
  message: string;
  line?: number;
}): ErrorDetail {
  return {
    path: problemPath(p),
    message: p.message,
    document: p.document,
    ...(p.kind ? { kind: p.kind } : {}),
    ...(p.name ? { name: p.name } : {}),
    ...(p.line ? { line: p.line } : {}),
  };
}

/** One document for PUT: exactly one, of the kind and name the path names. */
export function readSingleDocument(
  body: unknown,
  contentType: string | undefined,
  kind: keyof typeof KINDS,
  name: string,
): MeshObject {
  const docs = readDocuments(body, contentType);
  if (docs.length !== 1) throw new ApiError('INVALID', `expected one document, got ${docs.length}`);
  const [doc] = docs;
  const details: ErrorDetail[] = [];
  if (doc.kind !== kind) details.push({ path: 'kind', message: `must be ${kind} to match the path` });
  if (doc.name !== name) details.push({ path: 'name', message: `must be "${name}" to match the path` });
  if (details.length > 0) throw new ApiError('INVALID', 'the document does not match the path', details);
  return doc;
}
