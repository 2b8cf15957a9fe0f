// Loads Envoy's data-plane-api protos from the @grpc/grpc-js-xds package's deps/
// (never copied into this repository) and encodes resources into Any payloads,
// once, so that the bytes can be shared by every stream that sends them.
// Depends on nothing of meshplane's.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { keepBytes } from './keep';
import { varintSize, writeVarint } from './wire-bits';

export * from './wire-bits';

import protos from './protos.json';

export { keepBytes };

const xdsPackageDir = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));

/** Include dirs, in lookup order. protobufjs' own folder provides google/protobuf/descriptor.proto. */
export const includeDirs: readonly string[] = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate']
  .map((d) => path.join(xdsPackageDir, 'deps', d))
  .concat(path.dirname(require.resolve('protobufjs/package.json')));

/** The options used both here and by the type generator (envoy-protos/generate-types.js). */
export const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [...includeDirs],
};

let adsDefinition: protoLoader.PackageDefinition | undefined;

/** The package definition holding envoy.service.discovery.v3.AggregatedDiscoveryService. */
export function loadAdsPackageDefinition(): protoLoader.PackageDefinition {
  adsDefinition ??= protoLoader.loadSync(protos.ads, loaderOptions);
  return adsDefinition;
}

let root: protobuf.Root | undefined;

