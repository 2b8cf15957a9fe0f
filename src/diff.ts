// A small line-based unified diff (longest common subsequence), for showing
// what a change does to documents and Envoy resources. Pure.

/** `a` and `b` as a unified diff with `context` lines around each change; '' when equal. */
export function unifiedDiff(
  a: string,
  b: string,
  o: { from?: string; to?: string; context?: number } = {},
): string {
  const x = a.split('\n');
  const y = b.split('\n');
  if (a === b) return '';
  // LCS table, bounded: beyond this size fall back to a whole replacement.
  if (x.length * y.length > 4_000_000) {
    return [
      `--- ${o.from ?? 'a'}`,
      `+++ ${o.to ?? 'b'}`,
      ...x.map((l) => `-${l}`),
      ...y.map((l) => `+${l}`),
    ].join('\n');
  }
  const n = x.length;
  const m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops: { op: ' ' | '-' | '+'; line: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      ops.push({ op: ' ', line: x[i] });
      i++;
      j++;
    } else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.push({ op: '-', line: x[i++] });
    } else {
      ops.push({ op: '+', line: y[j++] });
    }
  }
  const context = o.context ?? 3;
  const out = [`--- ${o.from ?? 'a'}`, `+++ ${o.to ?? 'b'}`];
  let k = 0;
  while (k < ops.length) {
    if (ops[k].op === ' ') {
      k++;
      continue;
    }
    let start = Math.max(0, k - context);
    let end = k;
    // Extend the hunk while changes are within 2 * context lines of each other.
    for (let q = k; q < ops.length; q++) {
      if (ops[q].op !== ' ') end = q;
      else if (q - end > 2 * context) break;
    }
    end = Math.min(ops.length - 1, end + context);
    const oldStart = ops.slice(0, start).filter((p) => p.op !== '+').length + 1;
    const newStart = ops.slice(0, start).filter((p) => p.op !== '-').length + 1;
    const hunk = ops.slice(start, end + 1);
    out.push(
      `@@ -${oldStart},${hunk.filter((p) => p.op !== '+').length} +${newStart},${hunk.filter((p) => p.op !== '-').length} @@`,
    );
    for (const p of hunk) out.push(`${p.op}${p.line}`);
    k = end + 1;
    start = k;
  }
  return out.join('\n');
}
