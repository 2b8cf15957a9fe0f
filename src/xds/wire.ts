// Responses assembled from bytes encoded once per resource. A proxy's response
// is its small header (version, type URL, nonce, removed names), encoded here,
// followed by the `resources` entries, each the same bytes for every
// proxy that gets that resource: protobuf allows a message's fields in any
// order and concatenates repeated fields, so header + entries is the message.
// Field numbers: envoy/service/discovery/v3/discovery.proto and
// google/protobuf/any.proto.
import {
  type EncodedResource,
  keepBytes,
  type StringFields,
  stringFields,
  stringFieldsSize,
  varintSize,
  writeStringFields,
  writeVarint,
} from '../../envoy-protos';

/** version = 1, type_url = 4, nonce = 5 (in both responses); an empty one left out, as proto3 does. */
function commonHead(version: string, typeUrl: string, nonce: string): [number, string][] {
  const fields: [number, string][] = [
    [0x0a, version],
    [0x22, typeUrl],
    [0x2a, nonce],
  ];
  return fields.filter(([, v]) => v !== '');
}

/** DiscoveryResponse without its resources: version_info = 1, type_url = 4, nonce = 5. */
export function sotwHead(version: string, typeUrl: string, nonce: string): Buffer {
  return stringFields(commonHead(version, typeUrl, nonce));
}

/**
 * DeltaDiscoveryResponse without its resources: system_version_info = 1,
 * type_url = 4, nonce = 5, removed_resources = 6 (repeated: every name is kept).
 */
export function deltaHead(
  version: string,
  typeUrl: string,
  nonce: string,
  removed: readonly string[],
): Buffer {
  return stringFields([
    ...commonHead(version, typeUrl, nonce),
    ...removed.map((n): [number, string] => [0x32, n]),
  ]);
}

const total = (bufs: readonly Buffer[]) => bufs.reduce((n, b) => n + b.length, 0);

/** Parts at most this long in all are copied into the entry's head; longer ones go by reference. */
const INLINE_VALUE = 256;

/**
 * An entry around a resource's Any: `open` (the fields before the Any, as [tag, string] pairs),
 * the Any { type_url = 1; value = 2 }, then `close` (fields after it); all wrapped in the
 * `tag` field. Written into one buffer, but for long value parts, kept by reference (shared
 * with every other resource on the same base) rather than copied per resource.
 */
function entry(
  tag: number,
  r: EncodedResource,
  open: StringFields,
  close: StringFields,
  anyTag: number,
): Buffer | Buffer[] {
  const value = r.parts ?? [r.value];
  const valueLen = total(value);
  const typeUrlLen = Buffer.byteLength(r.typeUrl, 'utf8');
  const anyLen = 1 + varintSize(typeUrlLen) + typeUrlLen + 1 + varintSize(valueLen) + valueLen;
  const openLen = stringFieldsSize(open);
  const closeLen = stringFieldsSize(close);
  const wrappedAny = anyTag ? 1 + varintSize(anyLen) : 0;
  const bodyLen = openLen + wrappedAny + anyLen + closeLen;
  // A whole resource's entry is kept (one buffer to copy per push); a resource of parts keeps them.
  const inline = r.parts === undefined || valueLen <= INLINE_VALUE;
  const headLen =
    1 + varintSize(bodyLen) + openLen + wrappedAny + (anyLen - valueLen) + (inline ? valueLen + closeLen : 0);
  const head = Buffer.allocUnsafe(headLen);
  head[0] = tag;
  let at = writeVarint(head, 1, bodyLen);
  at = writeStringFields(head, at, open);
  if (anyTag) {
    head[at++] = anyTag;
    at = writeVarint(head, at, anyLen);
  }
  head[at++] = 0x0a;
  at = writeVarint(head, at, typeUrlLen);
  at += head.write(r.typeUrl, at, 'utf8');
  head[at++] = 0x12;
  at = writeVarint(head, at, valueLen);
  if (inline) {
    for (const b of value) {
      head.set(b, at);
      at += b.length;
    }
    writeStringFields(head, at, close);
    return head;
  }
  const out: Buffer[] = [head, ...value];
  if (closeLen > 0) {
    const tail = Buffer.allocUnsafe(closeLen);
    writeStringFields(tail, 0, close);
    out.push(tail);
  }
  return out;
}

/** An entry kept with its resource: its own pieces moved out of Node's shared pool (see keepBytes). */
function kept(e: Buffer | Buffer[]): Buffer | Buffer[] {
  return Array.isArray(e) ? e.map(keepBytes) : keepBytes(e);
}

