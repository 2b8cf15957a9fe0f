// Tests of parseDocuments: YAML multi-document and JSON bodies, syntax errors with document
// index and line, content types. Depends only on the model.
import assert from 'node:assert/strict';
import { formatForContentType, parseDocuments, validateDocuments } from '../../src/model';

const YAML_TYPE = 'application/yaml';

describe('parseDocuments', () => {
  it('reads YAML documents separated by ---, skipping empty ones', () => {
    const body =
      '---\nkind: Service\nname: a\nspec: {port: 80}\n---\nkind: Service\nname: b\nspec: {port: 81}\n---\n';
    assert.deepEqual(parseDocuments(body, YAML_TYPE), {
      ok: true,
      value: [
        { kind: 'Service', name: 'a', spec: { port: 80 } },
        { kind: 'Service', name: 'b', spec: { port: 81 } },
      ],
    });
  });

  it('reports a YAML syntax error with its document index and line', () => {
    const body = [
      'kind: Service', // line 1
      'name: a',
      'spec: {port: 80}',
      '---',
      'kind: Service', // line 5
      'name: b',
      'spec:',
      '  port: 80',
      '  port: 81', // line 9: duplicate key
      '---',
      'kind: Service',
      'name: c',
      'spec: {port: [1, }', // line 13
    ].join('\n');
    const r = parseDocuments(body, YAML_TYPE);
    assert.ok(!r.ok);
    assert.deepEqual(
      r.errors.map((e) => [e.document, e.line]),
      [[1, 9], ...r.errors.slice(1).map(() => [2, 13])],
    );
    assert.ok(r.errors.length >= 2);
    assert.equal(r.errors[0]!.message, 'YAML syntax error: Map keys must be unique');
    assert.ok(r.errors.every((e) => e.path === '' && e.message.startsWith('YAML syntax error: ')));
  });

  it('reads YAML 1.2: "on" is a string key and yes/no are strings, not booleans', () => {
    const r = parseDocuments('on: [5xx]\nanswer: yes\n', YAML_TYPE);
    assert.deepEqual(r, { ok: true, value: [{ on: ['5xx'], answer: 'yes' }] });
  });

  it('bounds alias expansion', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i <= 8; i++) {
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    }
    const r = parseDocuments(lines.join('\n'), YAML_TYPE);
    assert.ok(!r.ok);
    assert.match(r.errors[0]!.message, /alias/i);
  });

  it('a YAML document that is a list contributes each item', () => {
    const r = parseDocuments('- {kind: Service, name: a}\n- {kind: Service, name: b}\n', YAML_TYPE);
    assert.deepEqual(r, {
      ok: true,
      value: [
        { kind: 'Service', name: 'a' },
        { kind: 'Service', name: 'b' },
      ],
    });
  });

  const json: { name: string; body: string; value: unknown[] }[] = [
    { name: 'one object', body: '{"kind":"Service","name":"a"}', value: [{ kind: 'Service', name: 'a' }] },
    {
      name: 'an array',
      body: '[{"kind":"Service","name":"a"},{"kind":"Service","name":"b"}]',
      value: [
        { kind: 'Service', name: 'a' },
        { kind: 'Service', name: 'b' },
      ],
    },
  ];
  for (const tc of json) {
    it(`reads JSON: ${tc.name}`, () => {
      assert.deepEqual(parseDocuments(tc.body, 'application/json; charset=utf-8'), {
        ok: true,
        value: tc.value,
      });
    });
  }

  it('reports a JSON syntax error with its line', () => {
    const r = parseDocuments('{\n  "kind": "Service",\n  "name" 1\n}', 'application/json');
    assert.ok(!r.ok);
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.document, 0);
    assert.equal(r.errors[0]!.line, 3);
    assert.match(r.errors[0]!.message, /^JSON syntax error: /);
  });

  it('rejects JSON that is neither an object nor an array', () => {
    const r = parseDocuments('"hello"', 'application/json');
    assert.deepEqual(r, {
      ok: false,
      errors: [{ document: 0, path: '', message: 'expected a document object or an array of documents' }],
    });
  });

  it('rejects a body without documents', () => {
    for (const [body, type] of [
      ['', YAML_TYPE],
      ['# only a comment\n---\n', YAML_TYPE],
      ['[]', 'application/json'],
    ] as const) {
      assert.deepEqual(parseDocuments(body, type), {
        ok: false,
        errors: [{ document: 0, path: '', message: 'the body holds no documents' }],
      });
    }
  });

  it('rejects an unsupported content type', () => {
    const r = parseDocuments('<xml/>', 'application/xml');
    assert.ok(!r.ok);
    assert.match(r.errors[0]!.message, /unsupported content type "application\/xml"/);
  });

  it('document indices match validateDocuments for the same body', () => {
    const body =
      'kind: Service\nname: a\nspec: {port: 80}\n---\n---\nkind: Service\nname: b\nspec: {port: 0}\n';
    const parsed = parseDocuments(body, YAML_TYPE);
    assert.ok(parsed.ok);
    const valid = validateDocuments(parsed.value);
    assert.ok(!valid.ok);
    assert.deepEqual(
      valid.errors.map((e) => [e.document, e.name, e.path]),
      [[1, 'b', 'spec.port']],
    );
  });
});

describe('formatForContentType', () => {
  const cases: [string | undefined, string | undefined][] = [
    ['application/json', 'json'],
    ['Application/JSON; charset=utf-8', 'json'],
    ['application/merge-patch+json', 'json'],
    ['application/yaml', 'yaml'],
    ['application/x-yaml', 'yaml'],
    ['text/yaml', 'yaml'],
    ['text/x-yaml', 'yaml'],
    [undefined, 'yaml'],
    ['', 'yaml'],
    ['text/plain', undefined],
    ['multipart/form-data; boundary=x', undefined],
  ];
  for (const [type, format] of cases) {
    it(`${JSON.stringify(type)} -> ${format}`, () => assert.equal(formatForContentType(type), format));
  }
});
