// Bootstrap tokens: signed by the control plane, bound to one service, with an
// expiry and revocation. A sidecar sends its token in the ADS stream's initial
// metadata. Pure apart from randomness and the clock, which callers pass in.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface TokenClaims {
  /** Token id, for revocation. */
  readonly id: string;
  readonly service: string;
  /** Seconds since the epoch. */
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export type TokenVerdict =
  | { ok: true; claims: TokenClaims }
  | {
      ok: false;
      reason: 'missing' | 'malformed' | 'bad-signature' | 'expired' | 'revoked' | 'wrong-service';
      message: string;
    };

const VERSION = 'mp1';

/**
 * The longest a token may live (a year). Revocations are kept this long, so a
 * revoked token can never outlive its revocation.
 */
export const MAX_TOKEN_TTL_SECONDS = 365 * 86_400;

function b64(s: Buffer | string): string {
  return Buffer.from(s).toString('base64url');
}

/** Signs and verifies tokens with one HMAC-SHA256 key. */
export class TokenSigner {
  constructor(private readonly key: Buffer) {
    if (key.length < 32) throw new Error('token signing key must be at least 32 bytes');
  }

  static generateKey(): Buffer {
    return randomBytes(32);
  }

  issue(service: string, ttlSeconds: number, nowSeconds: number): { token: string; claims: TokenClaims } {
    const claims: TokenClaims = {
      id: randomBytes(9).toString('base64url'),
      service,
      issuedAt: nowSeconds,
      expiresAt: nowSeconds + ttlSeconds,
    };
    const payload = b64(
      JSON.stringify({
        v: VERSION,
        jti: claims.id,
        svc: service,
        iat: claims.issuedAt,
        exp: claims.expiresAt,
      }),
    );
    return { token: `${VERSION}.${payload}.${this.sign(payload)}`, claims };
  }

  /**
   * Checks signature, expiry, revocation and (when given) the service the
   * presenter claims to be.
   */
  verify(
    token: string | undefined,
    o: { nowSeconds: number; isRevoked: (id: string) => boolean; service?: string },
  ): TokenVerdict {
    if (!token) return { ok: false, reason: 'missing', message: 'no bootstrap token' };
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== VERSION)
      return { ok: false, reason: 'malformed', message: 'malformed token' };
    const [, payload, signature] = parts;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      return { ok: false, reason: 'bad-signature', message: 'token signature does not verify' };
    }
    let raw: { jti?: unknown; svc?: unknown; iat?: unknown; exp?: unknown };
    try {
      raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, reason: 'malformed', message: 'malformed token payload' };
    }
    if (
      typeof raw.jti !== 'string' ||
      typeof raw.svc !== 'string' ||
      typeof raw.iat !== 'number' ||
      typeof raw.exp !== 'number'
    ) {
      return { ok: false, reason: 'malformed', message: 'malformed token claims' };
    }
    const claims: TokenClaims = { id: raw.jti, service: raw.svc, issuedAt: raw.iat, expiresAt: raw.exp };
    if (claims.expiresAt <= o.nowSeconds) return { ok: false, reason: 'expired', message: 'token expired' };
    if (o.isRevoked(claims.id)) return { ok: false, reason: 'revoked', message: 'token revoked' };
    if (o.service !== undefined && o.service !== claims.service) {
      return {
        ok: false,
        reason: 'wrong-service',
        message: `token is for service "${claims.service}", not "${o.service}"`,
      };
    }
    return { ok: true, claims };
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(`${VERSION}.${payload}`).digest('base64url');
  }
}

/** The durable key-value space the token service keeps its key and revocations in. */
export interface MetaStore {
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
}

const KEY_META = 'tokens.signing-key';
const REVOKED_META = 'tokens.revoked';

/** Issues, verifies and revokes bootstrap tokens; key and revocations live in the store. */
export class TokenService {
  private constructor(
    private readonly signer: TokenSigner,
    private readonly meta: MetaStore,
    /** id -> expiresAt (seconds): kept until the token would have expired anyway. */
    private readonly revoked: Map<string, number>,
    private readonly now: () => number,
  ) {}

  static async open(
    meta: MetaStore,
    now: () => number = () => Math.floor(Date.now() / 1000),
  ): Promise<TokenService> {
    let key = await meta.getMeta(KEY_META);
    if (!key) {
      key = TokenSigner.generateKey().toString('base64');
      await meta.setMeta(KEY_META, key);
    }
    const revoked = new Map<string, number>(
      Object.entries(JSON.parse((await meta.getMeta(REVOKED_META)) ?? '{}')),
    );
    return new TokenService(new TokenSigner(Buffer.from(key, 'base64')), meta, revoked, now);
  }

  /** Issues a token for `service`; RangeError unless 0 < ttlSeconds <= MAX_TOKEN_TTL_SECONDS. */
  issue(service: string, ttlSeconds: number): { token: string; claims: TokenClaims } {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
      throw new RangeError(`token ttl must be 1..${MAX_TOKEN_TTL_SECONDS} seconds, got ${ttlSeconds}`);
    }
    return this.signer.issue(service, ttlSeconds, this.now());
  }

  verify(token: string | undefined, service?: string): TokenVerdict {
    return this.signer.verify(token, {
      nowSeconds: this.now(),
      isRevoked: (id) => this.revoked.has(id),
      service,
    });
  }

  /**
   * Revokes a token by id until it would have expired (`expiresAt`, seconds; by default
   * for the longest any token lives, MAX_TOKEN_TTL_SECONDS).
   */
  async revoke(id: string, expiresAt = this.now() + MAX_TOKEN_TTL_SECONDS): Promise<void> {
    const now = this.now();
    for (const [k, exp] of this.revoked) if (exp <= now) this.revoked.delete(k);
    this.revoked.set(id, expiresAt);
    await this.meta.setMeta(REVOKED_META, JSON.stringify(Object.fromEntries(this.revoked)));
  }
}
