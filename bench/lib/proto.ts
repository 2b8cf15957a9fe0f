// A minimal protobuf wire-format reader for the load generator: it walks the
// top-level fields of ADS responses (and the `name` field of resources) without
// building objects, so that thousands of simulated proxies cost little CPU.
// Field numbers are those of envoy/service/discovery/v3/discovery.proto.

/** Wire types. */
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

export class ProtoError extends Error {}

/** Reads a varint at `pos`; returns the value (exact up to 2^53) and sets `cursor.pos` past it. */
function varint(buf: Uint8Array, cursor: { pos: number }): number {
  let result = 0;
  let shift = 1;
  let pos = cursor.pos;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new ProtoError('truncated varint');
    const b = buf[pos++];
    result += (b & 0x7f) * shift;
    if (b < 0x80) {
      cursor.pos = pos;
      return result;
    }
    shift *= 128;
  }
  throw new ProtoError('varint too long');
}

/**
 * Calls `onField(field, start, end)` for each length-delimited field of the
 * message in buf[start, end); other wire types are skipped.
 */
export function eachLenField(
  buf: Uint8Array,
  start: number,
  end: number,
  onField: (field: number, start: number, end: number) => void,
): void {
  const c = { pos: start };
  while (c.pos < end) {
    const key = varint(buf, c);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    switch (wire) {
      case VARINT:
        varint(buf, c);
        break;
      case I64:
        c.pos += 8;
        break;
      case I32:
        c.pos += 4;
        break;
      case LEN: {
        const len = varint(buf, c);
        const s = c.pos;
        c.pos += len;
        if (c.pos > end) throw new ProtoError('truncated field');
        onField(field, s, c.pos);
        break;
      }
      default:
        throw new ProtoError(`unsupported wire type ${wire}`);
    }
  }
}

/** The first length-delimited field `want` of a message as a UTF-8 string ('' when absent). */
export function stringField(buf: Buffer, start: number, end: number, want: number): string {
  let out = '';
  let found = false;
  eachLenField(buf, start, end, (field, s, e) => {
    if (!found && field === want) {
      out = buf.toString('utf8', s, e);
      found = true;
    }
  });
  return out;
}

/** One resource of a response: its name, per-resource version (Delta only) and payload bounds. */
export interface RawResource {
  name: string;
  /** Delta: Resource.version; SotW: '' */
  version: string;
  /** Bounds of the resource message (the Any's value) inside the response buffer. */
  start: number;
  end: number;
}

export interface RawResponse {
  typeUrl: string;
  nonce: string;
  /** SotW only. */
  versionInfo: string;
  resources: RawResource[];
  /** Delta only. */
  removed: string[];
}

/** Strings repeat across proxies (names, versions): share one copy of each. */
const interned = new Map<string, string>();
export function intern(s: string): string {
  const hit = interned.get(s);
  if (hit !== undefined) return hit;
  if (interned.size > 500_000) interned.clear();
  interned.set(s, s);
  return s;
}

function anyValue(buf: Buffer, start: number, end: number): { start: number; end: number } {
  let vs = end;
  let ve = end;
  eachLenField(buf, start, end, (field, s, e) => {
    if (field === 2) {
      vs = s;
      ve = e;
    }
  });
  return { start: vs, end: ve };
}

/**
 * DeltaDiscoveryResponse: system_version_info=1, resources=2 (Resource: version=1,
 * resource=2 Any, name=3), type_url=4, nonce=5, removed_resources=6.
 */
export function parseDeltaResponse(buf: Buffer): RawResponse {
  const out: RawResponse = { typeUrl: '', nonce: '', versionInfo: '', resources: [], removed: [] };
  eachLenField(buf, 0, buf.length, (field, s, e) => {
    switch (field) {
      case 2: {
        const r: RawResource = { name: '', version: '', start: e, end: e };
        eachLenField(buf, s, e, (f, rs, re) => {
          if (f === 3) r.name = intern(buf.toString('utf8', rs, re));
          else if (f === 1) r.version = intern(buf.toString('utf8', rs, re));
          else if (f === 2) {
            const v = anyValue(buf, rs, re);
            r.start = v.start;
            r.end = v.end;
          }
        });
        out.resources.push(r);
        break;
      }
      case 4:
        out.typeUrl = intern(buf.toString('utf8', s, e));
        break;
      case 5:
        out.nonce = buf.toString('utf8', s, e);
        break;
      case 6:
        out.removed.push(intern(buf.toString('utf8', s, e)));
        break;
    }
  });
  return out;
}

/**
 * DiscoveryResponse: version_info=1, resources=2 (Any), type_url=4, nonce=5.
 * Every resource type meshplane serves has its name in field 1
 * (Listener/Cluster/RouteConfiguration/Secret.name, ClusterLoadAssignment.cluster_name).
 */
export function parseSotwResponse(buf: Buffer): RawResponse {
  const out: RawResponse = { typeUrl: '', nonce: '', versionInfo: '', resources: [], removed: [] };
  eachLenField(buf, 0, buf.length, (field, s, e) => {
    switch (field) {
      case 1:
        out.versionInfo = buf.toString('utf8', s, e);
        break;
      case 2: {
        const v = anyValue(buf, s, e);
        out.resources.push({
          name: intern(stringField(buf, v.start, v.end, 1)),
          version: '',
          start: v.start,
          end: v.end,
        });
        break;
      }
      case 4:
        out.typeUrl = intern(buf.toString('utf8', s, e));
        break;
      case 5:
        out.nonce = buf.toString('utf8', s, e);
        break;
    }
  });
  return out;
}

/** Number of (non-overlapping) occurrences of `needle` in buf[start, end). */
export function countOccurrences(buf: Buffer, needle: Buffer, start = 0, end = buf.length): number {
  if (needle.length === 0) return 0;
  const hay = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
  let n = 0;
  let at = hay.indexOf(needle);
  while (at >= 0) {
    n++;
    at = hay.indexOf(needle, at + needle.length);
  }
  return n;
}

/** The bytes of a length-delimited string field: tag, length, UTF-8 (a unique marker for a string value). */
export function stringFieldBytes(field: number, value: string): Buffer {
  const body = Buffer.from(value, 'utf8');
  if (body.length > 127 || field > 15) throw new Error('marker string too long');
  return Buffer.concat([Buffer.from([(field << 3) | LEN, body.length]), body]);
}
