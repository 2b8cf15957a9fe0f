// Turns a request body (YAML multi-document or JSON) into a list of raw documents, reporting
// syntax errors with document index and line. Must not depend on the store, the API or zod.
import { parseAllDocuments } from 'yaml';
import type { DocumentProblem, DocumentsResult } from './validate';

export type DocumentFormat = 'json' | 'yaml';

/**
 * The format of a body with this Content-Type, or undefined when unsupported (HTTP 415).
 * A missing Content-Type is read as YAML, which also accepts JSON.
 */
export function formatForContentType(contentType: string | undefined): DocumentFormat | undefined {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === '') return 'yaml';
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (
    type === 'application/yaml' ||
    type === 'application/x-yaml' ||
    type === 'text/yaml' ||
    type === 'text/x-yaml' ||
    type.endsWith('+yaml')
  ) {
    return 'yaml';
  }
  return undefined;
}

const MAX_ALIAS_COUNT = 100; // bounds alias expansion ("billion laughs")

/**
 * Parses a body into raw documents (not yet validated: pass them to validateDocuments).
 * JSON: one document object or an array of them. YAML: documents separated by `---`; empty
 * documents are skipped and a document that is a list contributes each of its items. Document
 * indices count the documents returned, so they match validateDocuments' indices.
 * @example parseDocuments('kind: Service\nname: a\nspec: {port: 80}\n', 'application/yaml')
 */
export function parseDocuments(body: string, contentType: string | undefined): DocumentsResult<unknown[]> {
  const format = formatForContentType(contentType);
  if (format === undefined) {
    return fail({
      document: 0,
      path: '',
      message: `unsupported content type ${JSON.stringify(contentType)}: use application/json or application/yaml`,
    });
  }
  const parsed = format === 'json' ? parseJson(body) : parseYaml(body);
  if (!parsed.ok) return parsed;
  if (parsed.value.length === 0)
    return fail({ document: 0, path: '', message: 'the body holds no documents' });
  return parsed;
}

function fail(problem: DocumentProblem): DocumentsResult<never> {
  return { ok: false, errors: [problem] };
}

function parseJson(body: string): DocumentsResult<unknown[]> {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    const message = (err as Error).message;
    const at = /at position (\d+)/.exec(message);
    const where = at ? lineAndColumn(body, Number(at[1])) : {};
    return fail({ document: 0, path: '', message: `JSON syntax error: ${message}`, ...where });
  }
  if (Array.isArray(value)) return { ok: true, value };
  if (typeof value === 'object' && value !== null) return { ok: true, value: [value] };
  return fail({ document: 0, path: '', message: 'expected a document object or an array of documents' });
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

function parseYaml(body: string): DocumentsResult<unknown[]> {
  const docs = parseAllDocuments(body, { prettyErrors: true, uniqueKeys: true });
  // An empty stream (no documents at all) is not an array of Documents.
  if (!Array.isArray(docs)) return { ok: true, value: [] };
  const value: unknown[] = [];
  const errors: DocumentProblem[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = e.linePos?.[0];
        errors.push({
          document: value.length,
          path: '',
          // prettyErrors appends " at line L, column C:" and a source excerpt: keep the first part.
          message: `YAML syntax error: ${e.message.split(' at line ')[0]!.split('\n')[0]}`,
          ...(pos ? { line: pos.line, column: pos.col } : {}),
        });
      }
      value.push(undefined); // keep later documents' indices stable
      continue;
    }
    let js: unknown;
    try {
      js = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      errors.push({ document: value.length, path: '', message: `YAML error: ${(err as Error).message}` });
      value.push(undefined);
      continue;
    }
    if (js === null || js === undefined) continue; // an empty document, e.g. after a trailing `---`
    if (Array.isArray(js)) value.push(...js);
    else value.push(js);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}
