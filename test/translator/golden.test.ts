// Golden-file tests of the translator: a mesh (YAML) and a proxy in, Envoy
// resources (YAML, one file per type) and warnings out, one case per feature
// under test/golden/<case>/. UPDATE_GOLDEN=1 rewrites the expected files
// (and removes orphans); review the diff.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { encodeResource } from '../../envoy-protos';
import { validateDocuments } from '../../src/model';
import { buildMeshSnapshot, MeshTranslator, proxyIdentity } from '../../src/translator';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/xds';

const root = path.join(__dirname, '..', '..', '..', 'test', 'golden');
const update = process.env.UPDATE_GOLDEN === '1';
const OUTPUTS = ['listeners', 'clusters', 'routes', 'endpoints', 'warnings'] as const;
const TYPES = {
  listeners: LISTENER_TYPE,
  clusters: CLUSTER_TYPE,
  routes: ROUTE_TYPE,
  endpoints: ENDPOINT_TYPE,
};

/** Every ConfigSource in a resource, wherever it sits. */
function configSources(v: unknown, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (Array.isArray(v)) for (const x of v) configSources(x, out);
  else if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('ads' in o) out.push(o);
    for (const x of Object.values(o)) configSources(x, out);
  }
  return out;
}

describe('translator: golden files', () => {
  const cases = fs
    .readdirSync(root)
    .filter((d) => fs.statSync(path.join(root, d)).isDirectory())
    .sort();
  it('has a case per feature', () => assert.ok(cases.length >= 10, `only ${cases.length} cases`));
  for (const name of cases) {
    it(name, () => {
      const dir = path.join(root, name);
      const docs = parseAllDocuments(fs.readFileSync(path.join(dir, 'mesh.yaml'), 'utf8')).map((d) =>
        d.toJS(),
      );
      const valid = validateDocuments(docs);
      assert.ok(valid.ok, `mesh.yaml is invalid: ${JSON.stringify(!valid.ok && valid.errors)}`);
      const proxy = parse(fs.readFileSync(path.join(dir, 'proxy.yaml'), 'utf8')) as {
        nodeId: string;
        metadata: Record<string, unknown>;
      };
      const t = new MeshTranslator(buildMeshSnapshot(1, valid.value));
      const r = t.translate(proxyIdentity(proxy.nodeId, proxy.metadata));
      const actual: Record<(typeof OUTPUTS)[number], unknown> = { ...r, warnings: t.warnings };
      for (const out of OUTPUTS) {
        const file = path.join(dir, `${out}.yaml`);
        const text = stringify(actual[out], { sortMapEntries: false, lineWidth: 0 });
        if (update) fs.writeFileSync(file, text);
        assert.ok(fs.existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1`);
        assert.deepEqual(
          actual[out],
          parse(fs.readFileSync(file, 'utf8')) ?? [],
          `${name}/${out}.yaml differs`,
        );
      }
      if (update) {
        for (const f of fs.readdirSync(dir)) {
          if (!['mesh.yaml', 'proxy.yaml', ...OUTPUTS.map((o) => `${o}.yaml`)].includes(f))
            fs.rmSync(path.join(dir, f));
        }
      }
      // Every resource encodes (no unknown field) and every ConfigSource says V3.
      for (const [out, typeUrl] of Object.entries(TYPES)) {
        for (const res of r[out as keyof typeof TYPES]) {
          encodeResource(typeUrl, res);
          for (const cs of configSources(res)) assert.equal(cs.resource_api_version, 'V3');
        }
      }
    });
  }
});
