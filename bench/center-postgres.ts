/**
 * License issuances per second on PostgreSQL with 1, 2 and 4 center instances (each its own process) on one
 * database, 32 stations with one request in flight each, against one SQLite instance under the same load in
 * the same run. Also prints how busy the machine's CPUs were, which is what limits scaling on a small host:
 * the stations, the instances and PostgreSQL share the same cores.
 * Run: node --import tsx bench/center-postgres.ts (needs Debian's postgresql; `npm run bench` includes it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LicenseCenter } from '../lib/center/center.js';
import type { StationKey } from '../lib/domain/index.js';
import { PgServer, postgresBinDir } from '../test/helpers/postgres.js';
import { licenseLoad } from './center-load.js';
import { header, row, type BenchFigure } from './util.js';

const STATIONS = 32;
const REQUESTS = 3200;

function startInstance(ledger: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join('dist', 'test', 'center-fixtures', 'serve.js'), ledger, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.once('data', (d) => resolve({ child, url: String(d).trim() }));
    child.once('exit', (code) => reject(new Error(`center instance exited early (${code})`)));
  });
}

/** Busy and total jiffies of all CPUs, from /proc/stat. */
function cpuTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

const TICK = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used, from /proc/PID/stat; 0 if it is gone. */
function cpuOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICK;
  } catch {
    return 0;
  }
}

/** The postmaster and its children (the backends serving the instances). */
function postgresPids(postmaster: number): number[] {
  const out = [postmaster];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) out.push(Number(d));
    } catch { /* exited */ }
  }
  return out;
}

interface Split { stations: number; instances: number; postgres: number }

async function prepare(ledger: string): Promise<StationKey[]> {
  const c = await LicenseCenter.open(ledger);
  try {
    await c.registerContent({ contentId: 'APP', name: 'app', schemes: ['a', 'b'], price: 100 });
    const out: StationKey[] = [];
    for (let i = 0; i < STATIONS; i++) out.push(await c.addStation(`bench ${i}`));
    return out;
  } finally {
    await c.close();
  }
}

/** Closed loop: each station sends its next request when the last is answered, to the instance it is assigned. */
async function load(urls: string[], stations: StationKey[], total: number): Promise<{ rate: number; p99: number; cpu: number; ms: number }> {
  const c0 = cpuTicks();
  const r = await licenseLoad(urls, stations, total);
  const c1 = cpuTicks();
  return { ...r, cpu: (c1.busy - c0.busy) / Math.max(1, c1.total - c0.total) };
}

type Measured = { rate: number; p99: number; cpu: number; split: Split };

/** CPU ms per license of the stations (this process), the instances and PostgreSQL. */
async function measure(ledger: string, instances: number, postmaster?: number): Promise<Measured> {
  const stations = await prepare(ledger);
  const running = [];
  for (let i = 0; i < instances; i++) running.push(await startInstance(ledger));
  try {
    const urls = running.map((r) => r.url);
    await load(urls, stations, 320); // warm-up: connections, prepared statements, JIT
    const pgPids = postmaster ? postgresPids(postmaster) : [];
    const before = { me: process.cpuUsage(), inst: running.reduce((n, r) => n + cpuOf(r.child.pid!), 0), pg: pgPids.reduce((n, p) => n + cpuOf(p), 0) };
    const r = await load(urls, stations, REQUESTS);
    const me = process.cpuUsage(before.me);
    const per = (sec: number) => (sec * 1000) / REQUESTS;
    const split = {
      stations: per((me.user + me.system) / 1e6),
      instances: per(running.reduce((n, x) => n + cpuOf(x.child.pid!), 0) - before.inst),
      postgres: postmaster ? per(postgresPids(postmaster).reduce((n, p) => n + cpuOf(p), 0) - before.pg) : 0,
    };
    return { rate: r.rate, p99: r.p99, cpu: r.cpu, split };
  } finally {
    for (const r of running) {
      r.child.kill('SIGTERM');
      await new Promise((res) => r.child.once('exit', res));
    }
  }
}

export async function run(figures: BenchFigure[] = []): Promise<void> {
  header(`license center on PostgreSQL: issuances/s with 1, 2, 4 instances, ${STATIONS} stations (ratio = against 1 instance on PostgreSQL; SQLite single instance in the same run)`);
  if (!postgresBinDir()) {
    console.log('  not run: PostgreSQL server binaries missing (apt-get install postgresql, or npm run setup:system)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-pg-'));
  const pg = await PgServer.start('bench');
  try {
    const sqlite = await measure(join(dir, 'center.db'), 1);
    const pgRates: Array<[number, Measured]> = [];
    for (const n of [1, 2, 4]) pgRates.push([n, await measure(await pg.freshLedger(), n, pg.pid())]);
    const base = pgRates[0]![1].rate;
    const W = [10, 10, 10, 9, 10, 8, 9, 30];
    const split = (s: Split) => `${s.stations.toFixed(2)} / ${s.instances.toFixed(2)} / ${s.postgres ? s.postgres.toFixed(2) : '-'}`;
    console.log(row(['ledger', 'instances', 'issued/s', 'vs 1 PG', 'vs SQLite', 'p99 ms', 'CPU busy', 'CPU ms/license: stations / centers / PostgreSQL'], W));
    console.log(row(['SQLite', 1, Math.round(sqlite.rate), sqlite.rate / base, 1, sqlite.p99, `${Math.round(sqlite.cpu * 100)}%`, split(sqlite.split)], W));
    for (const [n, r] of pgRates) {
      console.log(row(['PostgreSQL', n, Math.round(r.rate), r.rate / base, r.rate / sqlite.rate, r.p99, `${Math.round(r.cpu * 100)}%`, split(r.split)], W));
      figures.push({ name: `center.postgres.instances${n}`, value: r.rate, unit: 'issued/s', baseline: base, ratio: r.rate / base, goal: n === 2 ? 1.3 : null });
    }
    figures.push({ name: 'center.sqlite.stations32', value: sqlite.rate, unit: 'issued/s', baseline: base, ratio: sqlite.rate / base, goal: null });
    const two = pgRates[1]![1];
    console.log(`  2 instances: ${(two.rate / base).toFixed(2)}x one instance (goal 1.3x); the CPUs were ${Math.round(two.cpu * 100)}% busy with stations, instances and PostgreSQL sharing ${(await import('node:os')).cpus().length} cores`);
  } finally {
    pg.stopNow();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
