/**
 * What operability costs: license issuances per second with Prometheus metrics on and every request logged as
 * a JSON line to a file, against the same center with neither (no metrics registry, logging silent). The two
 * alternate, three runs each on the same ledger and load, medians compared.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LicenseCenter } from '../lib/center/center.js';
import type { StationKey } from '../lib/domain/index.js';
import { licenseLoad } from './center-load.js';
import { header, now, row, type BenchFigure } from './util.js';

const STATIONS = 8;
const REQUESTS = 1600;
const RUNS = 5;

/** CPU seconds a process has used (user + system), from /proc/PID/stat. */
function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

/** Issuances per second, and the center process's CPU ms per license (steadier than a rate on a shared machine). */
async function once(ledger: string, stations: StationKey[], mode: 'ops' | 'bare', logFile: string): Promise<{ rate: number; cpuMs: number }> {
  const child = spawn(process.execPath, [join('dist', 'test', 'center-fixtures', 'serve.js'), ledger, '0', mode, logFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => child.stdout!.once('data', (d) => resolve(String(d).trim())));
  try {
    const go = (total: number) => licenseLoad([url], stations, total);
    await go(160); // warm-up
    const c0 = cpuOf(child.pid!);
    const t0 = now();
    await go(REQUESTS);
    const rate = REQUESTS / ((now() - t0) / 1000);
    return { rate, cpuMs: ((cpuOf(child.pid!) - c0) * 1000) / REQUESTS };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

export async function run(figures: BenchFigure[] = []): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-ops-'));
  try {
    const ledger = join(dir, 'center.db');
    const c = await LicenseCenter.open(ledger);
    await c.registerContent({ contentId: 'APP', name: 'app', schemes: ['a', 'b'], price: 100 });
    const stations: StationKey[] = [];
    for (let i = 0; i < STATIONS; i++) stations.push(await c.addStation(`ops ${i}`));
    await c.close();
    const logFile = join(dir, 'center.log');
    const rates: Record<'ops' | 'bare', number[]> = { ops: [], bare: [] };
    const cpu: Record<'ops' | 'bare', number[]> = { ops: [], bare: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const mode of i % 2 ? (['ops', 'bare'] as const) : (['bare', 'ops'] as const)) {
        const r = await once(ledger, stations, mode, logFile);
        rates[mode].push(r.rate);
        cpu[mode].push(r.cpuMs);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    const [ops, bare] = [median(rates.ops), median(rates.bare)];
    const [opsCpu, bareCpu] = [median(cpu.ops), median(cpu.bare)];
    header(`center issuances/s with metrics and JSON request logs on vs off (${STATIONS} stations, SQLite; medians of ${RUNS} alternating runs; goal >= 0.95)`);
    const W = [22, 10, 8, 6, 16, 36];
    console.log(row(['mode', 'issued/s', 'ratio', 'goal', 'center CPU ms/lic', 'runs (issued/s)'], W));
    console.log(row(['metrics + JSON logs', Math.round(ops), ops / bare, 0.95, opsCpu.toFixed(3), rates.ops.map(Math.round).join(' ')], W));
    console.log(row(['neither (baseline)', Math.round(bare), 1, '', bareCpu.toFixed(3), rates.bare.map(Math.round).join(' ')], W));
    console.log(`  CPU-time ratio (baseline ms per license / with ops): ${(bareCpu / opsCpu).toFixed(2)} (the steadier figure where other work shares the cores)`);
    console.log(`  log written: ${(statSync(logFile).size / 1e6).toFixed(1)} MB`);
    figures.push({ name: 'center.ops_overhead', value: ops, unit: 'issued/s', baseline: bare, ratio: ops / bare, goal: 0.95 });
    figures.push({ name: 'center.ops_cpu', value: opsCpu, unit: 'CPU ms/license', baseline: bareCpu, ratio: bareCpu / opsCpu, goal: 0.95 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
