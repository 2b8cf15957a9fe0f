// Durability over real HTTP: a few clients stream batched applies at a real
// `meshplane serve`, which is SIGKILLed mid-stream and restarted on the same
// data dir. Every acknowledged batch must be there, whole; no batch may be
// there in part.
import assert from 'node:assert/strict';
import { stringify as toYaml } from 'yaml';
import { eventually } from '../support/eventually';
import { type Meshplane, showLogOnFailure, startMeshplane } from '../support/meshplane';

const CLIENTS = 4;
/** A bound on each client's loop; the kill comes long before. */
const MAX_BATCHES = 5_000;
/** Batches acknowledged in total before the kill. */
const KILL_AFTER_ACKS = 120;
const UNIQUE_PER_BATCH = 3;
const SHARED = 3;

interface ClientLog {
  readonly client: number;
  readonly acked: string[];
  /** The batch whose request failed (in flight at the kill): stored whole or not at all. */
  inFlight?: string;
  /** Why the loop ended. */
  ended?: string;
  /** A non-200 HTTP answer (a bug, not the kill). */
  unexpected?: string;
}

const batchId = (c: number, i: number) => `c${c}-b${i}`;

/** One batch: new objects, this client's shared objects, and objects every client writes. */
function batchDocs(c: number, i: number): Record<string, unknown>[] {
  const labels = { batch: batchId(c, i), client: `c${c}` };
  const docs: Record<string, unknown>[] = [];
  for (let k = 0; k < UNIQUE_PER_BATCH; k++) {
    docs.push({ kind: 'Service', name: `${batchId(c, i)}-${k}`, labels, spec: { port: 1000 + k } });
  }
  for (let k = 0; k < SHARED; k++) {
    docs.push({ kind: 'Service', name: `c${c}-shared-${k}`, labels, spec: { port: 2000 + (i % 60_000) } });
    docs.push({
      kind: 'DestinationPolicy',
      name: `all-shared-${k}`,
      labels,
      spec: { service: `c${c}-shared-${k}` },
    });
  }
  return docs;
}

describe('api: durability across SIGKILL mid-stream', function () {
  this.timeout(60_000);
  let mp: Meshplane;
  showLogOnFailure(() => mp);

  before(async () => {
    mp = await startMeshplane({ address: '127.0.0.54' });
  });
  after(async () => {
    await mp?.stop();
  });

  it('keeps every acknowledged batch, whole, and no partial batch', async () => {
    const logs: ClientLog[] = Array.from({ length: CLIENTS }, (_, client) => ({ client, acked: [] }));
    const run = async (log: ClientLog) => {
      for (let i = 0; i < MAX_BATCHES; i++) {
        const docs = batchDocs(log.client, i);
        // Alternate YAML streams and JSON arrays.
        const body = i % 2 === 0 ? docs.map((d) => toYaml(d)).join('---\n') : docs;
        let res: Awaited<ReturnType<Meshplane['api']>>;
        try {
          res = await mp.api('POST', '/v1/apply', body, { timeoutMs: 10_000 });
        } catch (err) {
          log.inFlight = batchId(log.client, i);
          log.ended = (err as Error).message;
          return;
        }
        if (res.status !== 200) {
          log.unexpected = `${batchId(log.client, i)}: HTTP ${res.status} ${res.body}`;
          return;
        }
        log.acked.push(batchId(log.client, i));
      }
      log.ended = 'MAX_BATCHES';
    };
    const clients = logs.map(run);
    const acked = () => logs.reduce((n, l) => n + l.acked.length, 0);
    await eventually(() => acked() >= KILL_AFTER_ACKS || logs.some((l) => l.ended || l.unexpected), {
      timeoutMs: 20_000,
      intervalMs: 5,
      message: `${KILL_AFTER_ACKS} acknowledged batches`,
    });
    await mp.kill();
    await Promise.all(clients);

    for (const l of logs) {
      assert.equal(l.unexpected, undefined, `client ${l.client}: ${l.unexpected}`);
      // Every client was still streaming when the server died: its last request failed.
      assert.ok(l.inFlight, `client ${l.client} ended with ${l.ended}, not in the middle of a stream`);
      assert.ok(l.acked.length > 0, `client ${l.client} had acknowledged batches`);
    }

    await mp.restart();
    const services = (await mp.api('GET', '/v1/services')).json;
    const policies = (await mp.api('GET', '/v1/destinationpolicies')).json.items;
    const byName = new Map<string, any>([...services.items, ...policies].map((o: any) => [o.name, o]));

    // Group the stored per-batch objects by batch.
    const stored = new Map<string, string[]>();
    for (const o of services.items) {
      if (/^c\d+-b\d+-\d+$/.test(o.name)) {
        const id = o.labels.batch;
        stored.set(id, [...(stored.get(id) ?? []), o.name]);
      }
    }

    // 1. Every acknowledged batch is there, whole.
    for (const l of logs) {
      for (const id of l.acked) {
        assert.equal(
          stored.get(id)?.length,
          UNIQUE_PER_BATCH,
          `acknowledged batch ${id} is missing or partial`,
        );
      }
    }
    // 2. No batch is there in part, and the only unacknowledged ones are those in flight at the kill.
    const inFlight = new Set(logs.map((l) => l.inFlight));
    const ackedIds = new Set(logs.flatMap((l) => l.acked));
    for (const [id, names] of stored) {
      assert.equal(names.length, UNIQUE_PER_BATCH, `batch ${id} is partial: ${names.join(', ')}`);
      assert.ok(ackedIds.has(id) || inFlight.has(id), `batch ${id} was never sent`);
    }
    // 3. One commit per batch: the revision counts exactly the stored batches.
    assert.equal(services.revision, stored.size);

    // 4. Objects that several batches overwrite carry one batch's labels, all of them the same.
    for (const l of logs) {
      const shared = Array.from({ length: SHARED }, (_, k) => byName.get(`c${l.client}-shared-${k}`));
      const ids = new Set(shared.map((o) => o?.labels.batch));
      assert.equal(ids.size, 1, `client ${l.client}'s shared objects mix batches: ${[...ids].join(', ')}`);
      const [id] = ids;
      const lastAcked = l.acked[l.acked.length - 1];
      assert.ok(id === lastAcked || id === l.inFlight, `client ${l.client}: shared objects at ${id}`);
      assert.equal(shared[0].spec.port, 2000 + Number(String(id).split('-b')[1]));
    }
    const everyone = Array.from({ length: SHARED }, (_, k) => byName.get(`all-shared-${k}`));
    const ids = new Set(everyone.map((o) => o?.labels.batch));
    assert.equal(ids.size, 1, `all-shared objects mix batches: ${[...ids].join(', ')}`);
    assert.ok(stored.has([...ids][0]), 'the batch that wrote the all-shared objects is stored');

    // 5. The restarted server takes writes as before.
    const res = await mp.api('POST', '/v1/apply', {
      kind: 'Service',
      name: 'after-restart',
      spec: { port: 1 },
    });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.revision, stored.size + 1);
  });
});
