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
  /** Console operators (with their password hashes) and the audit log; absent in exports from before schema 3. */
  operators?: OperatorRow[];
  auditLog?: AuditRow[];
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

  // ---- the operators' console (schema 3). Every change an operator makes is written with its audit row in one transaction. ----

  /** Adds an operator (false if the name is taken), audited. */
  addOperator(o: OperatorRow, actor: AuditActor): Promise<boolean>;
  operator(name: string): Promise<OperatorRow | undefined>;
  operators(): Promise<Array<Omit<OperatorRow, 'passwordHash'>>>;
  /** Removes an operator and ends its sessions, audited. */
  removeOperator(name: string, actor: AuditActor): Promise<boolean>;
  /** Replaces an operator's password hash and ends its sessions, audited (the hashes themselves are not). */
  setOperatorPassword(name: string, passwordHash: string, actor: AuditActor): Promise<boolean>;
  createSession(s: { tokenHash: string; operator: string; nowMs: number; address: string }): Promise<void>;
  /**
   * The live session with this token hash and its operator's current role, its last use set to now; a session
   * idle longer than `idleMs` or older than `absoluteMs` is deleted and undefined returned.
   */
  useSession(tokenHash: string, nowMs: number, idleMs: number, absoluteMs: number): Promise<ConsoleSession | undefined>;
  deleteSession(tokenHash: string): Promise<void>;
  signInFailures(name: string): Promise<{ failures: number; lastMs: number } | undefined>;
  /** Counts one more failed sign-in for a name (known or not); returns the count. */
  recordSignInFailure(name: string, nowMs: number): Promise<number>;
  clearSignInFailures(name: string): Promise<void>;
  /** Registers a station, audited, with a one-time download of its key file for the session that added it. */
  addStationAudited(id: string, name: string, userKey: Buffer, actor: AuditActor, download: KeyDownload): Promise<void>;
  /** The station of a pending key-file download of this session, deleting the download (it is offered once). */
  takeKeyDownload(tokenHash: string, sessionHash: string, nowMs: number): Promise<StationRow | undefined>;
  revokeStationAudited(id: string, actor: AuditActor): Promise<boolean>;
  /** Adds a content (false if the ID is taken), audited. */
  addContentAudited(c: { id: string; name: string; schemes: Scheme[]; price: number }, actor: AuditActor): Promise<boolean>;
  /** Sets a content's price for licenses issued from now on (bills keep their amounts), audited. */
  setContentPrice(id: string, price: number, actor: AuditActor): Promise<boolean>;
  /** Audit rows, newest first, with ids below `beforeId`. */
  auditLog(filter: AuditFilter, beforeId: number | undefined, limit: number): Promise<AuditRow[]>;
  /** Licenses with their bills, by (issued_at, id), after a keyset cursor in the given order. */
  licensePage(filter: LicenseFilter, page: { after?: LicenseCursor; order: 'asc' | 'desc'; limit: number }): Promise<LicenseListRow[]>;
  /** Licenses billed since an ISO time and their revenue. */
  licenseTotals(sinceIso: string): Promise<{ licenses: number; revenue: number }>;
  licensesPerDay(sinceIso: string): Promise<Array<{ day: string; licenses: number; revenue: number }>>;
  revenueBy(kind: 'content' | 'station', sinceIso: string, limit: number): Promise<Array<{ id: string; licenses: number; revenue: number }>>;
  /** Per station: licenses issued, the last one's time, and the last authenticated request (nonces kept 10 min). */
  stationActivity(): Promise<Array<{ id: string; licenses: number; lastLicenseAt: string | null; lastRequestMs: number | null }>>;
}

/** Told of every durable commit (for metrics): its duration and how many requests it carried. */
export interface LedgerObserver {
  commit(seconds: number, items: number): void;
}

/**
 * How long a name's failed sign-ins are remembered after its last one. Names nobody uses pile up otherwise: an
 * attacker trying random names would grow the table without bound.
 */
export const SIGN_IN_FAILURES_KEEP_MS = 24 * 3600_000;

/** How long a nonce is remembered: twice the timestamp window, after which the timestamp refuses a replay. */
export const NONCE_KEEP_MS = 2 * 5 * 60 * 1000;

export class LedgerError extends MocopyError {
  constructor(message: string, hint?: string) {
    super('E_LEDGER', message, { exitCode: ExitCode.USAGE, ...(hint ? { hint } : {}) });
  }
}

/**
 * The ledger could not be written (disk full, I/O error, read-only): nothing was issued or billed; or (`synced:
 * false`) its batch committed but the fsync after it failed, so whether it survives is unknown — nothing was
 * issued to the station, and a retry with the same request ID is answered from what the ledger holds.
 */
export class LedgerWriteError extends MocopyError {
  constructor(name: string, cause: unknown, o: { synced?: boolean } = {}) {
    const outcome = o.synced === false ? 'nothing was issued; the same request again is answered from what the ledger kept' : 'nothing was issued or billed';
    super('E_LEDGER_WRITE', `the license center could not write its ledger ${name} (${(cause as { code?: string }).code ?? (cause as Error).message}); ${outcome}`, {
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

// ---- the operators' console ----

export type OperatorRole = 'admin' | 'viewer';
/** `passwordHash`: scrypt with its parameters and salt (lib/center/console/password.ts), never the password. */
export interface OperatorRow { name: string; role: OperatorRole; passwordHash: string; createdAt: string; passwordChangedAt: string }
/** Who made a change and from where (a console session's operator and address, or `cli:USER` / `local`). */
export interface AuditActor { operator: string; address: string }
export interface AuditRow { id: number; at: string; operator: string; address: string; action: string; target: string; before: string | null; after: string | null }
export interface AuditFilter { operator?: string; action?: string; target?: string }
export interface ConsoleSession { operator: string; role: OperatorRole; createdMs: number; seenMs: number }
export interface KeyDownload { tokenHash: string; sessionHash: string; expiresMs: number }
/** `from` inclusive, `to` exclusive: ISO times compared as text. */
export interface LicenseFilter { stationId?: string; contentId?: string; mediumId?: string; from?: string; to?: string }
export interface LicenseCursor { issuedAt: string; id: string }
export type LicenseListRow = LicenseSummary & { billId: number | null; amount: number | null; billedAt: string | null };
