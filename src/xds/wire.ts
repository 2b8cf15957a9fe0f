// Responses assembled from bytes encoded once per resource. A proxy's response
// is its small header (version, type URL, nonce, removed names) serialized as
// usual, followed by the `resources` entries, each the same bytes for every
// proxy that gets that resource: protobuf allows a message's fields in any
// order and concatenates repeated fields, so header + entries is the message.
// Field numbers: envoy/service/discovery/v3/discovery.proto and
// google/protobuf/any.proto.
import type { EncodedResource } from '../../envoy-protos';

/** A response whose resources are pre-encoded entries; the gRPC serializer concatenates. */
export class AssembledResponse {
  constructor(
    /** The response without its resources, for the regular serializer. */
    readonly head: object,
    /** Complete `resources` field entries (tag, length, message). */
    readonly entries: readonly Buffer[],
  ) {}
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/** A length-delimited field: its tag byte, the length, then the payload parts. */
function field(tag: number, parts: readonly (Buffer | string)[]): Buffer {
  const bufs = parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
  const len = bufs.reduce((n, b) => n + b.length, 0);
  const out = Buffer.allocUnsafe(1 + varintLength(len) + len);
  out[0] = tag;
  let at = writeVarint(out, 1, len);
  for (const b of bufs) {
    b.copy(out, at);
    at += b.length;
  }
  return out;
}

/** google.protobuf.Any { type_url = 1; value = 2 } */
function anyOf(r: EncodedResource): Buffer {
  return Buffer.concat([field(0x0a, [r.typeUrl]), field(0x12, [r.value])]);
}

const sotwEntries = new WeakMap<EncodedResource, Buffer>();
const deltaEntries = new WeakMap<EncodedResource, Buffer>();

/** DiscoveryResponse.resources (2): the resource's Any. */
export function sotwEntry(r: EncodedResource): Buffer {
  let e = sotwEntries.get(r);
  if (!e) {
    e = field(0x12, [anyOf(r)]);
    sotwEntries.set(r, e);
  }
  return e;
}

/** DeltaDiscoveryResponse.resources (2): Resource { version = 1; resource = 2; name = 3 }. */
export function deltaEntry(r: EncodedResource): Buffer {
  let e = deltaEntries.get(r);
  if (!e) {
    const resource = Buffer.concat([
      field(0x0a, [r.version]),
      field(0x12, [anyOf(r)]),
      field(0x1a, [r.name]),
    ]);
    e = field(0x12, [resource]);
    deltaEntries.set(r, e);
  }
  return e;
}

/** Wraps a response serializer so that it also takes assembled responses. */
export function assemblingSerializer(serialize: (value: unknown) => Buffer): (value: unknown) => Buffer {
  return (value) => {
    if (!(value instanceof AssembledResponse)) return serialize(value);
    const head = serialize(value.head);
    return Buffer.concat([head, ...value.entries]);
  };
}
