/**
 * Durable license issuances per second over loopback HTTP (center in its own process, stations here)
 * with 1, 8 and 32 concurrent stations, against the raw SQLite single-row durable insert rate
 * (WAL, synchronous=FULL, one transaction per row) measured in the same run on the same disk.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LicenseCenter } from '../lib/center/center.js';
import type { StationKey } from '../lib/domain/index.js';
import { licenseLoad } from './center-load.js';
import { header, now, row, type BenchFigure } from './util.js';

/** Issue 12's goals, as ratios to the raw durable single-row SQLite rate. */
const GOALS: Record<number, number> = { 1: 0.3, 8: 1.0, 32: 1.5 };

function rawInsertRate(dir: string, n = 2000): number {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT)');
  const ins = db.prepare('INSERT INTO t (id, body) VALUES (?, ?)');
  const t0 = now();
  for (let i = 0; i < n; i++) db.transaction(() => ins.run(randomUUID(), 'x'.repeat(400)))();
  const rate = n / ((now() - t0) / 1000);
  db.close();
  return rate;
}

async function startCenter(ledger: string, walSync?: 'in-commit') {
  const env = { ...process.env, ...(walSync ? { MOCOPY_WAL_SYNC: walSync } : {}) };
  const child = spawn(process.execPath, [join('dist', 'test', 'center-fixtures', 'serve.js'), ledger, '0'], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const url = await new Promise<string>((resolve) => child.stdout!.once('data', (d) => resolve(String(d).trim())));
  return { url, stop: async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); } };
}

export async function run(figures: BenchFigure[] = []): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-'));
  const ledger = join(dir, 'center.db');
  const c = await LicenseCenter.open(ledger);
  await c.registerContent({ contentId: 'APP', name: 'app', schemes: ['a', 'b'], price: 100 });
  const stations: StationKey[] = [];
  for (let i = 0; i < 32; i++) stations.push(await c.addStation(`bench ${i}`));
  await c.close();
  // The group commit with its fsync off the event loop, and with the fsync inside COMMIT (before), on the same
  // ledger in the same run.
  const adaptive = await startCenter(ledger);
  const fixed = await startCenter(ledger, 'in-commit');
  try {
    const raw = rawInsertRate(dir);
    header('durable license issuances over loopback HTTP (per second; ratio = against raw single-row durable SQLite inserts, same run)');
    const W = [10, 10, 8, 6, 10, 20, 10];
    console.log(row(['stations', 'issued/s', 'ratio', 'goal', 'p99 ms', 'fsync in COMMIT /s', 'requests'], W));
    console.log(row(['raw SQLite', Math.round(raw), 1, '', '', '', 2000], W));
    for (const conc of [1, 8, 32]) {
      const total = conc === 1 ? 1000 : 3000;
      const a = await licenseLoad([adaptive.url], stations.slice(0, conc), total);
      const f = await licenseLoad([fixed.url], stations.slice(0, conc), total);
      const goal = GOALS[conc]!;
      console.log(row([conc, Math.round(a.rate), `${(a.rate / raw).toFixed(2)}${a.rate / raw < goal ? '*' : ''}`, goal, a.p99, `${Math.round(f.rate)} (${(a.rate / f.rate).toFixed(2)}x)`, total], W));
      figures.push({ name: `center.stations${conc}`, value: a.rate, unit: 'issued/s', baseline: raw, ratio: a.rate / raw, goal });
    }
    console.log('  * below its goal. (Nx) = the fsync on the libuv pool against the fsync inside COMMIT on the event loop.');
  } finally {
    await adaptive.stop();
    await fixed.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
