// Bootstrap tokens: issue, verify, expiry, revocation (durable), the service
// binding, and tampering with any part of a token.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  MAX_TOKEN_TTL_SECONDS,
  type MetaStore,
  TokenService,
  TokenSigner,
  type TokenVerdict,
} from '../../src/sds/tokens';

class MemoryMeta implements MetaStore {
  readonly values = new Map<string, string>();
  async getMeta(key: string): Promise<string | undefined> {
    return this.values.get(key);
  }
  async setMeta(key: string, value: string): Promise<void> {
    this.values.set(key, value);
  }
}

const T0 = 1_800_000_000;
const KEY = Buffer.alloc(32, 7);
const notRevoked = () => false;

function reason(v: TokenVerdict): string {
  return v.ok ? 'ok' : v.reason;
}

/** Re-encodes a token's payload with changes, keeping the original signature. */
function withPayload(token: string, change: (p: Record<string, unknown>) => void): string {
  const [v, payload, sig] = token.split('.');
  const p = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  change(p);
  return `${v}.${Buffer.from(JSON.stringify(p)).toString('base64url')}.${sig}`;
}

describe('sds/tokens: TokenSigner', () => {
  const signer = new TokenSigner(KEY);

  it('issues a token that verifies, with its claims', () => {
    const { token, claims } = signer.issue('reviews', 3600, T0);
    assert.match(token, /^mp1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.equal(claims.service, 'reviews');
    assert.equal(claims.issuedAt, T0);
    assert.equal(claims.expiresAt, T0 + 3600);
    const v = signer.verify(token, { nowSeconds: T0 + 1, isRevoked: notRevoked, service: 'reviews' });
    assert.deepEqual(v, { ok: true, claims });
  });

  it('gives every token its own id', () => {
    const ids = new Set(Array.from({ length: 50 }, () => signer.issue('a', 60, T0).claims.id));
    assert.equal(ids.size, 50);
  });

  it('refuses a key shorter than 32 bytes', () => {
    assert.throws(() => new TokenSigner(Buffer.alloc(31)), /at least 32 bytes/);
  });

  it('expires at expiresAt, not a second later', () => {
    const { token } = signer.issue('reviews', 60, T0);
    assert.equal(reason(signer.verify(token, { nowSeconds: T0 + 59, isRevoked: notRevoked })), 'ok');
    assert.equal(reason(signer.verify(token, { nowSeconds: T0 + 60, isRevoked: notRevoked })), 'expired');
    assert.equal(reason(signer.verify(token, { nowSeconds: T0 + 6000, isRevoked: notRevoked })), 'expired');
  });

  it('refuses a revoked token by its id', () => {
    const { token, claims } = signer.issue('reviews', 60, T0);
    const v = signer.verify(token, { nowSeconds: T0, isRevoked: (id) => id === claims.id });
    assert.equal(reason(v), 'revoked');
  });

  it('refuses a token presented for another service, and names both', () => {
    const { token } = signer.issue('reviews', 60, T0);
    const v = signer.verify(token, { nowSeconds: T0, isRevoked: notRevoked, service: 'ratings' });
    assert.equal(reason(v), 'wrong-service');
    assert.ok(!v.ok && /reviews/.test(v.message) && /ratings/.test(v.message), JSON.stringify(v));
  });

  const { token: good } = signer.issue('reviews', 3600, T0);
  const [, goodPayload, goodSig] = good.split('.');
  const tampered: { name: string; token: string | undefined; reason: string }[] = [
    { name: 'no token', token: undefined, reason: 'missing' },
    { name: 'empty token', token: '', reason: 'missing' },
    { name: 'two parts', token: `mp1.${goodPayload}`, reason: 'malformed' },
    { name: 'four parts', token: `${good}.x`, reason: 'malformed' },
    { name: 'another version prefix', token: `mp2.${goodPayload}.${goodSig}`, reason: 'malformed' },
    {
      name: 'service changed in the payload',
      token: withPayload(good, (p) => {
        p.svc = 'ratings';
      }),
      reason: 'bad-signature',
    },
    {
      name: 'expiry extended in the payload',
      token: withPayload(good, (p) => {
        p.exp = (p.exp as number) + 86_400;
      }),
      reason: 'bad-signature',
    },
    {
      name: 'one signature character changed',
      token: `mp1.${goodPayload}.${goodSig.slice(0, -1)}${goodSig.endsWith('A') ? 'B' : 'A'}`,
      reason: 'bad-signature',
    },
    {
      name: 'signature cut short',
      token: `mp1.${goodPayload}.${goodSig.slice(0, 10)}`,
      reason: 'bad-signature',
    },
    {
      name: 'signed with another key',
      token: new TokenSigner(Buffer.alloc(32, 8)).issue('reviews', 3600, T0).token,
      reason: 'bad-signature',
    },
  ];
  for (const tc of tampered) {
    it(`refuses a tampered token: ${tc.name} (${tc.reason})`, () => {
      const v = signer.verify(tc.token, { nowSeconds: T0 + 1, isRevoked: notRevoked, service: 'reviews' });
      assert.equal(reason(v), tc.reason, JSON.stringify(v));
    });
  }

  it('refuses a well-signed payload that lacks claims (malformed)', () => {
    // Sign a payload without `svc` with the real key, through the signer's own format.
    const payload = Buffer.from(JSON.stringify({ v: 'mp1', jti: 'x', iat: T0, exp: T0 + 60 })).toString(
      'base64url',
    );
    const sig = createHmac('sha256', KEY).update(`mp1.${payload}`).digest('base64url');
    const v = signer.verify(`mp1.${payload}.${sig}`, { nowSeconds: T0, isRevoked: notRevoked });
    assert.equal(reason(v), 'malformed');
  });
});

describe('sds/tokens: TokenService', () => {
  let now = T0;
  const clock = () => now;

  beforeEach(() => {
    now = T0;
  });

  it('creates its signing key once and keeps it: tokens verify after a reopen', async () => {
    const meta = new MemoryMeta();
    const a = await TokenService.open(meta, clock);
    const key = meta.values.get('tokens.signing-key');
    assert.ok(key && Buffer.from(key, 'base64').length >= 32);
    const { token } = a.issue('reviews', 600);
    const b = await TokenService.open(meta, clock);
    assert.equal(meta.values.get('tokens.signing-key'), key);
    assert.equal(reason(b.verify(token, 'reviews')), 'ok');
    // Another store (another key) does not accept it.
    const other = await TokenService.open(new MemoryMeta(), clock);
    assert.equal(reason(other.verify(token, 'reviews')), 'bad-signature');
  });

  it('verifies issue -> ok, then expired by its clock', async () => {
    const svc = await TokenService.open(new MemoryMeta(), clock);
    const { token, claims } = svc.issue('reviews', 120);
    assert.equal(claims.expiresAt, T0 + 120);
    assert.equal(reason(svc.verify(token)), 'ok');
    assert.equal(reason(svc.verify(token, 'reviews')), 'ok');
    assert.equal(reason(svc.verify(token, 'ratings')), 'wrong-service');
    now = T0 + 120;
    assert.equal(reason(svc.verify(token, 'reviews')), 'expired');
  });

  it('revokes one token (not others), durably: the revocation survives a reopen', async () => {
    const meta = new MemoryMeta();
    const svc = await TokenService.open(meta, clock);
    const one = svc.issue('reviews', 600);
    const two = svc.issue('reviews', 600);
    await svc.revoke(one.claims.id);
    assert.equal(reason(svc.verify(one.token, 'reviews')), 'revoked');
    assert.equal(reason(svc.verify(two.token, 'reviews')), 'ok');
    const reopened = await TokenService.open(meta, clock);
    assert.equal(reason(reopened.verify(one.token, 'reviews')), 'revoked');
    assert.equal(reason(reopened.verify(two.token, 'reviews')), 'ok');
  });

  it('keeps a revocation for as long as the longest-lived token lives', async () => {
    const meta = new MemoryMeta();
    const svc = await TokenService.open(meta, clock);
    const longest = svc.issue('reviews', MAX_TOKEN_TTL_SECONDS);
    await svc.revoke(longest.claims.id);
    // Another revocation much later prunes what has expired, but not this one.
    now = T0 + MAX_TOKEN_TTL_SECONDS - 1;
    await svc.revoke('unrelated');
    assert.equal(reason(svc.verify(longest.token, 'reviews')), 'revoked');
    const reopened = await TokenService.open(meta, clock);
    assert.equal(reason(reopened.verify(longest.token, 'reviews')), 'revoked');
  });

  it('prunes revocations of tokens that have expired anyway', async () => {
    const meta = new MemoryMeta();
    const svc = await TokenService.open(meta, clock);
    const short = svc.issue('reviews', 60);
    await svc.revoke(short.claims.id, short.claims.expiresAt);
    assert.ok(JSON.parse(meta.values.get('tokens.revoked')!)[short.claims.id]);
    now = T0 + 61;
    await svc.revoke('later');
    const stored = JSON.parse(meta.values.get('tokens.revoked')!);
    assert.deepEqual(Object.keys(stored), ['later']);
    assert.equal(reason(svc.verify(short.token, 'reviews')), 'expired');
  });

  const badTtls = [0, -1, 1.5, MAX_TOKEN_TTL_SECONDS + 1, Number.NaN];
  for (const ttl of badTtls) {
    it(`refuses to issue a token with ttl ${ttl} s`, async () => {
      const svc = await TokenService.open(new MemoryMeta(), clock);
      assert.throws(() => svc.issue('reviews', ttl), RangeError);
    });
  }
});
