// Field schemas shared by every kind: names, labels, durations, ports, percents.
// Pure zod and string handling: must not depend on the store, the API or Envoy types.
import { isIP } from 'node:net';
import { z } from 'zod';

/** RFC 1123 label: what object names must look like (they end up in Envoy resource names). */
export const NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const NAME_MAX_LENGTH = 63;

/** An object name, or a reference to one (e.g. `spec.service`). */
export const nameSchema = z
  .string()
  .min(1, { error: 'must not be empty' })
  .max(NAME_MAX_LENGTH, { error: `must be at most ${NAME_MAX_LENGTH} characters` })
  .regex(NAME_PATTERN, {
    error: 'must be lowercase letters, digits and "-", starting and ending with a letter or digit',
  });

/**
 * Label keys: an optional DNS-name prefix and "/", then a name of letters, digits, "-", "_", ".".
 * `,` and `=` can never appear, so `?labels=k=v,k2=v2` selectors are unambiguous.
 */
export const LABEL_KEY_PATTERN =
  /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
/** Label values: empty, or letters, digits, "-", "_", "." starting and ending with a letter or digit. */
export const LABEL_VALUE_PATTERN = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export const labelKeySchema = z
  .string()
  .max(253, { error: 'label keys must be at most 253 characters' })
  .regex(LABEL_KEY_PATTERN, {
    error: 'label keys are letters, digits, "-", "_", "." (with an optional "domain/" prefix)',
  });
export const labelValueSchema = z
  .string()
  .max(63, { error: 'label values must be at most 63 characters' })
  .regex(LABEL_VALUE_PATTERN, {
    error: 'label values are letters, digits, "-", "_", ".", starting and ending with a letter or digit',
  });

/** A label map (object labels, instance labels, subset selectors). */
export const labelsSchema = z.record(labelKeySchema, labelValueSchema);

/**
 * Durations: integer amounts of h, m, s, ms, largest unit first, each at most once:
 * `250ms`, `2s`, `1m30s`, `24h`.
 */
export const DURATION_PATTERN = /^(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$/;

/** True when `s` is a well-formed duration string. */
export function isDuration(s: string): boolean {
  return s !== '' && DURATION_PATTERN.test(s) && Number.isSafeInteger(sumDuration(s));
}

function sumDuration(s: string): number {
  const m = DURATION_PATTERN.exec(s);
  if (!m || s === '') return Number.NaN;
  const part = (g: string | undefined) => (g === undefined ? 0 : Number.parseInt(g, 10));
  return part(m[1]) * 3_600_000 + part(m[2]) * 60_000 + part(m[3]) * 1000 + part(m[4]);
}

/**
 * Milliseconds in a duration string. Input is expected to have been validated: a
 * malformed string is a bug in the caller and throws a RangeError.
 * @example parseDurationMs('1m30s') === 90_000
 */
export function parseDurationMs(s: string): number {
  const ms = sumDuration(s);
  if (!Number.isSafeInteger(ms)) throw new RangeError(`not a duration: ${JSON.stringify(s)}`);
  return ms;
}

const DURATION_HINT = 'must be a duration such as 250ms, 2s, 1m30s or 24h';

/** A duration, zero allowed (e.g. a route timeout of 0s disables the timeout). */
export const durationSchema = z
  .string()
  .min(1, { error: DURATION_HINT })
  .regex(DURATION_PATTERN, { error: DURATION_HINT })
  .refine((s) => s === '' || !DURATION_PATTERN.test(s) || isDuration(s), { error: 'duration is too large' })
  .meta({ description: 'duration: integer h, m, s, ms, largest unit first (250ms, 2s, 1m30s, 24h)' });

/** A duration that must be greater than zero (intervals, TTLs). */
export const positiveDurationSchema = durationSchema.refine((s) => !isDuration(s) || parseDurationMs(s) > 0, {
  error: 'must be greater than 0',
});

export const portSchema = z
  .number()
  .int({ error: 'must be an integer' })
  .min(1, { error: 'ports are 1..65535' })
  .max(65535, { error: 'ports are 1..65535' });

/** A percentage 0..100; fractions allowed (e.g. 0.5 for tracing one request in 200). */
export const percentSchema = z
  .number()
  .min(0, { error: 'percents are 0..100' })
  .max(100, { error: 'percents are 0..100' });

/** Non-negative integers that fit Envoy's uint32 fields. */
export const countSchema = z
  .number()
  .int({ error: 'must be an integer' })
  .min(0, { error: 'must not be negative' })
  .max(4_294_967_295, { error: 'must fit in 32 bits' });

/** Integers >= 1 that fit Envoy's uint32 fields. */
export const positiveCountSchema = z
  .number()
  .int({ error: 'must be an integer' })
  .min(1, { error: 'must be at least 1' })
  .max(4_294_967_295, { error: 'must fit in 32 bits' });

/** An IPv4 or IPv6 address (EDS endpoints need addresses, not host names). */
export const ipAddressSchema = z
  .string()
  .refine((s) => isIP(s) !== 0, { error: 'must be an IPv4 or IPv6 address' });

const DNS_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A lowercase DNS name (e.g. the SPIFFE trust domain). */
export const dnsNameSchema = z
  .string()
  .max(253, { error: 'must be at most 253 characters' })
  .regex(DNS_NAME_PATTERN, { error: 'must be a lowercase DNS name such as mesh.local' });

const HOST_PORT_PATTERN = /^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;

/** `host:port` (IPv6 in brackets), port 1..65535. */
export const hostPortSchema = z.string().refine(
  (s) => {
    const m = HOST_PORT_PATTERN.exec(s);
    if (!m) return false;
    const port = Number(m[3]);
    return port >= 1 && port <= 65535;
  },
  { error: 'must be host:port, e.g. tracing:9411' },
);

/** An HTTP header name (RFC 9110 token), pseudo-headers such as `:authority` included. */
export const headerNameSchema = z
  .string()
  .regex(/^:?[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { error: 'must be an HTTP header name' });

/** A URL path: starts with "/". */
export const pathSchema = z.string().regex(/^\/\S*$/, { error: 'must start with "/" and contain no spaces' });
