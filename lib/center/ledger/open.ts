/** One spec opens either backend: a file path is SQLite, a postgres:// URL is PostgreSQL. */
import { isPostgresUrl } from './pg-url.js';
import { SqliteLedger, type SqliteOptions } from './sqlite.js';
import type { Ledger } from './types.js';

export interface OpenLedgerOptions extends SqliteOptions {
  /** PostgreSQL connections per instance. */
  poolSize?: number;
}

export async function openLedger(spec: string, opts: OpenLedgerOptions = {}): Promise<Ledger> {
  // node-postgres is loaded only for a PostgreSQL ledger: a station or a SQLite center never pays for it.
  if (isPostgresUrl(spec)) return (await import('./postgres.js')).PostgresLedger.open(spec, { ...(opts.poolSize !== undefined ? { poolSize: opts.poolSize } : {}), ...(opts.observer ? { observer: opts.observer } : {}) });
  return SqliteLedger.open(spec, opts);
}

/**
 * Brings a ledger's schema up to date (creating a SQLite file, or the tables and secrets of an empty
 * PostgreSQL database). Safe to run while instances serve: each step runs once, under a lock.
 */
export async function migrateLedger(spec: string): Promise<{ from: number; to: number }> {
  if (isPostgresUrl(spec)) return (await import('./postgres.js')).PostgresLedger.migrate(spec);
  const l = SqliteLedger.open(spec);
  const r = l.migrated;
  await l.close();
  return r;
}
