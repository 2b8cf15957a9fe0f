// Plain-text output helpers for meshctl: aligned tables (kubectl style, three
// spaces between columns, no trailing spaces) and short ages. No I/O.

/**
 * Formats rows under a header, each column as wide as its widest cell.
 * @example formatTable(['NAME', 'PORT'], [['web', '80']]) === 'NAME   PORT\nweb    80\n'
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) =>
      header
        .map((_, i) => (i === header.length - 1 ? (r[i] ?? '') : (r[i] ?? '').padEnd(widths[i]!)))
        .join('   ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/**
 * The time since `iso` as one unit, kubectl style: 42s, 5m, 3h, 12d; `<unknown>` when unparsable.
 * @example age('2024-01-01T00:00:00Z', Date.parse('2024-01-01T00:05:00Z')) === '5m'
 */
export function age(iso: unknown, now: number = Date.now()): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : Number.NaN;
  if (Number.isNaN(t)) return '<unknown>';
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 120 * 60) return `${Math.floor(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}
