/**
 * The ledger's one interface [patent: user profile database 13/37, contents identifier file 33], with two
 * backends: SQLite (embedded, one file, the default) and PostgreSQL (several center instances, one ledger).
 * The center's logic runs against `LedgerTx` inside `runSpending`, so both backends give it the same
 * transaction: a nonce spent, then a decision whose refusal rolls back only its own writes.
 */
import { ExitCode, MocopyError } from '../../errors.js';
import type { License, Scheme } from '../../domain/index.js';

export interface StationRow { id: string; name: string; userKey: Buffer; status: 'active' | 'revoked'; createdAt: string; revokedAt: string | null }
export interface ContentRow { id: string; name: string; schemes: Scheme[]; price: number; createdAt: string }
export interface LicenseRow { id: string; requestId: string; stationId: string; contentId: string; mediumId: string; scheme: Scheme; response: License; issuedAt: string }
export interface BillingRow { id: number; licenseId: string; stationId: string; contentId: string; amount: number; billedAt: string }
export type LicenseSummary = Omit<LicenseRow, 'response'>;
export type BillingLine = BillingRow & { mediumId: string; scheme: Scheme };
export interface LedgerReport { licenses: LicenseSummary[]; billing: BillingLine[] }

/** What the center reads and writes while deciding one request, inside one transaction. */
export interface LedgerTx {
  station(id: string): Promise<StationRow | undefined>;
  content(id: string): Promise<ContentRow | undefined>;
  contents(): Promise<ContentRow[]>;
  licenseByRequest(requestId: string): Promise<LicenseRow | undefined>;
  licenseByPair(stationId: string, mediumId: string, contentId: string, scheme: Scheme): Promise<LicenseRow | undefined>;
  /**
   * What a license decision reads, at once: the station, the content, and a stored license for the same request
   * ID or for the same (station, medium, content, scheme). One round trip on PostgreSQL instead of four.
   */
  lookup(k: { stationId: string; requestId: string; mediumId: string; contentId: string; scheme: Scheme }): Promise<DecisionInputs>;
  /**
   * Stores the license and its bill unless a license with the same request ID or the same (station, medium,
   * content, scheme) exists — possibly committed by another instance a moment ago — and returns the stored one.
   * The database's unique keys decide, so two instances racing on one request bill it once.
   */
  insertLicense(row: LicenseRow, amount: number): Promise<{ license: LicenseRow; inserted: boolean }>;
  /** Records a request nonce; false if this station used it already (a replay). */
  spendNonce(stationId: string, nonce: string, nowMs: number): Promise<boolean>;
}

export interface DecisionInputs {
  station: StationRow | undefined;
  content: ContentRow | undefined;
  byRequest: LicenseRow | undefined;
  byPair: LicenseRow | undefined;
}

/** Rows of every table, in a stable order: what export writes and import reads. */
export interface LedgerDump {
  format: 'mocopy-ledger-export';
  version: 1;
  schemaVersion: number;
  meta: Record<string, string>; // hex
  stations: Array<Omit<StationRow, 'userKey'> & { userKey: string }>;
  contents: ContentRow[];
  licenses: LicenseRow[];
  billing: BillingRow[];
}

export interface Ledger {
  readonly kind: 'sqlite' | 'postgres';
  /** The file path, or the URL without its password: safe to print. */
  readonly name: string;
  readonly centerId: string;
  /** Secret from which each license's KEYc is derived. */
  centerSecret(): Buffer;
  /** KM (scheme B). */
  masterKey(): Buffer;
  schemaVersion(): Promise<number>;

  addStation(id: string, name: string, userKey: Buffer): Promise<void>;
  station(id: string): Promise<StationRow | undefined>;
  stations(): Promise<Array<Omit<StationRow, 'userKey'>>>;
  revokeStation(id: string): Promise<boolean>;
  upsertContent(c: { id: string; name: string; schemes: Scheme[]; price: number }): Promise<void>;
  content(id: string): Promise<ContentRow | undefined>;
  contents(): Promise<ContentRow[]>;
  report(): Promise<LedgerReport>;

  /** `fn` in one durable transaction: the answer is given only after the commit. */
  run<T>(fn: (tx: LedgerTx) => Promise<T>): Promise<T>;
  /**
   * Like `run`, but `spend`'s writes are kept when `fn` refuses (throws): `fn` runs in a savepoint of its own.
   * A nonce is spent this way, so a request refused after authentication can never be replayed later.
   * If `spend` throws, nothing is kept and `fn` does not run.
   */
  runSpending<T>(spend: (tx: LedgerTx) => Promise<void>, fn: (tx: LedgerTx) => Promise<T>): Promise<T>;

  /** A trivial query, for readiness: resolves when the database answers. */
  ping(): Promise<void>;
  dump(): Promise<LedgerDump>;
  /** Loads a dump into this ledger, which must hold no stations, contents or licenses. */
  load(d: LedgerDump): Promise<void>;
  close(): Promise<void>;
}

/** How long a nonce is remembered: twice the timestamp window, after which the timestamp refuses a replay. */
export const NONCE_KEEP_MS = 2 * 5 * 60 * 1000;

export class LedgerError extends MocopyError {
  constructor(message: string, hint?: string) {
    super('E_LEDGER', message, { exitCode: ExitCode.USAGE, ...(hint ? { hint } : {}) });
  }
}

/** The ledger could not be written (disk full, I/O error, read-only): nothing was issued or billed. */
export class LedgerWriteError extends MocopyError {
  constructor(name: string, cause: unknown) {
    super('E_LEDGER_WRITE', `the license center could not write its ledger ${name} (${(cause as { code?: string }).code ?? (cause as Error).message}); nothing was issued or billed`, {
      exitCode: ExitCode.CENTER_UNAVAILABLE, cause,
      hint: 'the center\'s disk is full or failing: free space (or fix the disk), then run the same command again',
    });
  }
}

/** The database did not answer (server down, failover in progress, connection lost mid-transaction). */
export class LedgerUnavailableError extends MocopyError {
  constructor(name: string, detail: string, cause?: unknown) {
    super('E_LEDGER_UNAVAILABLE', `the license center's database ${name} is not available (${detail}); a request in progress was not acknowledged`, {
      exitCode: ExitCode.CENTER_UNAVAILABLE, ...(cause !== undefined ? { cause } : {}),
      hint: 'check that the PostgreSQL server (or its promoted standby) is running and reachable; a station retries the same request on its own',
    });
  }
}
