// Protobuf wire pieces written by hand where protobufjs would cost too much per call:
// varints and runs of length-delimited string fields (tag byte, length, UTF-8 bytes).

/** How many bytes the varint of `n` takes. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes the varint of `n` at `at`; returns the position after it. */
export function writeVarint(buf: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/** Length-delimited string fields as [tag byte, value] pairs. */
export type StringFields = readonly (readonly [number, string])[];

/** The encoded size of `fields`. */
export function stringFieldsSize(fields: StringFields): number {
  let n = 0;
  for (const [, v] of fields) {
    const len = Buffer.byteLength(v, 'utf8');
    n += 1 + varintSize(len) + len;
  }
  return n;
}

/** Writes `fields` at `at`; returns the position after them. */
export function writeStringFields(buf: Buffer, at: number, fields: StringFields): number {
  for (const [tag, v] of fields) {
    buf[at++] = tag;
    at = writeVarint(buf, at, Buffer.byteLength(v, 'utf8'));
    at += buf.write(v, at, 'utf8');
  }
  return at;
}

/** `fields`, in one buffer. */
export function stringFields(fields: StringFields): Buffer {
  const out = Buffer.allocUnsafe(stringFieldsSize(fields));
  writeStringFields(out, 0, fields);
  return out;
}
