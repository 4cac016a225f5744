/** The `--db LEDGER` option every center command shares, and opening what it names for the length of one action. */
import { Ledger, LicenseCenter, UsageError } from '../lib/index.js';

export const DB_HELP = 'the center ledger: a SQLite file or postgres://USER@HOST[,HOST2]/DB (default: MOCOPY_CENTER_DB)';

/** The ledger a command works on: --db, else MOCOPY_CENTER_DB (a SQLite path or a postgres:// URL). */
export function ledgerSpec(o: { db?: string }): string {
  const spec = o.db ?? process.env.MOCOPY_CENTER_DB;
  if (!spec) throw new UsageError('no ledger: give --db LEDGER (a file path or postgres://…), or set MOCOPY_CENTER_DB');
  return spec;
}

/** Opens an existing ledger, runs `f`, closes it whatever happens. */
export async function withLedger<T>(o: { db?: string }, f: (l: Ledger) => Promise<T>): Promise<T> {
  const l = await Ledger.open(ledgerSpec(o), { create: false });
  try {
    return await f(l);
  } finally {
    await l.close();
  }
}

/** Opens the center on the ledger (a SQLite file is created unless `create: false`), runs `f`, closes it. */
export async function withCenter<T>(o: { db?: string }, f: (c: LicenseCenter) => Promise<T>, opts: { create?: boolean } = {}): Promise<T> {
  const c = await LicenseCenter.open(ledgerSpec(o), opts);
  try {
    return await f(c);
  } finally {
    await c.close();
  }
}
