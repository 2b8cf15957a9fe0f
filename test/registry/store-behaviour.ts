// The behaviour every Store implementation must show, as one suite that each implementation's
// test file runs with its own harness. Depends only on the Store interface and the model.
import assert from 'node:assert/strict';
import type { MeshObject, Service } from '../../src/model';
import {
  ABSENT,
  type ChangeEvent,
  CompactedError,
  ConflictError,
  NotFoundError,
  type Store,
  type StoredObject,
  ValidationError,
} from '../../src/registry';
import { exampleObjects } from '../model/examples';

export interface StoreHarnessOpenOptions {
  /** How many change-log entries the store keeps. */
  maxChanges?: number;
  /** How many versions of each object its history keeps. */
  historyLimit?: number;
}

/** One backing storage (a directory, a database schema) that stores can be opened on, again and again. */
export interface StoreHarness {
  /** Opens a store on this harness's storage: the same data every time. */
  open(options?: StoreHarnessOpenOptions): Promise<Store>;
  /** Removes the storage; every store opened on it has been closed. */
  cleanup(): Promise<void>;
}

export type StoreFactory = () => Promise<StoreHarness>;

const WAIT_MS = 5000;

/** Resolves with the first `count` events the watch delivers; fails after WAIT_MS without them. */
function collect(
  store: Store,
  fromRevision: number,
  count: number,
): { events: ChangeEvent[]; done: Promise<ChangeEvent[]>; stop: () => void } {
  const events: ChangeEvent[] = [];
  let stop: () => void = () => {};
  const done = new Promise<ChangeEvent[]>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`watch delivered ${events.length} of ${count} events: ${summary(events)}`)),
      WAIT_MS,
    );
    stop = store.watch(
      fromRevision,
      (event) => {
        events.push(event);
        if (events.length === count) {
          clearTimeout(timer);
          resolve(events);
        }
      },
      { onError: reject },
    );
  });
  return { events, done, stop };
}

/** `revision op kind/name` per event, for readable assertions. */
function summary(events: readonly ChangeEvent[]): string[] {
  return events.map((e) => `${e.revision} ${e.op} ${e.kind}/${e.name}`);
}

function service(name: string, port = 80, labels?: Record<string, string>): Service {
  return { kind: 'Service', name, ...(labels ? { labels } : {}), spec: { protocol: 'http', port } };
}

/** The port of a stored Service (fails the test for any other kind). */
function portOf(o: StoredObject): number {
  assert.equal(o.kind, 'Service');
  return (o as StoredObject<Service>).spec.port;
}

