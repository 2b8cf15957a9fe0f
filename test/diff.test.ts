// Unit tests of the unified diff.
import assert from 'node:assert/strict';
import { unifiedDiff } from '../src/diff';

describe('diff: unified line diff', () => {
  it('is empty for equal texts', () => assert.equal(unifiedDiff('a\nb', 'a\nb'), ''));
  it('shows a changed line with context and hunk header', () => {
    const d = unifiedDiff('a\nb\nc\nd', 'a\nb\nX\nd', { from: 'old', to: 'new', context: 1 });
    assert.equal(d, ['--- old', '+++ new', '@@ -2,3 +2,3 @@', ' b', '-c', '+X', ' d'].join('\n'));
  });
  it('handles additions and removals at the ends', () => {
    assert.equal(
      unifiedDiff('a', 'a\nb', { context: 0 }),
      ['--- a', '+++ b', '@@ -2,0 +2,1 @@', '+b'].join('\n'),
    );
    assert.equal(
      unifiedDiff('a\nb', 'b', { context: 0 }),
      ['--- a', '+++ b', '@@ -1,1 +1,0 @@', '-a'].join('\n'),
    );
  });
  it('splits far-apart changes into separate hunks', () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i}`);
    const b = [...a];
    b[1] = 'X';
    b[18] = 'Y';
    const d = unifiedDiff(a.join('\n'), b.join('\n'), { context: 1 });
    assert.equal(d.split('\n').filter((l) => l.startsWith('@@')).length, 2);
  });
});
