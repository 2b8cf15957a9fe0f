// A seeded pseudo-random sequence (a linear congruential generator), for
// bounded random walks in tests that must replay the same way every run.

/** Returns a function giving the next non-negative integer of the sequence. */
export function seededRandom(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s;
  };
}
