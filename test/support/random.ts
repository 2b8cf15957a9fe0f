// A seeded pseudo-random sequence (mulberry32), for bounded random walks in tests
// that must replay the same way every run. Every bit of its output is usable: a
// walk that takes `next() % 4` gets all four values evenly (the low bits of a
// power-of-two linear congruential generator repeat with a period of four).

/** Returns a function giving the next integer of the sequence, in [0, 2^31). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) >>> 1;
  };
}
