// Long-lived bytes leave Node's shared Buffer pool (one kept slice would pin a whole slab).
import assert from 'node:assert/strict';
import { keepBytes } from '../../envoy-protos';

describe('envoy-protos: keepBytes', () => {
  it('copies small pooled buffers into slabs of their own, byte for byte', () => {
    const pooled = Buffer.from('a listener address: 127.1.2.3:9000');
    assert.ok(pooled.buffer.byteLength > pooled.length, 'Node pools small buffers');
    const kept = keepBytes(pooled);
    assert.deepEqual(kept, pooled);
    assert.notEqual(kept.buffer, pooled.buffer);
    // Already kept: the same bytes, no copy.
    assert.equal(keepBytes(kept), kept);
    // Many small ones share a slab, and a full slab gives way to a new one.
    const many = Array.from({ length: 3000 }, (_, i) =>
      keepBytes(Buffer.from(`entry-${i}-${'x'.repeat(i % 50)}`)),
    );
    for (const [i, b] of many.entries()) assert.equal(b.toString(), `entry-${i}-${'x'.repeat(i % 50)}`);
    const slabs = new Set(many.map((b) => b.buffer));
    assert.ok(slabs.size > 1 && slabs.size < 10, `${slabs.size} slabs`);
    assert.ok(!slabs.has(pooled.buffer));
  });

  it('gives a large buffer its own ArrayBuffer, and keeps one that already has it', () => {
    const whole = Buffer.alloc(10_000, 1);
    assert.equal(keepBytes(whole), whole);
    const slice = whole.subarray(100, 5_100);
    const kept = keepBytes(slice);
    assert.deepEqual(kept, slice);
    assert.equal(kept.buffer.byteLength, 5_000);
    const u8 = new Uint8Array([1, 2, 3]);
    assert.deepEqual([...keepBytes(u8)], [1, 2, 3]);
  });
});