/** A protobufjs Root with every resource and extension message meshplane encodes. */
export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  r.resolvePath = (origin, target) => {
    for (const dir of includeDirs) {
      const candidate = path.join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return protobuf.util.path.resolve(origin, target);
  };
  r.loadSync([protos.ads, ...protos.resources], { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

const TYPE_PREFIX = 'type.googleapis.com/';

const typesByUrl = new Map<string, protobuf.Type>();

/** Looks up the message type behind a type URL; throws for an unknown one. */
export function messageType(typeUrl: string): protobuf.Type {
  let t = typesByUrl.get(typeUrl);
  if (t) return t;
  if (!typeUrl.startsWith(TYPE_PREFIX)) throw new Error(`not a type URL: ${typeUrl}`);
  t = envoyRoot().lookupType(typeUrl.slice(TYPE_PREFIX.length));
  typesByUrl.set(typeUrl, t);
  return t;
}

/** One resource, encoded once: what the xDS cache stores and every stream shares. */
export interface EncodedResource {
  readonly typeUrl: string;
  readonly name: string;
  /** Content-derived: equal bytes give equal versions, in any process. */
  readonly version: string;
  /** The serialized message: the `value` of its Any. */
  readonly value: Buffer;
  /**
   * When set, `value` is these bytes one after the other (a shared base and a
   * small part of its own, see encodeOverlay) and is only joined on demand:
   * responses write the parts, so the base's bytes are held once.
   */
  readonly parts?: readonly Buffer[];
  /**
   * For an EDS cluster: the ClusterLoadAssignment it waits for while warming.
   * The ADS server re-sends it after every push of the cluster (xDS "Resource warming").
   */
  readonly warms?: string;
}

/** A field path and what is wrong there, for resources built in code. */
export class ResourceEncodeError extends Error {
  constructor(
    readonly typeUrl: string,
    readonly field: string,
    message: string,
  ) {
    super(`${typeUrl.slice(TYPE_PREFIX.length)}: ${field ? `${field}: ` : ''}${message}`);
    this.name = 'ResourceEncodeError';
  }
}

/**
 * protobufjs' fromObject drops unknown fields silently; a misspelt field in a
 * resource would then vanish from the config. Walk the object and reject them.
 * (google.protobuf.* types come from protobufjs' bundled definitions, whose field
 * names are camelCase: a Struct value is `{stringValue: 'x'}`.)
 */
/** Whether a type is google.protobuf.Any (protobufjs builds `fullName` anew on every read: asked once per type). */
const anyTypes = new WeakMap<protobuf.Type, boolean>();
function isAny(t: protobuf.Type): boolean {
  let any = anyTypes.get(t);
  if (any === undefined) {
    any = t.fullName === '.google.protobuf.Any';
    anyTypes.set(t, any);
  }
  return any;
}

function checkFields(type: protobuf.Type, obj: unknown, at: string, typeUrl: string): void {
  // The field path is built only for an error: resources are checked field by field, thousands a second.
  const path: (string | number)[] = at ? [at] : [];
  const where = () => path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
  const walk = (t: protobuf.Type, o: unknown): void => {
    if (o === null || o === undefined) return;
    if (typeof o !== 'object' || Array.isArray(o)) {
      throw new ResourceEncodeError(typeUrl, where(), `expected an object for ${t.fullName.slice(1)}`);
    }
    const record = o as Record<string, unknown>;
    if (isAny(t)) {
      const inner = record['@type'];
      if (typeof inner !== 'string') return; // {type_url, value} form
      let innerType: protobuf.Type;
      try {
        innerType = messageType(inner);
      } catch {
        path.push('@type');
        throw new ResourceEncodeError(typeUrl, where(), `unknown type ${inner}`);
      }
      const { '@type': _, ...rest } = record;
      walk(innerType, rest);
      return;
    }
    for (const key in record) {
      if (!Object.hasOwn(record, key)) continue;
      const value = record[key];
      const field = t.fields[key];
      path.push(key);
      if (!field) throw new ResourceEncodeError(typeUrl, where(), `unknown field of ${t.fullName.slice(1)}`);
      const fieldType = field.resolvedType ?? field.resolve().resolvedType;
      if (fieldType instanceof protobuf.Type && value !== null && value !== undefined) {
        if (field.repeated) {
          if (!Array.isArray(value)) throw new ResourceEncodeError(typeUrl, where(), 'expected a list');
          for (let i = 0; i < value.length; i++) {
            path.push(i);
            walk(fieldType, value[i]);
            path.pop();
          }
        } else if (field.map) {
          for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
            path.push(k);
            walk(fieldType, v);
            path.pop();
          }
        } else walk(fieldType, value);
      }
      path.pop();
    }
  };
  walk(type, obj);
}

/** The name by which xDS addresses a resource of this type. */
export function resourceName(typeUrl: string, obj: Record<string, unknown>): string {
  const key = typeUrl.endsWith('.ClusterLoadAssignment') ? 'cluster_name' : 'name';
  const name = obj[key];
  if (typeof name !== 'string' || name === '') {
    throw new ResourceEncodeError(typeUrl, key, 'a resource needs a non-empty name');
  }
  return name;
}

function edsServiceName(typeUrl: string, name: string, obj: Record<string, unknown>): string | undefined {
  if (!typeUrl.endsWith('.Cluster') || obj.type !== 'EDS') return undefined;
  const eds = obj.eds_cluster_config as { service_name?: string } | undefined;
  return eds?.service_name || name;
}

/** A short content hash: the resource's version. */
export function contentVersion(bytes: Uint8Array | readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const b of bytes instanceof Uint8Array ? [bytes] : bytes) h.update(b);
  return h.digest('base64url').slice(0, 16);
}

/**
 * Encodes one resource (an object with proto field names, nested Anys written as
 * `{'@type': 'type.googleapis.com/...', ...fields}`) into its Any payload.
 */
export function encodeResource(typeUrl: string, obj: Record<string, unknown>): EncodedResource {
  const type = messageType(typeUrl);
  checkFields(type, obj, '', typeUrl);
  let message: protobuf.Message;
  try {
    message = type.fromObject(obj);
  } catch (err) {
    throw new ResourceEncodeError(typeUrl, '', (err as Error).message);
  }
  const value = keepBytes(type.encode(message).finish());
  const name = resourceName(typeUrl, obj);
  return { typeUrl, name, version: contentVersion(value), value, warms: edsServiceName(typeUrl, name, obj) };
}

/**
 * A resource that differs from an encoded one only in a few fields the base
 * does not set (say, a listener's address): the base's bytes followed by the
 * encoding of those fields. Protobuf parsers accept fields in any order, so
 * this is the message with both; only the small part is encoded per use.
 */
export function encodeOverlay(base: EncodedResource, overlay: Record<string, unknown>): EncodedResource {
  const type = messageType(base.typeUrl);
  const fields = type.fields;
  for (const key of Object.keys(overlay)) {
    if (!fields[key])
      throw new ResourceEncodeError(base.typeUrl, key, `unknown field of ${type.fullName.slice(1)}`);
    if (key === 'name' || key === 'cluster_name')
      throw new ResourceEncodeError(base.typeUrl, key, 'the name belongs to the base');
  }
  let extra = addressOverlay(type, overlay);
  if (!extra) {
    checkFields(type, overlay, '', base.typeUrl);
    try {
      extra = type.encode(type.fromObject(overlay)).finish();
    } catch (err) {
      throw new ResourceEncodeError(base.typeUrl, '', (err as Error).message);
    }
  }
  const own = keepBytes(extra);
  // The version: of the base's version and the overlay's bytes (a function of the content, as
  // contentVersion is), without hashing the base's bytes again for every sidecar.
  const version = overlayVersion(base.version, own);
  return fromParts(base.typeUrl, base.name, [...(base.parts ?? [base.value]), own], base.warms, version);
}

/** Field numbers of `address { socket_address { address, port_value } }` in a message type (or null). */
const addressFields = new WeakMap<
  protobuf.Type,
  { address: number; socket: number; host: number; port: number } | null
>();
function addressFieldsOf(type: protobuf.Type) {
  let f = addressFields.get(type);
  if (f === undefined) {
    f = null;
    const address = type.fields.address;
    const addressType = address?.resolve().resolvedType;
    if (
      address &&
      !address.repeated &&
      addressType instanceof protobuf.Type &&
      addressType.fullName === '.envoy.config.core.v3.Address'
    ) {
      const socket = addressType.fields.socket_address;
      const socketType = socket.resolve().resolvedType as protobuf.Type;
      const host = socketType.fields.address;
      const port = socketType.fields.port_value;
      const ids = [address.id, socket.id, host.id, port.id];
      if (host.type === 'string' && port.type === 'uint32' && ids.every((id) => id <= 15))
        f = { address: address.id, socket: socket.id, host: host.id, port: port.id };
    }
    addressFields.set(type, f);
  }
  return f;
}

/**
 * The encoding of an overlay that is exactly `{address: {socket_address: {address, port_value}}}`
 * (a sidecar's listener at its own address: ten or so per sidecar), written directly; undefined
 * for any other overlay, which goes through protobufjs. Same bytes as protobufjs writes
 * (test/envoy-protos/encode.test.ts).
 */
function addressOverlay(type: protobuf.Type, overlay: Record<string, unknown>): Uint8Array | undefined {
  const only = (o: unknown, keys: readonly string[]): o is Record<string, unknown> => {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return false;
    let n = 0;
    for (const k in o) {
      if (!keys.includes(k)) return false;
      n++;
    }
    return n === keys.length;
  };
  if (!only(overlay, ['address']) || !only(overlay.address, ['socket_address'])) return undefined;
  const sa = overlay.address.socket_address;
  if (!only(sa, ['address', 'port_value'])) return undefined;
  const host = sa.address;
  const port = sa.port_value;
  // An empty host or port 0 is left to protobufjs (proto3 leaves defaults out, oneofs aside).
  if (typeof host !== 'string' || host === '' || typeof port !== 'number' || !Number.isInteger(port))
    return undefined;
  if (port <= 0 || port > 0xffffffff) return undefined;
  const f = addressFieldsOf(type);
  if (!f) return undefined;
  const hostLen = Buffer.byteLength(host, 'utf8');
  const socketLen = 1 + varintSize(hostLen) + hostLen + 1 + varintSize(port);
  const addressLen = 1 + varintSize(socketLen) + socketLen;
  const out = Buffer.allocUnsafe(1 + varintSize(addressLen) + addressLen);
  out[0] = (f.address << 3) | 2;
  let at = writeVarint(out, 1, addressLen);
  out[at++] = (f.socket << 3) | 2;
  at = writeVarint(out, at, socketLen);
  out[at++] = (f.host << 3) | 2;
  at = writeVarint(out, at, hostLen);
  at += out.write(host, at, 'utf8');
  out[at++] = f.port << 3;
  writeVarint(out, at, port);
  return out;
}

/**
 * An overlay's version: 64 bits (two FNV-1a-style lanes with different multipliers, murmur3-finalized) of the base's version
 * and the overlay's few bytes. A sidecar's overlays are thousands per connect storm; sha256's
 * per-call setup cost more than the whole encoding of the overlay.
 */
export function overlayVersion(baseVersion: string, own: Uint8Array): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < baseVersion.length; i++) {
    const c = baseVersion.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  a = Math.imul(a ^ 0x100, 0x01000193);
  b = Math.imul(b ^ 0x1ff, 0x5bd1e995);
  for (let i = 0; i < own.length; i++) {
    a = Math.imul(a ^ own[i], 0x01000193);
    b = Math.imul(b ^ own[i], 0x5bd1e995);
  }
  const hex = (h: number) => fmix32(h).toString(16).padStart(8, '0');
  return `o${hex(a)}${hex(b ^ 0x9e3779b9)}`;
}

