// The hot-path histogram is exposed exactly as prom-client's own Histogram.
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from '../src/fast-histogram';
import { seededRandom } from './support/random';

describe('FastHistogram', () => {
  const buckets = [0.005, 0.01, 0.1, 1, 10];

  it('gives the same exposition and JSON as prom-client for the same observations', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const reference = new Histogram({
      name: 'x_seconds',
      help: 'h',
      labelNames: ['type'],
      buckets,
      registers: [theirs],
    });
    const fast = new FastHistogram({
      name: 'x_seconds',
      help: 'h',
      labelName: 'type',
      buckets,
      registers: [ours],
    });
    const next = seededRandom(7);
    const random = () => next() / 2 ** 31;
    const children = new Map(['clusters', 'listeners'].map((t) => [t, fast.child(t)]));
    for (let i = 0; i < 500; i++) {
      const type = random() < 0.3 ? 'listeners' : 'clusters';
      // Values on bucket bounds too: `le` is inclusive.
      const v = random() < 0.2 ? buckets[Math.floor(random() * buckets.length)] : random() ** 3 * 20;
      reference.observe({ type }, v);
      children.get(type)!(v);
    }
    // The same lines; the order of the label sets is not part of the format (prom-client lists them
    // in the order first observed, FastHistogram in the order its children were made).
    const text = async (r: Registry) => {
      const lines = (await r.metrics()).split('\n');
      return [...lines.filter((l) => l.startsWith('#')), ...lines.filter((l) => !l.startsWith('#')).sort()];
    };
    assert.deepEqual(await text(ours), await text(theirs));
    // The JSON too, but for prom-client's (empty) exemplar slots.
    const json = async (r: Registry) => {
      const all = JSON.parse(
        JSON.stringify(await r.getMetricsAsJSON(), (k, v) => (k === 'exemplar' ? undefined : v)),
      ) as { values: { metricName: string; labels: Record<string, unknown>; value: number }[] }[];
      const sample = (v: (typeof all)[number]['values'][number]) =>
        `${v.metricName} ${JSON.stringify(Object.entries(v.labels).sort())} ${v.value}`;
      for (const m of all) (m as { values: unknown[] }).values = m.values.map(sample).sort();
      return all;
    };
    assert.deepEqual(await json(ours), await json(theirs));
  });

  it('without a label, and reset', async () => {
    const ours = new Registry();
    const fast = new FastHistogram({ name: 'y_seconds', help: 'h', buckets, registers: [ours] });
    const observe = fast.child();
    observe(0.02);
    observe(Number.NaN); // not counted
    const text = await ours.metrics();
    assert.match(text, /^y_seconds_bucket\{le="0\.01"\} 0$/m);
    assert.match(text, /^y_seconds_bucket\{le="0\.1"\} 1$/m);
    assert.match(text, /^y_seconds_bucket\{le="\+Inf"\} 1$/m);
    assert.match(text, /^y_seconds_sum 0\.02$/m);
    assert.match(text, /^y_seconds_count 1$/m);
    ours.resetMetrics();
    assert.match(await ours.metrics(), /^y_seconds_count 0$/m);
  });

  it('refuses buckets that do not ascend', () => {
    assert.throws(
      () => new FastHistogram({ name: 'z', help: 'h', buckets: [1, 1], registers: [] }),
      /z: buckets must ascend/,
    );
  });
});
