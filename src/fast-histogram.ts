// A Prometheus histogram for the hot paths: one observation per push, per ACK,
// per change and proxy (tens of thousands a second under churn). prom-client's
// Histogram checks and hashes the labels on every observe (~3 µs); here a child
// is bound once per label value and an observation is a bucket search and three
// additions. It registers with a prom-client Registry and is exposed like
// prom-client's own histograms (`_bucket` with `le`, `_sum`, `_count`).
import type { Registry } from 'prom-client';

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  /** Per bucket (not cumulative); the last one is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export interface FastHistogramOptions {
  readonly name: string;
  readonly help: string;
  /** The one label, if any. */
  readonly labelName?: string;
  /** Upper bounds, ascending. */
  readonly buckets: readonly number[];
  readonly registers: readonly Registry[];
}

export class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(private readonly o: FastHistogramOptions) {
    for (let i = 1; i < o.buckets.length; i++)
      if (!(o.buckets[i] > o.buckets[i - 1])) throw new Error(`${o.name}: buckets must ascend`);
    this.name = o.name;
    this.help = o.help;
    for (const r of o.registers)
      r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** An observe function for one label value (no label: the empty string). */
  child(labelValue = ''): (value: number) => void {
    let s = this.series.get(labelValue);
    if (!s) {
      s = {
        labels: this.o.labelName ? { [this.o.labelName]: labelValue } : {},
        counts: new Float64Array(this.o.buckets.length + 1),
        sum: 0,
        count: 0,
      };
      this.series.set(labelValue, s);
    }
    const series = s;
    const bounds = this.o.buckets;
    return (value: number) => {
      if (!Number.isFinite(value)) return;
      let i = 0;
      while (i < bounds.length && value > bounds[i]) i++;
      series.counts[i]++;
      series.sum += value;
      series.count++;
    };
  }

  /** What prom-client's Registry reads. */
  async get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const s of this.series.values()) {
      let acc = 0;
      this.o.buckets.forEach((le, i) => {
        acc += s.counts[i];
        values.push({ labels: { le, ...s.labels }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    for (const s of this.series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
