// Object history in the SQLite store beyond the shared suite: the total bound across objects,
// atomicity with the write when the history insert itself fails, the migration of a schema-1
// database, option checks; and the version diffs (fields and unified text) the API and meshctl use.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Service } from '../../src/model';
import {
  createSqliteStore,
  DB_FILE_NAME,
  diffLines,
  documentOf,
  fieldChanges,
  type SqliteStore,
  unifiedDiff,
} from '../../src/registry';

function service(name: string, port = 80): Service {
  return { kind: 'Service', name, spec: { protocol: 'http', port } };
}

describe('SqliteStore history specifics', () => {
  let dir: string;
  let store: SqliteStore | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshplane-history-'));
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** Rows of the history table, as `name revision op`, oldest first. */
  function rows(): string[] {
    const db = new Database(join(dir, DB_FILE_NAME), { readonly: true });
    try {
      return db
        .prepare<[], { name: string; revision: number; op: string }>(
          'SELECT name, revision, op FROM history ORDER BY seq',
        )
        .all()
        .map((r) => `${r.name} ${r.revision} ${r.op}`);
    } finally {
      db.close();
    }
  }

  it('bounds the total: oldest entries go first, deleted objects’ too, never a live object’s current version', async () => {
    store = createSqliteStore({ dataDir: dir, historyLimit: 3, maxHistoryEntries: 5 });
    await store.put(service('old', 1)); // 1
    await store.put(service('old', 2)); // 2
    await store.delete('Service', 'old'); // 3
    await store.put(service('live', 1)); // 4
    await store.put(service('a', 1)); // 5
    assert.equal(rows().length, 5);
    await store.put(service('a', 2)); // 6: one over, the oldest (old's first put) goes
    assert.deepEqual(rows(), ['old 2 put', 'old 3 delete', 'live 4 put', 'a 5 put', 'a 6 put']);
    await store.apply([service('a', 3), service('b', 1)]); // 7: two over
    assert.deepEqual(rows(), ['live 4 put', 'a 5 put', 'a 6 put', 'a 7 put', 'b 7 put']);
    // live's only entry is its current version: kept however old; a's oldest goes instead.
    await store.put(service('b', 2)); // 8
    assert.deepEqual(rows(), ['live 4 put', 'a 6 put', 'a 7 put', 'b 7 put', 'b 8 put']);
    assert.deepEqual(await store.history('Service', 'old'), []);
    assert.equal((await store.history('Service', 'live')).length, 1);
  });

  it('a write whose history entry cannot be stored is not stored either', async () => {
    store = createSqliteStore({ dataDir: dir });
    await store.put(service('a'));
    await store.close();
    const db = new Database(join(dir, DB_FILE_NAME));
    db.exec(
      "CREATE TRIGGER refuse BEFORE INSERT ON history WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'history refused'); END",
    );
    db.close();
    store = createSqliteStore({ dataDir: dir });
    await assert.rejects(store.apply([service('a', 81), service('boom')]), /history refused/);
    await assert.rejects(store.put(service('boom')), /history refused/);
    assert.equal(await store.revision(), 1);
    assert.equal(await store.get('Service', 'boom'), undefined);
    assert.equal((await store.get('Service', 'a'))?.spec.port, 80);
    assert.equal((await store.history('Service', 'a')).length, 1);
    assert.deepEqual(await store.changesSince(1), []);
  });

  it('migrates a schema-1 database: each object’s current version becomes its first entry', async () => {
    store = createSqliteStore({ dataDir: dir });
    await store.put(service('a'));
    const current = await store.put(service('a', 81));
    await store.put(service('gone'));
    await store.delete('Service', 'gone');
    await store.close();
    store = undefined;
    // What a schema-1 meshplane left: no history table, no row count, user_version 1.
    const db = new Database(join(dir, DB_FILE_NAME));
    db.exec("DROP TABLE history; DELETE FROM meta WHERE key = 'historyRows'");
    db.pragma('user_version = 1');
    db.close();

    store = createSqliteStore({ dataDir: dir, maxHistoryEntries: 20 });
    assert.equal(store.settings().schemaVersion, 2);
    assert.equal(await store.revision(), 4);
    const history = await store.history('Service', 'a');
    assert.deepEqual(history, [
      {
        revision: 2,
        resourceVersion: current.object.resourceVersion,
        op: 'put',
        at: current.object.updatedAt,
        object: current.object,
      },
    ]);
    assert.deepEqual(await store.history('Service', 'gone'), []);
    await store.put(service('a', 82));
    assert.deepEqual(
      (await store.history('Service', 'a')).map((e) => e.revision),
      [5, 2],
    );
  });

  it('rejects nonsensical history bounds', () => {
    assert.throws(() => createSqliteStore({ dataDir: dir, historyLimit: 0 }), /historyLimit/);
    assert.throws(() => createSqliteStore({ dataDir: dir, historyLimit: 1.5 }), /historyLimit/);
    assert.throws(
      () => createSqliteStore({ dataDir: dir, historyLimit: 10, maxHistoryEntries: 9 }),
      /maxHistoryEntries/,
    );
  });
});

