// A minimal protobuf wire-format reader for the load generator: it walks the
// top-level fields of ADS responses (and the `name` field of resources) without
// building objects, so that thousands of simulated proxies cost little CPU.
// Field numbers are those of envoy/service/discovery/v3/discovery.proto.
import { stringFields } from '../../envoy-protos/wire-bits';

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
    const s = skipValue(buf, c, key & 7);
    if (s < 0) continue;
    if (c.pos > end) throw new ProtoError('truncated field');
    onField(Math.floor(key / 8), s, c.pos);
  }
}

/**
 * Moves `c` past one field's value of wire type `wire`; for a length-delimited
 * one returns where its payload starts (-1 for the others).
 */
function skipValue(buf: Uint8Array, c: { pos: number }, wire: number): number {
  switch (wire) {
    case VARINT:
      varint(buf, c);
      return -1;
    case I64:
      c.pos += 8;
      return -1;
    case I32:
      c.pos += 4;
      return -1;
    case LEN: {
      const len = varint(buf, c);
      const start = c.pos;
      c.pos += len;
      return start;
    }
    default:
      throw new ProtoError(`unsupported wire type ${wire}`);
  }
}

/** The bytes of a message with every length-delimited field `drop` left out. */
export function withoutField(buf: Buffer, start: number, end: number, drop: number): Buffer {
  const keep: Buffer[] = [];
  let from = start;
  const c = { pos: start };
  while (c.pos < end) {
    const at = c.pos;
    const key = varint(buf, c);
    if (skipValue(buf, c, key & 7) >= 0 && Math.floor(key / 8) === drop) {
      keep.push(buf.subarray(from, at));
      from = c.pos;
    }
  }
  keep.push(buf.subarray(from, end));
  return keep.length === 1 ? keep[0] : Buffer.concat(keep);
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
  /** Delta: a 53-bit hash of the version's bytes (0 without a version). */
  key: number;
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
 * The length-delimited fields 1..3 of a message, as [start, end) pairs in `out`
 * (-1 when absent): a closure-free walk for the per-resource hot path.
 */
function fields123(buf: Buffer, start: number, end: number, out: Int32Array): void {
  out.fill(-1);
  const c = { pos: start };
  while (c.pos < end) {
    const key = varint(buf, c);
    const s = skipValue(buf, c, key & 7);
    if (c.pos > end) throw new ProtoError('truncated field');
    const field = Math.floor(key / 8);
    if (s >= 0 && field >= 1 && field <= 3) {
      out[2 * (field - 1)] = s;
      out[2 * (field - 1) + 1] = c.pos;
    }
  }
}

/**
 * Resources seen before, by version: a version is a hash of the resource's bytes
 * (name included), so a known one gives the name, and where the Any's value sits in
 * the Resource, without decoding it again. Keyed by a 53-bit hash of the version's
 * bytes, so that a known resource costs no string.
 */
interface Known {
  readonly name: string;
  readonly version: string;
  readonly key: number;
  /** The Any's value, relative to the start of the Resource message. */
  readonly valueStart: number;
  readonly valueEnd: number;
}
const byVersion = new Map<number, Known>();
const spans = new Int32Array(6);
const anySpans = new Int32Array(6);

/** Two 32-bit FNV-1a variants over buf[s, e) joined into one exact-integer double (53 bits). */
function bytesKey(buf: Uint8Array, s: number, e: number): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = s; i < e; i++) {
    h1 = Math.imul(h1 ^ buf[i], 0x01000193);
    h2 = Math.imul(h2 ^ buf[i], 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0) * 0x200000 + ((h2 >>> 0) & 0x1fffff);
}

/** Resource { version = 1; resource = 2 (Any { type_url = 1; value = 2 }); name = 3 } */
function deltaResource(buf: Buffer, s: number, e: number): RawResource {
  // The server writes the version first: read it without walking the other fields.
  let vs = -1;
  let ve = -1;
  if (buf[s] === 0x0a) {
    const c = { pos: s + 1 };
    const len = varint(buf, c);
    vs = c.pos;
    ve = c.pos + len;
  }
  if (vs >= 0 && ve <= e) {
    const known = byVersion.get(bytesKey(buf, vs, ve));
    if (known) {
      return {
        name: known.name,
        version: known.version,
        key: known.key,
        start: s + known.valueStart,
        end: s + known.valueEnd,
      };
    }
  }
  fields123(buf, s, e, spans);
  [vs, ve] = [spans[0], spans[1]];
  const [as, ae, ns, ne] = [spans[2], spans[3], spans[4], spans[5]];
  const r: RawResource = { name: '', version: '', key: 0, start: e, end: e };
  if (as >= 0) {
    fields123(buf, as, ae, anySpans);
    if (anySpans[2] >= 0) {
      r.start = anySpans[2];
      r.end = anySpans[3];
    }
  }
  if (ns >= 0) r.name = intern(buf.toString('utf8', ns, ne));
  if (vs >= 0) {
    r.version = buf.toString('latin1', vs, ve);
    r.key = bytesKey(buf, vs, ve);
    if (byVersion.size > 500_000) byVersion.clear();
    byVersion.set(r.key, {
      name: r.name,
      version: r.version,
      key: r.key,
      valueStart: r.start - s,
      valueEnd: r.end - s,
    });
  }
  return r;
}

/**
 * DeltaDiscoveryResponse: system_version_info=1, resources=2 (Resource: version=1,
 * resource=2 Any, name=3), type_url=4, nonce=5, removed_resources=6.
 */
export function parseDeltaResponse(buf: Buffer): RawResponse {
  const out: RawResponse = { typeUrl: '', nonce: '', versionInfo: '', resources: [], removed: [] };
  eachLenField(buf, 0, buf.length, (field, s, e) => {
    switch (field) {
      case 2:
        out.resources.push(deltaResource(buf, s, e));
        break;
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
          key: 0,
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

/**
 * A Delta ACK (the most frequent request by far): DeltaDiscoveryRequest with only
 * type_url = 2 and response_nonce = 6, written directly (as protobufjs would).
 */
const ackPrefixes = new Map<string, Buffer>();
export function deltaAck(typeUrl: string, nonce: string): Buffer {
  let prefix = ackPrefixes.get(typeUrl);
  if (!prefix) {
    prefix = lenField(2, Buffer.from(typeUrl, 'utf8'));
    ackPrefixes.set(typeUrl, prefix);
  }
  return nonce ? Buffer.concat([prefix, lenField(6, Buffer.from(nonce, 'utf8'))]) : prefix;
}

/**
 * A DeltaDiscoveryRequest without a node: type_url = 2, resource_names_subscribe = 3,
 * resource_names_unsubscribe = 4, response_nonce = 6, written directly in field order (as
 * protobufjs writes them; a sidecar subscribing to a thousand CLAs sends one of these).
 */
export function deltaRequest(
  typeUrl: string,
  subscribe: readonly string[],
  unsubscribe: readonly string[],
  nonce: string,
): Buffer {
  // One buffer for the whole request (a thousand names are a thousand fields).
  const fields: [number, string][] = [[0x12, typeUrl]];
  for (const n of subscribe) fields.push([0x1a, n]);
  for (const n of unsubscribe) fields.push([0x22, n]);
  if (nonce) fields.push([0x32, nonce]);
  return stringFields(fields);
}

function lenField(field: number, payload: Buffer): Buffer {
  const head: number[] = [(field << 3) | 2];
  for (let n = payload.length; ; n = Math.floor(n / 128)) {
    if (n < 0x80) {
      head.push(n);
      break;
    }
    head.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from(head), payload]);
}
