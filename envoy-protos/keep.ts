// Bytes that live as long as a resource does (encodings, response entries) are
// copied into slabs of their own. Node hands out small Buffers as slices of a
// shared 8 KiB pool; one long-lived slice keeps its whole pool slab alive, and
// the other slices of that slab are mostly short-lived (request decoding,
// response heads). Thousands of proxies' own small buffers (a listener's
// address, an entry's header) then pin megabytes of dead pool. Here long-lived
// bytes sit together, so a slab holds what lives, until the resources go.
const SLAB_BYTES = 64 * 1024;
/** Larger buffers get an ArrayBuffer of their own (Node's pool only serves < 4 KiB). */
const SMALL = 4096;

const slabs = new WeakSet<ArrayBufferLike>();
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let used = 0;
slabs.add(slab.buffer);

/** The bytes of `b` where they may live long: `b` itself when it is already so placed. */
export function keepBytes(b: Uint8Array): Buffer {
  if (slabs.has(b.buffer)) return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
  if (b.length >= SMALL) {
    if (b.byteOffset === 0 && b.buffer.byteLength === b.length)
      return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, 0, b.length);
    const own = Buffer.allocUnsafeSlow(b.length);
    own.set(b);
    return own;
  }
  if (used + b.length > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabs.add(slab.buffer);
    used = 0;
  }
  const out = slab.subarray(used, used + b.length);
  out.set(b);
  // 8-byte aligned, like Node's pool.
  used += (b.length + 7) & ~7;
  return out;
}
