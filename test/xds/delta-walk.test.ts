// A bounded random walk of the endpoint fast path, as the snapshot builder drives it: one
// shared list of ClusterLoadAssignments replaced build after build for every proxy, Delta
// clients that subscribe to every name (as Envoy does after CDS) and ACK late or at once.
// After each settling, every client must hold exactly what the cache holds, name by name.
import assert from 'node:assert/strict';
import type { EncodedResource } from '../../envoy-protos';
import { AdsServer, ENDPOINT_TYPE, XdsCache } from '../../src/xds';
import { resourcesVersion } from '../../src/xds/version';
import { eventually } from '../support/eventually';
import { seededRandom } from '../support/random';
import { cla } from '../support/resources';
import { DeltaClient } from '../support/xds-client';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('xds: Delta, a random walk of a shared endpoint list', function () {
  this.timeout(180_000);

  it('keeps every client holding what the cache holds, through pipelined ACKs and rebases', async () => {
    const cache = new XdsCache();
    const server = new AdsServer({ cache, gateTimeoutMs: 2_000, nackBackoffMs: { initial: 1, max: 10 } });
    const address = `127.0.0.1:${await server.listen('127.0.0.1:0')}`;
    const rnd = seededRandom(20261127);
    const NAMES = 300;
    const PROXIES = 4;
    const STEPS = 1_200;
    const names = Array.from({ length: NAMES }, (_, i) => `outbound|80||svc-${String(i).padStart(3, '0')}`);
    let port = 1;
    const portOf = new Map<EncodedResource, number>();
    const withPort = (name: string, p: number) => {
      const r = cla(name, [{ address: '10.0.0.1', port: p }]);
      portOf.set(r, p);
      return r;
    };
    const fresh = (name: string) => withPort(name, port++);
    // Every encoding made so far, per name: a build may bring back an earlier one (content memo).
    const made = new Map<string, EncodedResource[]>(names.map((n) => [n, []]));
    let current: EncodedResource[] = names.map((n) => {
      const r = fresh(n);
      made.get(n)!.push(r);
      return r;
    });
    const ids = Array.from({ length: PROXIES }, (_, i) => `walk-${i}`);
    for (const id of ids) cache.set(id, { [ENDPOINT_TYPE]: current });

    const clients = ids.map(() => DeltaClient.connect(address));
    const views = ids.map(() => new Map<string, string>());
    const unacked = ids.map(() => [] as string[]);
    try {
      for (let i = 0; i < PROXIES; i++)
        clients[i].send({
          node: { id: ids[i], cluster: 'walk' },
          type_url: ENDPOINT_TYPE,
          resource_names_subscribe: names,
        });

      /** Takes the responses received so far; ACKs each at once or holds it (in order) for later. */
      const drain = async (i: number, ackAll: boolean) => {
        const c = clients[i];
        while (c.pending > 0) {
          const r = await c.next();
          assert.equal(r.type_url, ENDPOINT_TYPE);
          for (const res of r.resources) views[i].set(res.name, res.version);
          for (const n of r.removed_resources) views[i].delete(n);
          unacked[i].push(r.nonce);
        }
        const release = ackAll ? unacked[i].length : rnd() % 3 === 0 ? 0 : rnd() % (unacked[i].length + 1);
        for (const nonce of unacked[i].splice(0, release))
          c.send({ type_url: ENDPOINT_TYPE, response_nonce: nonce });
      };

      const differences = (i: number): string[] => {
        const want = cache.get(ids[i], ENDPOINT_TYPE);
        const out: string[] = [];
        for (const [n, r] of want) if (views[i].get(n) !== r.version) out.push(n);
        for (const n of views[i].keys()) if (!want.has(n)) out.push(n);
        return out;
      };

      const settle = async (step: number) => {
        await eventually(
          async () => {
            for (let i = 0; i < PROXIES; i++) await drain(i, true);
            for (let i = 0; i < PROXIES; i++) {
              const d = differences(i);
              assert.deepEqual(
                d,
                [],
                `step ${step}: ${ids[i]} does not hold ${d.length} of the cache's CLAs`,
              );
              // The version the server reports as ACKed is the version of what the cache holds.
              const st = server.proxy(ids[i])?.types.get(ENDPOINT_TYPE);
              const want = resourcesVersion(cache.get(ids[i], ENDPOINT_TYPE).values());
              assert.equal(st?.current, want, `step ${step}: ${ids[i]}'s current version`);
              assert.equal(st?.lastAcked?.version, want, `step ${step}: ${ids[i]}'s ACKed version`);
            }
          },
          { timeoutMs: 5_000, intervalMs: 10 },
        );
      };

      await settle(0);
      for (let step = 1; step <= STEPS; step++) {
        // A build: a few CLAs change (new content, the same content again as a new object, or an
        // earlier encoding back); every proxy gets the same new array.
        const next = current.slice();
        const changes = 1 + (rnd() % 12);
        for (let k = 0; k < changes; k++) {
          const j = rnd() % NAMES;
          const kind = rnd() % 10;
          const earlier = made.get(names[j])!;
          let r: EncodedResource;
          if (kind === 0 && earlier.length > 1) r = earlier[rnd() % earlier.length];
          else if (kind === 1) r = withPort(names[j], portOf.get(next[j])!);
          else r = fresh(names[j]);
          if (r !== earlier[earlier.length - 1]) earlier.push(r);
          next[j] = r;
        }
        current = next;
        for (const id of ids) cache.set(id, { [ENDPOINT_TYPE]: current });
        // Let the server push none, some or all of it before the clients read and ACK.
        for (let t = rnd() % 4; t > 0; t--) await tick();
        for (let i = 0; i < PROXIES; i++) await drain(i, false);
        if (step % 40 === 0) await settle(step);
      }
      await settle(STEPS);
      for (const id of ids) assert.equal(server.proxy(id)?.types.get(ENDPOINT_TYPE)?.nacks, 0);
      // Most builds reached a client as one shared transition (the rest: late ACKs, several builds at once).
      assert.ok(server.sharedResponses > STEPS / 4, `${server.sharedResponses} shared responses`);
    } finally {
      for (const c of clients) c.close();
      await server.shutdown(1_000);
    }
  });
});
