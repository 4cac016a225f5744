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
  /** The ratio meets its goal by staying at or under it (memory, time per page), not by reaching it. */
  lowerIsBetter?: boolean;
}

/**
 * Runs `f`; its rate in MB per second of this process's CPU time (user + system, every thread: GC helpers
 * included) and of the wall clock. The work measured is CPU-bound and does no I/O: CPU time is what it costs,
 * and — unlike the wall clock on a shared 2-core machine — it does not count the time other processes ran.
 */
export async function timed(bytes: number, f: () => void | Promise<void>): Promise<{ cpu: number; wall: number }> {
  const c0 = process.cpuUsage();
  const t0 = now();
  await f();
  const wall = now() - t0;
  const c = process.cpuUsage(c0);
  return { cpu: mbps(bytes, (c.user + c.system) / 1000), wall: mbps(bytes, wall) };
}