// Where a resource object keeps its entries, once encoded (properties: read per resource per push).
// A resource made of parts is mostly a sidecar's own (a listener at its address, pushed to that one
// proxy): its entry is a few small buffers around the shared parts, made per push, not kept.
const SOTW = Symbol('sotwEntry');
const DELTA = Symbol('deltaEntry');
type WithEntries = EncodedResource & { [SOTW]?: Buffer | Buffer[]; [DELTA]?: Buffer | Buffer[] };

/** DiscoveryResponse.resources (2): the resource's Any. */
export function sotwEntry(r: EncodedResource): Buffer | Buffer[] {
  const o = r as WithEntries;
  let e = o[SOTW];
  if (!e) {
    e = entry(0x12, r, [], [], 0);
    if (r.parts === undefined) o[SOTW] = e = kept(e);
  }
  return e;
}

/** DeltaDiscoveryResponse.resources (2): Resource { version = 1; resource = 2; name = 3 }. */
export function deltaEntry(r: EncodedResource): Buffer | Buffer[] {
  const o = r as WithEntries;
  let e = o[DELTA];
  if (!e) {
    e = entry(0x12, r, [[0x0a, r.version]], [[0x1a, r.name]], 0x12);
    if (r.parts === undefined) o[DELTA] = e = kept(e);
  }
  return e;
}

/** Per part of a cache list: how many responses held it whole, then its assembled Delta entries. */
const deltaParts = new WeakMap<object, number | Buffer>();

/**
 * The Delta entries of every resource of a part of a cache list, in one buffer made once, from the
 * second response that holds the whole part on: a list every proxy with the same view holds (a
 * thousand clusters) then goes into each proxy's frame in one piece, not a thousand small ones. A
 * part only one proxy holds (its own listeners, its secrets) is never assembled: undefined, and its
 * entries go one by one as usual. Entries are the resource's alone (name, version, the Any), the same
 * bytes for every proxy; their order in a response does not matter to the client.
 */
export function deltaPartEntries(part: {
  readonly map: ReadonlyMap<string, EncodedResource>;
}): Buffer | undefined {
  const seen = deltaParts.get(part);
  if (seen === undefined || typeof seen === 'number') {
    const uses = (seen ?? 0) + 1;
    if (uses < 2) {
      deltaParts.set(part, uses);
      return undefined;
    }
    const b = assembledDeltaEntries(part.map.values());
    deltaParts.set(part, b);
    return b;
  }
  return seen;
}

const deltaLists = new WeakMap<readonly EncodedResource[], Buffer>();

/**
 * The Delta entries of a list every proxy of a view is sent alike (a shared transition's changed
 * resources, see SharedTransition), assembled into one buffer on first use and kept with the list.
 */
export function deltaListEntries(list: readonly EncodedResource[]): Buffer {
  let b = deltaLists.get(list);
  if (!b) {
    b = assembledDeltaEntries(list);
    deltaLists.set(list, b);
  }
  return b;
}

/** The Delta entries of these resources, in one buffer kept out of Node's shared pool. */
function assembledDeltaEntries(resources: Iterable<EncodedResource>): Buffer {
  const pieces: Buffer[] = [];
  for (const r of resources) {
    const e = deltaEntry(r);
    if (Buffer.isBuffer(e)) pieces.push(e);
    else pieces.push(...e);
  }
  return keepBytes(Buffer.concat(pieces));
}

/**
 * An assembled response, as the gRPC transport frames it (grpc-http2.ts): its
 * byteLength, and copy() into the frame allocated for it (5 bytes of gRPC
 * header, then the message). The parts go straight into that frame, with no
 * contiguous copy of the message first: that copy was every byte sent once
 * more (~700 MB in a connect storm of 1,000 proxies on a 1,000-service mesh).
 */
export class SerializedParts {
  readonly byteLength: number;
  readonly parts: readonly Buffer[];

  /** The head, then each entry's buffers in order. */
  constructor(head: Buffer, entries: readonly (Buffer | readonly Buffer[])[]) {
    const parts: Buffer[] = [head];
    let n = head.length;
    for (const e of entries) {
      if (Buffer.isBuffer(e)) {
        parts.push(e);
        n += e.length;
      } else {
        for (const b of e as readonly Buffer[]) {
          parts.push(b);
          n += b.length;
        }
      }
    }
    this.parts = parts;
    this.byteLength = n;
  }

  get length(): number {
    return this.byteLength;
  }

  /** Buffer.copy's contract for a whole source: the bytes, at targetStart; returns the count. */
  copy(target: Uint8Array, targetStart = 0): number {
    if (target.length - targetStart < this.byteLength) throw new RangeError('target too small');
    let at = targetStart;
    for (const p of this.parts) {
      target.set(p, at);
      at += p.length;
    }
    return this.byteLength;
  }

  /** The message as one buffer (tests, diagnostics). */
  toBuffer(): Buffer {
    return Buffer.concat(this.parts as Buffer[], this.byteLength);
  }
}
