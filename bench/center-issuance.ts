/**
 * Durable license issuances per second over loopback HTTP (center in its own process, stations here)
 * with 1, 8 and 32 concurrent stations, against the raw SQLite single-row durable insert rate
 * (WAL, synchronous=FULL, one transaction per row) measured in the same run on the same disk.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LicenseCenter } from '../lib/center/center.js';
import { HttpCenterClient } from '../lib/center/http-client.js';
import { header, now, row } from './util.js';

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

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-'));
  const ledger = join(dir, 'center.db');
  const c = await LicenseCenter.open(ledger);
  await c.registerContent({ contentId: 'APP', name: 'app', schemes: ['a', 'b'], price: 100 });
  const stations = [];
  for (let i = 0; i < 32; i++) stations.push(await c.addStation(`bench ${i}`));
  await c.close();
  const child = spawn(process.execPath, [join('dist', 'test', 'center-fixtures', 'serve.js'), ledger, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => child.stdout!.once('data', (d) => resolve(String(d).trim())));
  try {
    const raw = rawInsertRate(dir);
    header('durable license issuances over loopback HTTP (per second; ratio = against raw single-row durable SQLite inserts)');
    console.log(row(['stations', 'issued/s', 'ratio', 'requests'], [10, 10, 8, 10]));
    console.log(row(['raw SQLite', Math.round(raw), 1, 2000], [10, 10, 8, 10]));
    for (const conc of [1, 8, 32]) {
      const clients = stations.slice(0, conc).map((s) => new HttpCenterClient(url, s));
      const total = conc === 1 ? 1000 : 3000;
      let left = total;
      const t0 = now();
      await Promise.all(clients.map(async (cl) => {
        while (left-- > 0) await cl.requestLicense({ requestId: randomUUID(), scheme: left % 2 ? 'a' : 'b', contentId: 'APP', mediumId: randomBytes(8).toString('hex') });
      }));
      const rate = total / ((now() - t0) / 1000);
      console.log(row([conc, Math.round(rate), rate / raw, total], [10, 10, 8, 10]));
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