/** murmur3's 32-bit finalizer (unsigned): spreads an FNV lane's weak high bits. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A resource whose bytes are `parts` one after the other, joined only when `value` is read. */
function fromParts(
  typeUrl: string,
  name: string,
  parts: readonly Buffer[],
  warms?: string,
  version = contentVersion(parts),
): EncodedResource {
  return new PartsResource(typeUrl, name, version, parts, warms);
}

/**
 * A resource held as parts (a class, not a literal with a getter: a sidecar's
 * overlays are ten-odd per sidecar, and a getter per object is a closure per object).
 */
class PartsResource implements EncodedResource {
  constructor(
    readonly typeUrl: string,
    readonly name: string,
    readonly version: string,
    readonly parts: readonly Buffer[],
    readonly warms: string | undefined,
  ) {}

  get value(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/**
 * One item of a resource's repeated message field (say, a RouteConfiguration's
 * virtual host), encoded on its own as a complete field entry (tag, length,
 * message), for encodeComposite: items shared by many resources are encoded once.
 */
export function encodeItem(typeUrl: string, field: string, obj: Record<string, unknown>): Buffer {
  const type = messageType(typeUrl);
  const f = type.fields[field];
  if (!f?.repeated)
    throw new ResourceEncodeError(typeUrl, field, `not a repeated field of ${type.fullName.slice(1)}`);
  const itemType = f.resolve().resolvedType;
  if (!(itemType instanceof protobuf.Type))
    throw new ResourceEncodeError(typeUrl, field, 'not a repeated message field');
  checkFields(itemType, obj, field, typeUrl);
  let bytes: Uint8Array;
  try {
    bytes = itemType.encode(itemType.fromObject(obj)).finish();
  } catch (err) {
    throw new ResourceEncodeError(typeUrl, field, (err as Error).message);
  }
  const w = protobuf.Writer.create();
  w.uint32((f.id << 3) | 2).uint32(bytes.length);
  return keepBytes(Buffer.concat([w.finish(), bytes]));
}

/**
 * A resource written as its head (every field but `field`) followed by the
 * entries of its repeated field `field`, each from encodeItem: protobuf
 * accepts fields in any order and concatenates repeated ones, so this is the
 * whole message, and entries shared with other resources are not copied.
 */
export function encodeComposite(
  typeUrl: string,
  head: Record<string, unknown>,
  field: string,
  entries: readonly Buffer[],
): EncodedResource {
  if (field in head)
    throw new ResourceEncodeError(typeUrl, field, 'the items go in entries, not in the head');
  const base = encodeResource(typeUrl, head);
  return fromParts(typeUrl, base.name, [base.value, ...entries]);
}

/** Decodes an Any payload to an object with proto field names; nested Anys get an '@type'. */
export function decodeResource(typeUrl: string, value: Uint8Array): Record<string, unknown> {
  const type = messageType(typeUrl);
  return type.toObject(type.decode(value), {
    longs: String,
    enums: String,
    json: true,
  }) as Record<string, unknown>;
}
