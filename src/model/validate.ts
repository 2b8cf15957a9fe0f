// Validates a batch of documents against the kind schemas and reports every problem of every
// document with its field path. Must not depend on the store, the API or Envoy types.
import { z } from 'zod';
import { labelsSchema, nameSchema } from './common';
import { isKind, KIND_NAMES, KINDS, type MeshObject } from './kinds';

/** One problem in one document of a batch. */
export interface DocumentProblem {
  /** 0-based position of the document in the batch. */
  document: number;
  /** The document's kind and name, when it has them as strings (to help find it). */
  kind?: string;
  name?: string;
  /** Field path such as `spec.http[0].backends[1].weight`; '' for the document itself. */
  path: string;
  message: string;
  /** 1-based position in the source text, for syntax errors. */
  line?: number;
  column?: number;
}

/** The result of parsing or validating a batch. */
export type DocumentsResult<T> = { ok: true; value: T } | { ok: false; errors: DocumentProblem[] };

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Renders a zod path as a JS-like field path.
 * @example formatPath(['spec', 'http', 0, 'match', 'headers', 'x-user']) === 'spec.http[0].match.headers["x-user"]'
 */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      if (IDENTIFIER.test(s)) out += out === '' ? s : `.${s}`;
      else out += `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

/** zod's issues as path + message pairs, one per unknown field. */
function problemsOf(issues: readonly z.core.$ZodIssue[]): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  for (const issue of issues) {
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          out.push({ path: formatPath([...issue.path, key]), message: `unknown field "${key}"` });
        }
        break;
      case 'invalid_key': {
        const inner = issue.issues.map((i) => i.message).join('; ');
        out.push({ path: formatPath(issue.path), message: `invalid key: ${inner}` });
        break;
      }
      case 'invalid_type':
        out.push({
          path: formatPath(issue.path),
          message: 'input' in issue && issue.input === undefined ? 'required' : issue.message,
        });
        break;
      default:
        out.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  return out;
}

// For documents whose kind is missing or unknown: still check the rest of the envelope.
const envelopeSchema = z.strictObject({
  kind: z.unknown().optional(),
  name: nameSchema,
  labels: labelsSchema.optional(),
  spec: z.record(z.string(), z.unknown()),
});

const KIND_LIST = KIND_NAMES.join(', ');

function validateOne(doc: unknown): { value?: MeshObject; problems: { path: string; message: string }[] } {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { problems: [{ path: '', message: 'a document must be an object with kind, name and spec' }] };
  }
  const kind = (doc as { kind?: unknown }).kind;
  if (!isKind(kind)) {
    const message =
      kind === undefined
        ? `required: one of ${KIND_LIST}`
        : `unknown kind ${JSON.stringify(kind)}; expected one of ${KIND_LIST}`;
    const rest = envelopeSchema.safeParse(doc, { reportInput: true });
    return { problems: [{ path: 'kind', message }, ...(rest.success ? [] : problemsOf(rest.error.issues))] };
  }
  const result = (KINDS[kind].schema as z.ZodType<MeshObject>).safeParse(doc, { reportInput: true });
  if (result.success) return { value: result.data, problems: [] };
  return { problems: problemsOf(result.error.issues) };
}

/**
 * Validates every document of a batch, applying defaults. Reports every problem of every
 * document (and two documents with the same kind and name), or returns the typed objects.
 * @example
 * const r = validateDocuments([{ kind: 'Service', name: 'reviews', spec: { port: 9080 } }]);
 * if (r.ok) r.value[0].spec; // { protocol: 'http', port: 9080 }
 */
export function validateDocuments(docs: readonly unknown[]): DocumentsResult<MeshObject[]> {
  const errors: DocumentProblem[] = [];
  const value: MeshObject[] = [];
  const seen = new Map<string, number>();
  docs.forEach((doc, document) => {
    const ref = refOf(doc);
    const { value: obj, problems } = validateOne(doc);
    for (const p of problems) errors.push({ document, ...ref, ...p });
    if (ref.kind !== undefined && ref.name !== undefined) {
      const key = `${ref.kind}/${ref.name}`;
      const first = seen.get(key);
      if (first === undefined) seen.set(key, document);
      else {
        errors.push({
          document,
          ...ref,
          path: 'name',
          message: `${ref.kind} "${ref.name}" is also document ${first}: each object may appear once`,
        });
      }
    }
    if (obj) value.push(obj);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}

function refOf(doc: unknown): { kind?: string; name?: string } {
  if (typeof doc !== 'object' || doc === null) return {};
  const { kind, name } = doc as { kind?: unknown; name?: unknown };
  return {
    ...(typeof kind === 'string' ? { kind } : {}),
    ...(typeof name === 'string' ? { name } : {}),
  };
}
