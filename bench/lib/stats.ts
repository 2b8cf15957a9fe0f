// Percentiles, medians and a compact latency histogram for pooling many samples.

/** Nearest-rank percentile of unsorted values; null for none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export function median(values: readonly (number | null | undefined)[]): number | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function max(values: readonly (number | null | undefined)[]): number | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length === 0 ? null : Math.max(...v);
}

export function round(x: number | null | undefined, digits = 1): number | null {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * Latency histogram: 1 ms buckets up to 1 s, then 10 ms up to 10 s, then 100 ms
 * up to 10 min (values above land in the last bucket). Bucket upper bounds are
 * reported, so percentiles are exact to the bucket width.
 */
export class Histogram {
  private readonly counts = new Uint32Array(1000 + 900 + 5900 + 1);
  n = 0;
  maxValue = 0;

  private static index(ms: number): number {
    const v = Math.max(0, ms);
    if (v < 1000) return Math.floor(v);
    if (v < 10_000) return 1000 + Math.floor((v - 1000) / 10);
    return Math.min(1900 + Math.floor((v - 10_000) / 100), 1900 + 5900);
  }

  private static upper(i: number): number {
    if (i < 1000) return i + 1;
    if (i < 1900) return 1000 + (i - 1000 + 1) * 10;
    return 10_000 + (i - 1900 + 1) * 100;
  }

  add(ms: number): void {
    this.counts[Histogram.index(ms)]++;
    this.n++;
    if (ms > this.maxValue) this.maxValue = ms;
  }

  percentile(p: number): number | null {
    if (this.n === 0) return null;
    const rank = Math.min(this.n, Math.max(1, Math.ceil((p / 100) * this.n)));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(Histogram.upper(i), this.maxValue);
    }
    return this.maxValue;
  }
}
