// Runs the shared Store suite against the SQLite store, plus what is specific to SQLite:
// the file, its pragmas, schema versions and surviving a SIGKILL. Uses temp dirs only.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createSqliteStore, DB_FILE_NAME, type SqliteStore } from '../../src/registry';
import { type StoreHarness, storeBehaviour } from './store-behaviour';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'meshplane-store-'));
}

async function sqliteHarness(): Promise<StoreHarness> {
  const dataDir = tempDir();
  return {
    async open(options = {}) {
      return createSqliteStore({ dataDir, ...options });
    },
    async cleanup() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

storeBehaviour('SqliteStore', sqliteHarness);

describe('SqliteStore specifics', () => {
  let dir: string;
  let store: SqliteStore | undefined;

  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the data dir and <dataDir>/meshplane.db, in WAL mode with synchronous=FULL', async () => {
    const dataDir = join(dir, 'nested', 'data');
    store = createSqliteStore({ dataDir });
    assert.equal(store.path, join(dataDir, DB_FILE_NAME));
    assert.ok(existsSync(store.path));
    assert.equal(statSync(store.path).mode & 0o777, 0o600);
    assert.deepEqual(store.settings(), { journalMode: 'wal', synchronous: 'full', schemaVersion: 2 });
  });

  it('refuses a database written by a newer schema version', async () => {
    store = createSqliteStore({ dataDir: dir });
    await store.close();
    store = undefined;
    const db = new Database(join(dir, DB_FILE_NAME));
    db.pragma('user_version = 99');
    db.close();
    assert.throws(() => createSqliteStore({ dataDir: dir }), /schema version 99/);
  });

  it('rejects a nonsensical change-log size', () => {
    assert.throws(() => createSqliteStore({ dataDir: dir, maxChanges: 0 }), RangeError);
  });

  it('an acknowledged write survives SIGKILL of the writing process', async function () {
    this.timeout(30_000);
    const registry = join(__dirname, '..', '..', 'src', 'registry');
    const script = `
      const { createSqliteStore } = require(${JSON.stringify(registry)});
      const store = createSqliteStore({ dataDir: ${JSON.stringify(dir)} });
      store.apply([{ kind: 'Service', name: 'survivor', spec: { protocol: 'http', port: 80 } }])
        .then((r) => { process.stdout.write('acked ' + r.revision + '\\n'); setInterval(() => {}, 1000); });
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    try {
      const ack = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out.trim());
        });
        child.on('exit', () => reject(new Error(`child exited before acknowledging: ${out}`)));
      });
      assert.equal(ack, 'acked 1');
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    store = createSqliteStore({ dataDir: dir });
    assert.equal(await store.revision(), 1);
    assert.equal((await store.get('Service', 'survivor'))?.spec.port, 80);
  });
});