/** The document part of a stored object (what was written). */
function documentOf(o: StoredObject): MeshObject {
  const { revision: _r, resourceVersion: _v, createdAt: _c, updatedAt: _u, ...doc } = o;
  return doc as MeshObject;
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/**
 * Registers the shared Store suite.
 * @example storeBehaviour('SqliteStore', async () => sqliteHarness());
 */
export function storeBehaviour(name: string, factory: StoreFactory): void {
  describe(`Store behaviour: ${name}`, () => {
    let harness: StoreHarness;
    let store: Store;
    const open: Store[] = [];

    async function reopen(options?: StoreHarnessOpenOptions): Promise<Store> {
      await store.close();
      store = await harness.open(options);
      open.push(store);
      return store;
    }

    beforeEach(async () => {
      harness = await factory();
      store = await harness.open();
      open.push(store);
    });

    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
      await harness.cleanup();
    });

    describe('objects', () => {
      for (const obj of exampleObjects()) {
        it(`round-trips a ${obj.kind}`, async () => {
          const { revision, action, object } = await store.put(obj);
          assert.equal(action, 'created');
          assert.equal(revision, 1);
          const got = await store.get(obj.kind, obj.name);
          assert.ok(got);
          assert.deepEqual(documentOf(got), obj);
          assert.deepEqual(got, object);
          assert.equal(got.revision, 1);
          assert.equal(typeof got.resourceVersion, 'string');
          assert.match(got.createdAt, ISO_TIME);
          assert.equal(got.updatedAt, got.createdAt);
          assert.deepEqual(await store.list(obj.kind), [got]);
        });
      }

      it('get returns undefined and list returns [] when nothing is stored', async () => {
        assert.equal(await store.get('Service', 'nope'), undefined);
        assert.deepEqual(await store.list('Service'), []);
        assert.equal(await store.revision(), 0);
      });

      it('keeps kinds apart: the same name in two kinds is two objects', async () => {
        await store.apply([
          service('reviews'),
          { kind: 'DestinationPolicy', name: 'reviews', spec: { service: 'reviews' } },
        ]);
        assert.deepEqual(
          (await store.list('Service')).map((o) => o.kind),
          ['Service'],
        );
        assert.equal((await store.get('DestinationPolicy', 'reviews'))?.kind, 'DestinationPolicy');
      });

      it('lists by name, filtered by a label selector where every label must match', async () => {
        await store.apply([
          service('c', 80, { app: 'shop', tier: 'web' }),
          service('a', 80, { app: 'shop', tier: 'db' }),
          service('b', 80, { app: 'blog' }),
          service('d'),
          { kind: 'DestinationPolicy', name: 'e', labels: { app: 'shop' }, spec: { service: 'a' } },
        ]);
        const names = async (labels?: Record<string, string>) =>
          (await store.list('Service', labels ? { labels } : {})).map((o) => o.name);
        assert.deepEqual(await names(), ['a', 'b', 'c', 'd']);
        assert.deepEqual(await names({}), ['a', 'b', 'c', 'd']);
        assert.deepEqual(await names({ app: 'shop' }), ['a', 'c']);
        assert.deepEqual(await names({ app: 'shop', tier: 'web' }), ['c']);
        assert.deepEqual(await names({ app: 'shop', tier: 'cache' }), []);
        assert.deepEqual(await names({ team: 'x' }), []);
      });

      it('stores empty labels as no labels', async () => {
        await store.put({ ...service('a'), labels: {} });
        const got = await store.get('Service', 'a');
        assert.ok(got);
        assert.equal('labels' in got, false);
        assert.equal((await store.put(service('a'))).action, 'unchanged');
      });

      it('snapshot returns every object at one revision, kinds in model order', async () => {
        await store.apply([
          { kind: 'DestinationPolicy', name: 'a', spec: { service: 'b' } },
          service('b'),
          service('a'),
        ]);
        await store.put(service('c'));
        const snap = await store.snapshot();
        assert.equal(snap.revision, 2);
        assert.deepEqual(
          snap.objects.map((o) => `${o.kind}/${o.name}`),
          ['Service/a', 'Service/b', 'Service/c', 'DestinationPolicy/a'],
        );
      });
    });

    describe('apply', () => {
      it('creates, updates and leaves unchanged, bumping the revision once per apply', async () => {
        const first = await store.apply([service('a'), service('b'), service('c')]);
        assert.equal(first.revision, 1);
        assert.deepEqual(
          first.changes.map((c) => [c.kind, c.name, c.action]),
          [
            ['Service', 'a', 'created'],
            ['Service', 'b', 'created'],
            ['Service', 'c', 'created'],
          ],
        );
        const v1 = first.changes[0]!.resourceVersion;
        assert.equal((await store.get('Service', 'a'))?.resourceVersion, v1);

        const second = await store.apply([service('a'), service('b', 81), service('c', 80, { x: 'y' })]);
        assert.equal(second.revision, 2);
        assert.deepEqual(
          second.changes.map((c) => c.action),
          ['unchanged', 'updated', 'updated'],
        );
        assert.equal(second.changes[0]!.resourceVersion, v1);
        assert.notEqual(second.changes[1]!.resourceVersion, v1);
        const b = await store.get('Service', 'b');
        assert.equal(b?.spec.port, 81);
        assert.equal(b?.revision, 2);
        assert.equal((await store.get('Service', 'a'))?.revision, 1);
        assert.equal(await store.revision(), 2);
      });

      it('an apply that changes nothing keeps the revision and logs nothing', async () => {
        await store.apply([service('a'), service('b')]);
        const again = await store.apply([service('b'), service('a')]);
        assert.equal(again.revision, 1);
        assert.deepEqual(
          again.changes.map((c) => c.action),
          ['unchanged', 'unchanged'],
        );
        assert.equal(await store.revision(), 1);
        assert.equal((await store.changesSince(1)).length, 0);
      });

      it('compares specs regardless of key order', async () => {
        await store.put({
          kind: 'Service',
          name: 'a',
          labels: { x: '1', y: '2' },
          spec: { protocol: 'http', port: 80 },
        });
        const r = await store.apply([
          {
            kind: 'Service',
            name: 'a',
            labels: { y: '2', x: '1' },
            spec: { port: 80, protocol: 'http' },
          } as Service,
        ]);
        assert.equal(r.changes[0]!.action, 'unchanged');
        assert.equal(r.revision, 1);
      });

      it('dryRun reports what would change and stores nothing', async () => {
        await store.apply([service('a'), service('b')]);
        const dry = await store.apply([service('a'), service('b', 81), service('c')], { dryRun: true });
        assert.equal(dry.revision, 2);
        assert.deepEqual(
          dry.changes.map((c) => [c.name, c.action]),
          [
            ['a', 'unchanged'],
            ['b', 'updated'],
            ['c', 'created'],
          ],
        );
        assert.equal(await store.revision(), 1);
        assert.equal(await store.get('Service', 'c'), undefined);
        assert.equal((await store.get('Service', 'b'))?.spec.port, 80);
        assert.deepEqual(await store.changesSince(1), []);
      });

      it('is all or nothing: a failure in the middle of a batch stores nothing', async () => {
        await store.apply([service('existing')]);
        // The third object's spec is not an object: the store's storage refuses it (a constraint
        // failure) after the first two were written inside the same transaction.
        const bad = { kind: 'Service', name: 'bad', spec: 'not an object' } as unknown as Service;
        await assert.rejects(store.apply([service('new'), service('existing', 99), bad, service('after')]));
        assert.equal(await store.revision(), 1);
        assert.equal(await store.get('Service', 'new'), undefined);
        assert.equal(await store.get('Service', 'after'), undefined);
        assert.equal(await store.get('Service', 'bad'), undefined);
        assert.equal((await store.get('Service', 'existing'))?.spec.port, 80);
        assert.deepEqual(await store.changesSince(1), []);
        // and the store still works afterwards
        assert.equal((await store.apply([service('new')])).revision, 2);
      });

      const invalid: { name: string; objects: unknown[]; paths: string[] }[] = [
        { name: 'without a kind', objects: [service('a'), { name: 'b', spec: {} }], paths: ['[1].kind'] },
        {
          name: 'with an unknown kind',
          objects: [{ kind: 'Pod', name: 'b', spec: {} }],
          paths: ['[0].kind'],
        },
        { name: 'without a name', objects: [{ kind: 'Service', spec: {} }], paths: ['[0].name'] },
        {
          name: 'with an empty name',
          objects: [{ kind: 'Service', name: '', spec: {} }],
          paths: ['[0].name'],
        },
        {
          name: 'twice in one batch',
          objects: [service('a'), service('b'), service('a', 81)],
          paths: ['[2].name'],
        },
      ];
      for (const tc of invalid) {
        it(`refuses objects ${tc.name} with a ValidationError and stores nothing`, async () => {
          const err = await store.apply(tc.objects as MeshObject[]).then(
            () => assert.fail('apply should have failed'),
            (e: unknown) => e,
          );
          assert.ok(err instanceof ValidationError, String(err));
          assert.equal(err.code, 'INVALID');
          assert.deepEqual(
            err.details.map((d) => d.path),
            tc.paths,
          );
          assert.equal(await store.revision(), 0);
          assert.deepEqual(await store.list('Service'), []);
        });
      }

      it('put refuses an object without a name', async () => {
        await assert.rejects(
          store.put({ kind: 'Service', spec: { port: 1 } } as unknown as Service),
          ValidationError,
        );
      });
    });

    describe('put and ifMatch', () => {
      it('replaces when ifMatch is the current resourceVersion, and changes the resourceVersion', async () => {
        const created = await store.put(service('a'));
        const updated = await store.put(service('a', 81), { ifMatch: created.object.resourceVersion });
        assert.equal(updated.action, 'updated');
        assert.equal(updated.revision, 2);
        assert.notEqual(updated.object.resourceVersion, created.object.resourceVersion);
        assert.equal(updated.object.createdAt, created.object.createdAt);
        assert.deepEqual(await store.get('Service', 'a'), updated.object);
      });

      it('a stale ifMatch is a ConflictError carrying the object and both versions; nothing changes', async () => {
        const v1 = (await store.put(service('a'))).object.resourceVersion;
        const v2 = (await store.put(service('a', 81), { ifMatch: v1 })).object.resourceVersion;
        const err = await store.put(service('a', 82), { ifMatch: v1 }).then(
          () => assert.fail('put should have failed'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof ConflictError, String(err));
        assert.equal(err.code, 'CONFLICT');
        assert.deepEqual(err.object, { kind: 'Service', name: 'a' });
        assert.equal(err.expected, v1);
        assert.equal(err.actual, v2);
        assert.equal((await store.get('Service', 'a'))?.spec.port, 81);
        assert.equal(await store.revision(), 2);
      });

      it('ifMatch for an object that does not exist is a NotFoundError', async () => {
        await assert.rejects(store.put(service('a'), { ifMatch: '1' }), (e: unknown) => {
          assert.ok(e instanceof NotFoundError);
          assert.deepEqual(e.object, { kind: 'Service', name: 'a' });
          return true;
        });
        assert.equal(await store.get('Service', 'a'), undefined);
      });

      it('ifMatch "*" means "only if it exists"', async () => {
        await assert.rejects(store.put(service('a'), { ifMatch: '*' }), NotFoundError);
        await store.put(service('a'));
        assert.equal((await store.put(service('a', 81), { ifMatch: '*' })).action, 'updated');
      });

      it('an identical put is unchanged and keeps revision and resourceVersion', async () => {
        const first = await store.put(service('a'));
        const again = await store.put(service('a'), { ifMatch: first.object.resourceVersion });
        assert.equal(again.action, 'unchanged');
        assert.equal(again.revision, 1);
        assert.deepEqual(again.object, first.object);
      });

      it('a stale ifMatch fails even when the content would be unchanged', async () => {
        const v1 = (await store.put(service('a'))).object.resourceVersion;
        await store.put(service('a', 81));
        await assert.rejects(store.put(service('a', 81), { ifMatch: v1 }), ConflictError);
      });
    });

    describe('delete', () => {
      it('deletes, returns the object as it was, and bumps the revision', async () => {
        const { object } = await store.put(service('a'));
        const r = await store.delete('Service', 'a');
        assert.equal(r.revision, 2);
        assert.deepEqual(r.object, object);
        assert.equal(await store.get('Service', 'a'), undefined);
        assert.equal(await store.revision(), 2);
      });

      it('is a NotFoundError when absent, without a revision bump', async () => {
        await store.put(service('b'));
        await assert.rejects(store.delete('Service', 'a'), (e: unknown) => {
          assert.ok(e instanceof NotFoundError);
          assert.equal(e.code, 'NOT_FOUND');
          assert.deepEqual(e.object, { kind: 'Service', name: 'a' });
          return true;
        });
        assert.equal(await store.revision(), 1);
      });

      it('honours ifMatch', async () => {
        const v1 = (await store.put(service('a'))).object.resourceVersion;
        const v2 = (await store.put(service('a', 81))).object.resourceVersion;
        await assert.rejects(store.delete('Service', 'a', { ifMatch: v1 }), ConflictError);
        assert.ok(await store.get('Service', 'a'));
        await store.delete('Service', 'a', { ifMatch: v2 });
        assert.equal(await store.get('Service', 'a'), undefined);
      });

      it('a re-created object gets a new resourceVersion, so an old ifMatch no longer applies', async () => {
        const v1 = (await store.put(service('a'))).object.resourceVersion;
        await store.delete('Service', 'a');
        const again = await store.put(service('a'));
        assert.equal(again.action, 'created');
        assert.notEqual(again.object.resourceVersion, v1);
        await assert.rejects(store.put(service('a', 81), { ifMatch: v1 }), ConflictError);
      });
    });

    describe('revision', () => {
      it('increments once per successful write call and never on a failed one', async () => {
        const revisions: number[] = [];
        const note = async () => revisions.push(await store.revision());
        await note(); // 0
        await store.apply([service('a'), service('b')]);
        await note(); // 1
        await store.put(service('c'));
        await note(); // 2
        await store.delete('Service', 'c');
        await note(); // 3
        await assert.rejects(store.delete('Service', 'c'));
        await assert.rejects(store.put(service('a', 81), { ifMatch: 'stale' }));
        await store.apply([service('a')]);
        await note(); // 3: unchanged
        assert.deepEqual(revisions, [0, 1, 2, 3, 3]);
      });
    });

    describe('change feed', () => {
      it('changesSince returns the changes after a revision, oldest first, with their objects', async () => {
        await store.apply([service('a'), service('b')]);
        await store.put(service('a', 81));
        await store.delete('Service', 'b');
        const all = await store.changesSince(0);
        assert.deepEqual(summary(all), [
          '1 put Service/a',
          '1 put Service/b',
          '2 put Service/a',
          '3 delete Service/b',
        ]);
        assert.equal(portOf(all[2]!.object), 81);
        assert.equal(all[2]!.object.resourceVersion, (await store.get('Service', 'a'))?.resourceVersion);
        // a delete carries the object as it was just before
        assert.equal(all[3]!.object.name, 'b');
        assert.equal(all[3]!.object.revision, 1);
        assert.deepEqual(summary(await store.changesSince(2)), ['3 delete Service/b']);
        assert.deepEqual(await store.changesSince(3), []);
      });

      it('changesSince returns whole revisions even past the limit', async () => {
        await store.apply([service('a'), service('b'), service('c')]);
        await store.put(service('d'));
        await store.put(service('e'));
        assert.deepEqual(summary(await store.changesSince(0, 1)), [
          '1 put Service/a',
          '1 put Service/b',
          '1 put Service/c',
        ]);
        assert.deepEqual(summary(await store.changesSince(1, 1)), ['2 put Service/d']);
        assert.deepEqual(summary(await store.changesSince(0, 4)), [
          '1 put Service/a',
          '1 put Service/b',
          '1 put Service/c',
          '2 put Service/d',
        ]);
      });

      it('watch delivers new changes in revision order', async () => {
        await store.put(service('before'));
        const w = collect(store, await store.revision(), 4);
        await store.apply([service('a'), service('b')]);
        await store.put(service('a', 81));
        await store.delete('Service', 'b');
        const events = await w.done;
        w.stop();
        assert.deepEqual(summary(events), [
          '2 put Service/a',
          '2 put Service/b',
          '3 put Service/a',
          '4 delete Service/b',
        ]);
        assert.equal(portOf(events[2]!.object), 81);
      });

      it('watch catches up from an older revision, then follows live changes', async () => {
        await store.put(service('a'));
        await store.put(service('b'));
        await store.put(service('c'));
        const w = collect(store, 1, 3);
        await store.put(service('d'));
        const events = await w.done;
        w.stop();
        assert.deepEqual(summary(events), ['2 put Service/b', '3 put Service/c', '4 put Service/d']);
      });

      it('an unchanged apply delivers nothing', async () => {
        await store.put(service('a'));
        const w = collect(store, 1, 1);
        await store.apply([service('a')]); // unchanged: no event
        await store.put(service('b'));
        const events = await w.done;
        w.stop();
        // Had the unchanged apply produced an event, it would have come first.
        assert.deepEqual(summary(events), ['2 put Service/b']);
      });

      it('calls listeners after the write, never inside it', async () => {
        let writing = false;
        let calledWhileWriting: boolean | undefined;
        const seen = new Promise<void>((resolve, reject) => {
          store.watch(
            0,
            () => {
              calledWhileWriting = writing;
              resolve();
            },
            { onError: reject },
          );
        });
        writing = true;
        const pending = store.put(service('a'));
        writing = false;
        await pending;
        await seen;
        assert.equal(calledWhileWriting, false);
      });

      it('a listener may write to the store; its own change reaches it in order', async () => {
        const events: ChangeEvent[] = [];
        const done = new Promise<void>((resolve, reject) => {
          store.watch(
            0,
            (e) => {
              events.push(e);
              if (e.name === 'a') store.put(service('b')).catch(reject);
              if (e.name === 'b') resolve();
            },
            { onError: reject },
          );
        });
        await store.put(service('a'));
        await done;
        assert.deepEqual(summary(events), ['1 put Service/a', '2 put Service/b']);
      });

      it('each watcher gets its own copy of the objects', async () => {
        const a = collect(store, 0, 1);
        const b = collect(store, 0, 1);
        const { object } = await store.put(service('a'));
        const [ea] = await a.done;
        const [eb] = await b.done;
        a.stop();
        b.stop();
        (ea!.object.spec as { port: number }).port = 1;
        (object.spec as { port: number }).port = 2;
        assert.equal(portOf(eb!.object), 80);
        assert.equal((await store.get('Service', 'a'))?.spec.port, 80);
      });

      it('unsubscribing stops delivery', async () => {
        const stopped: ChangeEvent[] = [];
        let stop: () => void = () => {};
        const first = new Promise<void>((resolve) => {
          stop = store.watch(0, (e) => {
            stopped.push(e);
            resolve();
          });
        });
        await store.put(service('a'));
        await first;
        stop();
        await store.put(service('b'));
        await store.put(service('c'));
        // A watch started after those writes has caught up with them: by then the stopped
        // watcher would have been handed them too.
        const barrier = collect(store, 2, 1);
        assert.deepEqual(summary(await barrier.done), ['3 put Service/c']);
        barrier.stop();
        assert.deepEqual(summary(stopped), ['1 put Service/a']);
      });
    });

    describe('bounded change log', () => {
      it('drops the oldest revisions and says so: CompactedError from changesSince and watch', async () => {
        await reopen({ maxChanges: 3 });
        for (const n of ['a', 'b', 'c', 'd', 'e']) await store.put(service(n));
        const tail = await store.changesSince(2);
        assert.deepEqual(summary(tail), ['3 put Service/c', '4 put Service/d', '5 put Service/e']);
        const err = await store.changesSince(0).then(
          () => assert.fail('changesSince(0) should have failed'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof CompactedError, String(err));
        assert.equal(err.code, 'COMPACTED');
        assert.equal(err.requested, 0);
        assert.equal(err.compactedRevision, 2);

        const watchErr = await new Promise<Error>((resolve) => {
          store.watch(1, () => assert.fail('no event expected'), { onError: resolve });
        });
        assert.ok(watchErr instanceof CompactedError);
        // objects themselves are all still there
        assert.equal((await store.list('Service')).length, 5);
      });

      it('never drops the newest revision, however many changes it has', async () => {
        await reopen({ maxChanges: 2 });
        await store.apply([service('a'), service('b'), service('c'), service('d')]);
        assert.deepEqual(summary(await store.changesSince(0)), [
          '1 put Service/a',
          '1 put Service/b',
          '1 put Service/c',
          '1 put Service/d',
        ]);
      });
    });

    describe('history', () => {
      /** `revision op port` per entry, for readable assertions. */
      const versions = async (name: string) =>
        (await store.history('Service', name)).map(
          (e) => `${e.revision} ${e.op} ${e.object ? portOf(e.object) : '-'}`,
        );

      it('records every write that changes an object, newest first, with the object as written', async () => {
        const v1 = await store.put(service('a'));
        const v2 = await store.put(service('a', 81, { team: 'x' }));
        assert.equal((await store.put(service('a', 81, { team: 'x' }))).action, 'unchanged');
        const batch = await store.apply([service('a', 82), service('b')]);
        assert.equal(batch.revision, 3);
        const history = await store.history('Service', 'a');
        assert.deepEqual(
          history.map((e) => [e.revision, e.op]),
          [
            [3, 'put'],
            [2, 'put'],
            [1, 'put'],
          ],
        );
        assert.deepEqual(history[2]!.object, v1.object);
        assert.deepEqual(history[1]!.object, v2.object);
        assert.deepEqual(history[0]!.object, await store.get('Service', 'a'));
        assert.deepEqual(
          history.map((e) => e.resourceVersion),
          [batch.changes[0]!.resourceVersion, v2.object.resourceVersion, v1.object.resourceVersion],
        );
        for (const e of history) assert.match(e.at, ISO_TIME);
        assert.equal(history[0]!.at, history[0]!.object!.updatedAt);
        // Every object of an apply batch gets its entry, at the batch's revision.
        assert.deepEqual(await versions('b'), ['3 put 80']);
      });

      it('records nothing for a dry run, an unchanged apply or a failed write', async () => {
        await store.put(service('a'));
        await store.apply([service('a', 99), service('c')], { dryRun: true });
        await store.apply([service('a')]);
        await assert.rejects(store.put(service('a', 98), { ifMatch: 'stale' }), ConflictError);
        assert.deepEqual(await versions('a'), ['1 put 80']);
        assert.deepEqual(await store.history('Service', 'c'), []);
      });

      it('is written atomically with the write: a batch that fails records nothing', async () => {
        await store.apply([service('existing')]);
        const bad = { kind: 'Service', name: 'bad', spec: 'not an object' } as unknown as Service;
        await assert.rejects(store.apply([service('new'), service('existing', 99), bad]));
        assert.deepEqual(await store.history('Service', 'new'), []);
        assert.deepEqual(await versions('existing'), ['1 put 80']);
      });

      it('keeps a deleted object’s history, the delete newest, with the object as it was', async () => {
        await store.put(service('a'));
        const before = (await store.put(service('a', 81))).object;
        await store.delete('Service', 'a');
        const history = await store.history('Service', 'a');
        assert.deepEqual(
          history.map((e) => `${e.revision} ${e.op}`),
          ['3 delete', '2 put', '1 put'],
        );
        assert.deepEqual(history[0]!.object, before);
        assert.match(history[0]!.at, ISO_TIME);
        // Every entry has its own resourceVersion, and the delete's is no live object's.
        assert.equal(new Set(history.map((e) => e.resourceVersion)).size, 3);
        const again = await store.put(service('a', 82));
        assert.equal(again.action, 'created');
        assert.notEqual(again.object.resourceVersion, history[0]!.resourceVersion);
        assert.deepEqual(await versions('a'), ['4 put 82', '3 delete 81', '2 put 81', '1 put 80']);
      });

      it('keeps the newest historyLimit versions per object, the current one always', async () => {
        await reopen({ historyLimit: 3 });
        for (let port = 80; port <= 85; port++) await store.put(service('a', port));
        await store.put(service('b'));
        assert.deepEqual(await versions('a'), ['6 put 85', '5 put 84', '4 put 83']);
        assert.deepEqual(await versions('b'), ['7 put 80']);
        await store.delete('Service', 'a');
        assert.deepEqual(await versions('a'), ['8 delete 85', '6 put 85', '5 put 84']);
        await reopen({ historyLimit: 1 });
        await store.put(service('b', 81));
        assert.deepEqual(await versions('b'), ['9 put 81']);
      });

      it('limit returns the newest entries', async () => {
        for (let port = 80; port <= 84; port++) await store.put(service('a', port));
        const two = await store.history('Service', 'a', { limit: 2 });
        assert.deepEqual(
          two.map((e) => e.revision),
          [5, 4],
        );
        await assert.rejects(store.history('Service', 'a', { limit: 0 }), RangeError);
      });

      it('is not cut by change-log compaction', async () => {
        await reopen({ maxChanges: 2 });
        for (let port = 80; port <= 84; port++) await store.put(service('a', port));
        await assert.rejects(store.changesSince(0), CompactedError);
        assert.equal((await store.history('Service', 'a')).length, 5);
      });

      it('survives reopening', async () => {
        await store.apply([service('a'), service('b')]);
        await store.put(service('a', 81));
        await store.delete('Service', 'b');
        const a = await store.history('Service', 'a');
        const b = await store.history('Service', 'b');
        await reopen();
        assert.deepEqual(await store.history('Service', 'a'), a);
        assert.deepEqual(await store.history('Service', 'b'), b);
        assert.deepEqual(await versions('b'), ['3 delete 80', '1 put 80']);
      });

      it('is empty for an object never written, and kinds are apart', async () => {
        await store.put(service('a'));
        assert.deepEqual(await store.history('Service', 'nope'), []);
        assert.deepEqual(await store.history('TrafficRoute', 'a'), []);
      });

      it('ifNoneMatch "*" creates only an absent object', async () => {
        const created = await store.put(service('a'), { ifNoneMatch: '*' });
        assert.equal(created.action, 'created');
        const err = await store.put(service('a', 81), { ifNoneMatch: '*' }).then(
          () => assert.fail('put should have failed'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof ConflictError, String(err));
        assert.equal(err.expected, ABSENT);
        assert.equal(err.actual, created.object.resourceVersion);
        assert.equal((await store.get('Service', 'a'))?.spec.port, 80);
        assert.equal(await store.revision(), 1);
      });
    });

    describe('meta key-value space', () => {
      it('gets, sets and overwrites values', async () => {
        assert.equal(await store.getMeta('ca'), undefined);
        await store.setMeta('ca', 'PEM 1');
        await store.setMeta('other', 'x');
        await store.setMeta('ca', 'PEM 2');
        assert.equal(await store.getMeta('ca'), 'PEM 2');
        assert.equal(await store.getMeta('other'), 'x');
        assert.equal(await store.revision(), 0);
      });
    });

    describe('durability', () => {
      it('reopening keeps objects, revision, change log and meta values', async () => {
        const examples = exampleObjects();
        await store.apply(examples);
        await store.put(service('extra'));
        await store.delete('Service', 'extra');
        await store.setMeta('ca', 'PEM');
        const before = await store.snapshot();

        const again = await reopen();
        assert.deepEqual(await again.snapshot(), before);
        assert.equal(await again.revision(), 3);
        assert.equal(await again.getMeta('ca'), 'PEM');
        assert.deepEqual(summary(await again.changesSince(1)), [
          '2 put Service/extra',
          '3 delete Service/extra',
        ]);
        for (const obj of examples) assert.deepEqual(documentOf((await again.get(obj.kind, obj.name))!), obj);
        // revisions continue from where they were
        assert.equal((await again.put(service('next'))).revision, 4);
      });

      it('a closed store refuses calls', async () => {
        await store.close();
        await assert.rejects(store.get('Service', 'a'));
        await assert.rejects(store.put(service('a')));
        assert.throws(() => store.watch(0, () => {}));
      });
    });
  });
}
