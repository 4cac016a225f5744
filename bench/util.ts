/** Bench helpers: timing, formatting. Benchmarks print ratios against a baseline measured in the same run. */
export function now(): number {
  return performance.now();
}
export function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}
export function row(cols: Array<string | number>, widths: number[]): string {
  return cols.map((c, i) => String(typeof c === 'number' ? (Number.isInteger(c) ? c : c.toFixed(2)) : c).padEnd(widths[i] ?? 12)).join(' ');
}
export function header(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}

/** One figure as `npm run bench -- --json FILE` writes it: a value, its same-run baseline, their ratio, the goal. */
export interface BenchFigure {
  name: string;
  value: number;
  unit: string;
  baseline: number;
  ratio: number;
  goal: number | null;
}
