// Tests of duration strings: the accepted forms, parseDurationMs, and what is rejected.
// Depends only on the model.
import assert from 'node:assert/strict';
import { durationSchema, isDuration, parseDurationMs, positiveDurationSchema } from '../../src/model';

describe('durations', () => {
  const good: [string, number][] = [
    ['0s', 0],
    ['250ms', 250],
    ['2s', 2000],
    ['1m', 60_000],
    ['24h', 86_400_000],
    ['1m30s', 90_000],
    ['2s500ms', 2500],
    ['1h2m3s4ms', 3_723_004],
    ['90s', 90_000],
  ];
  for (const [s, ms] of good) {
    it(`${s} is ${ms} ms`, () => {
      assert.equal(isDuration(s), true);
      assert.equal(parseDurationMs(s), ms);
      assert.equal(durationSchema.safeParse(s).success, true);
    });
  }

  const bad = [
    '',
    '5',
    '1.5s',
    '-1s',
    '1d',
    '30s1m',
    '1m1m',
    ' 1s',
    '1s ',
    '1 s',
    'ms',
    '1S',
    '99999999999999999999h',
  ];
  for (const s of bad) {
    it(`${JSON.stringify(s)} is rejected`, () => {
      assert.equal(isDuration(s), false);
      assert.throws(() => parseDurationMs(s), RangeError);
      const r = durationSchema.safeParse(s);
      assert.equal(r.success, false);
      assert.equal(r.error?.issues.length, 1, JSON.stringify(r.error?.issues));
    });
  }

  it('a positive duration rejects zero but not 1ms', () => {
    assert.deepEqual(
      positiveDurationSchema.safeParse('0ms').error?.issues.map((i) => i.message),
      ['must be greater than 0'],
    );
    assert.equal(positiveDurationSchema.safeParse('1ms').success, true);
  });
});
