/**
 * The center benchmarks' baseline: single-row durable SQLite transactions per second (WAL, synchronous=FULL, one
 * transaction per row, so one fsync each) on the disk under `dir`. Run as a script (`raw-sqlite.ts DIR [N]`) it
 * prints the rate, for a child process under bench/fsync-delay.c.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { now } from './util.js';

export function rawInsertRate(dir: string, n = 2000): number {
  const db = new Database(join(dir, `raw-${process.pid}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, body TEXT)');
  const ins = db.prepare('INSERT INTO t (id, body) VALUES (?, ?)');
  const t0 = now();
  for (let i = 0; i < n; i++) db.transaction(() => ins.run(randomUUID(), 'x'.repeat(400)))();
  const rate = n / ((now() - t0) / 1000);
  db.close();
  return rate;
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(`${rawInsertRate(process.argv[2]!, Number(process.argv[3] ?? 2000))}\n`);
