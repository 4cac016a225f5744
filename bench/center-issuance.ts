/**
 * Durable license issuances per second over loopback HTTP (center in its own process, stations here)
 * with 1, 8 and 32 concurrent stations, against the raw SQLite single-row durable insert rate
 * (WAL, synchronous=FULL, one transaction per row) measured in the same run on the same disk.
 *
 * Twice: on this machine's disk as it is, and on the same disk with every fsync made 2 ms longer
 * (bench/fsync-delay.c, LD_PRELOAD, for the baseline and the center alike), as on a disk whose cache
 * flush dominates. The first is the headline (center.stationsN); the second shows what the group commit
 * is for, where a machine's fsync is cheap next to its CPU per request.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LicenseCenter } from '../lib/center/center.js';
import type { StationKey } from '../lib/domain/index.js';
import { licenseLoad } from './center-load.js';
import { rawInsertRate } from './raw-sqlite.js';
import { header, row, type BenchFigure } from './util.js';

/** Issue 12's goals, as ratios to the raw durable single-row SQLite rate. */
const GOALS: Record<number, number> = { 1: 0.3, 8: 1.0, 32: 1.5 };
/** What the emulated slow disk adds to each fsync. */
const SLOW_FSYNC_US = 2000;
const here = fileURLToPath(new URL('.', import.meta.url));

async function startCenter(ledger: string, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [join('dist', 'test', 'center-fixtures', 'serve.js'), ledger, '0'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const url = await new Promise<string>((resolve) => child.stdout!.once('data', (d) => resolve(String(d).trim())));
  return { url, stop: async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); } };
}

/** The fsync shim, built with the system's C compiler; undefined (with why) where there is none. */
function buildShim(dir: string): { so?: string; why?: string } {
  const so = join(dir, 'fsync-delay.so');
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', so, join(here, 'fsync-delay.c'), '-ldl'], { stdio: 'pipe' });
    return { so };
  } catch (e) {
    return { why: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no C compiler (cc): apt-get install build-essential' : `cc failed: ${(e as Error).message.split('\n')[0]}` };
  }
}

async function measure(title: string, dir: string, ledger: string, stations: StationKey[], env: NodeJS.ProcessEnv, names: string, figures: BenchFigure[]): Promise<void> {
  // The group commit with its fsync off the event loop, and with the fsync inside COMMIT (before), on the same
  // ledger in the same run.
  const adaptive = await startCenter(ledger, env);
  const fixed = await startCenter(ledger, { ...env, MOCOPY_WAL_SYNC: 'in-commit' });
  try {
    const raw = env.LD_PRELOAD
      ? Number(execFileSync(process.execPath, ['--import', 'tsx', join(here, 'raw-sqlite.ts'), dir, '500'], { env: { ...process.env, ...env }, encoding: 'utf8' }).trim())
      : rawInsertRate(dir);
    header(title);
    const W = [10, 10, 8, 6, 10, 20, 10];
    console.log(row(['stations', 'issued/s', 'ratio', 'goal', 'p99 ms', 'fsync in COMMIT /s', 'requests'], W));
    console.log(row(['raw SQLite', Math.round(raw), 1, '', '', '', env.LD_PRELOAD ? 500 : 2000], W));
    for (const conc of [1, 8, 32]) {
      const total = conc === 1 ? (env.LD_PRELOAD ? 300 : 1000) : 3000;
      const a = await licenseLoad([adaptive.url], stations.slice(0, conc), total);
      const f = await licenseLoad([fixed.url], stations.slice(0, conc), total);
      const goal = GOALS[conc]!;
      console.log(row([conc, Math.round(a.rate), `${(a.rate / raw).toFixed(2)}${a.rate / raw < goal ? '*' : ''}`, goal, a.p99, `${Math.round(f.rate)} (${(a.rate / f.rate).toFixed(2)}x)`, total], W));
      figures.push({ name: `center.stations${conc}${names}`, value: a.rate, unit: 'issued/s', baseline: raw, ratio: a.rate / raw, goal });
    }
    console.log('  * below its goal. (Nx) = the fsync on the libuv pool against the fsync inside COMMIT on the event loop.');
  } finally {
    await adaptive.stop();
    await fixed.stop();
  }
}

export async function run(figures: BenchFigure[] = []): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-'));
  const ledger = join(dir, 'center.db');
  const c = await LicenseCenter.open(ledger);
  await c.registerContent({ contentId: 'APP', name: 'app', schemes: ['a', 'b'], price: 100 });
  const stations: StationKey[] = [];
  for (let i = 0; i < 32; i++) stations.push(await c.addStation(`bench ${i}`));
  await c.close();
  try {
    await measure('durable license issuances over loopback HTTP (per second; ratio = against raw single-row durable SQLite inserts, same run)', dir, ledger, stations, {}, '', figures);
    const shim = buildShim(dir);
    const title = `the same on an emulated slow disk: every fsync ${SLOW_FSYNC_US / 1000} ms longer (bench/fsync-delay.c, baseline and center alike)`;
    if (shim.so) {
      await measure(title, dir, ledger, stations, { LD_PRELOAD: shim.so, MOCOPY_FSYNC_DELAY_US: String(SLOW_FSYNC_US) }, '.slowfsync', figures);
    } else {
      header(title);
      console.log(`  not run: ${shim.why}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