describe('version diffs', () => {
  it('documentOf keeps kind, name, labels and spec only', () => {
    const stored = {
      kind: 'Service',
      name: 'a',
      labels: {},
      spec: { port: 1 },
      revision: 3,
      resourceVersion: '3',
      createdAt: 'x',
      updatedAt: 'y',
    };
    assert.deepEqual(documentOf(stored), { kind: 'Service', name: 'a', spec: { port: 1 } });
    assert.deepEqual(documentOf({ ...stored, labels: { v: '1' } }).labels, { v: '1' });
  });

  it('fieldChanges lists changed, added and removed leaves with their paths', () => {
    const a = {
      spec: { http: [{ backends: [{ weight: 90 }, { weight: 10 }] }], timeout: '1s' },
      labels: { 'app.io/x': 'a' },
    };
    const b = {
      spec: { http: [{ backends: [{ weight: 0 }, { weight: 100 }, { weight: 5 }] }] },
      extra: true,
    };
    assert.deepEqual(fieldChanges(a, b), [
      { path: 'spec.http[0].backends[0].weight', from: 90, to: 0 },
      { path: 'spec.http[0].backends[1].weight', from: 10, to: 100 },
      { path: 'spec.http[0].backends[2]', to: { weight: 5 } },
      { path: 'spec.timeout', from: '1s' },
      { path: 'labels', from: { 'app.io/x': 'a' } },
      { path: 'extra', to: true },
    ]);
    assert.deepEqual(fieldChanges({ l: { 'app.io/x': 'a' } }, { l: { 'app.io/x': 'b' } }), [
      { path: 'l["app.io/x"]', from: 'a', to: 'b' },
    ]);
    assert.deepEqual(fieldChanges({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), []);
  });

  it('diffLines is a shortest edit script', () => {
    const script = diffLines(['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'd', 'e']);
    assert.deepEqual(
      script.map((l) => `${l.op}${l.text}`),
      [' a', '-b', '+x', ' c', ' d', '+e'],
    );
  });

  it('unifiedDiff writes GNU-style hunks with three lines of context', () => {
    const a = `${Array.from({ length: 12 }, (_, i) => `line ${i + 1}`).join('\n')}\n`;
    const b = a.replace('line 2\n', 'line two\n').replace('line 11\n', '');
    assert.equal(
      unifiedDiff(a, b, { fromLabel: 'v1', toLabel: 'v2' }),
      [
        '--- v1',
        '+++ v2',
        '@@ -1,5 +1,5 @@',
        ' line 1',
        '-line 2',
        '+line two',
        ' line 3',
        ' line 4',
        ' line 5',
        '@@ -8,5 +8,4 @@',
        ' line 8',
        ' line 9',
        ' line 10',
        '-line 11',
        ' line 12',
        '',
      ].join('\n'),
    );
    assert.equal(unifiedDiff(a, a, { fromLabel: 'v1', toLabel: 'v2' }), '');
    assert.equal(
      unifiedDiff('', 'x\ny\n', { fromLabel: '/dev/null', toLabel: 'v1' }),
      '--- /dev/null\n+++ v1\n@@ -0,0 +1,2 @@\n+x\n+y\n',
    );
    assert.equal(
      unifiedDiff('x\n', '', { fromLabel: 'v1', toLabel: 'v2' }),
      '--- v1\n+++ v2\n@@ -1 +0,0 @@\n-x\n',
    );
  });
});
