/** The ledger: one interface (ledger/types.ts), SQLite and PostgreSQL backends, opened by spec. */
import { migrateLedger, openLedger } from './ledger/open.js';
import type { Ledger as LedgerInterface } from './ledger/types.js';

export * from './ledger/types.js';
export { openLedger, migrateLedger, type OpenLedgerOptions } from './ledger/open.js';
export { SqliteLedger } from './ledger/sqlite.js';
export type { PostgresLedger } from './ledger/postgres.js'; // the class loads node-postgres: import it from ledger/postgres.js
export { isPostgresUrl, redactPostgresUrl, parsePostgresUrl } from './ledger/pg-url.js';
export { LATEST_SCHEMA } from './ledger/migrations.js';

export type Ledger = LedgerInterface;
/** `Ledger.open(spec)`: a path (SQLite) or a postgres:// URL. */
export const Ledger = { open: openLedger, migrate: migrateLedger };
