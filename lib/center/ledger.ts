/**
 * The license center's ledger [patent: user profile database 13/37, contents identifier file 33] in SQLite
 * (better-sqlite3): WAL, synchronous=FULL, so a license is acknowledged only once it and its billing row
 * are on disk in one transaction. The file holds the center's secrets, so it is created mode 0600.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { MocopyError, ExitCode } from '../errors.js';
import type { License, Scheme } from './types.js';

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS stations (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, user_key BLOB NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
  created_at TEXT NOT NULL, revoked_at TEXT);
CREATE TABLE IF NOT EXISTS contents (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, schemes TEXT NOT NULL, price INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS licenses (
  id TEXT PRIMARY KEY, request_id TEXT NOT NULL UNIQUE,
  station_id TEXT NOT NULL REFERENCES stations(id), content_id TEXT NOT NULL REFERENCES contents(id),
  medium_id TEXT NOT NULL, scheme TEXT NOT NULL CHECK (scheme IN ('a', 'b')),
  response TEXT NOT NULL, issued_at TEXT NOT NULL,
  UNIQUE (station_id, medium_id, content_id, scheme));
CREATE TABLE IF NOT EXISTS billing (
  id INTEGER PRIMARY KEY, license_id TEXT NOT NULL UNIQUE REFERENCES licenses(id),
  station_id TEXT NOT NULL, content_id TEXT NOT NULL, amount INTEGER NOT NULL, billed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (
  station_id TEXT NOT NULL, nonce TEXT NOT NULL, seen_at INTEGER NOT NULL, PRIMARY KEY (station_id, nonce));
CREATE INDEX IF NOT EXISTS nonces_seen ON nonces(seen_at);
`;

export interface StationRow { id: string; name: string; userKey: Buffer; status: 'active' | 'revoked'; createdAt: string; revokedAt: string | null }
export interface ContentRow { id: string; name: string; schemes: Scheme[]; price: number; createdAt: string }
export interface LicenseRow { id: string; requestId: string; stationId: string; contentId: string; mediumId: string; scheme: Scheme; response: License; issuedAt: string }
export interface BillingRow { id: number; licenseId: string; stationId: string; contentId: string; amount: number; billedAt: string }

export class LedgerError extends MocopyError {
  constructor(message: string, hint?: string) {
    super('E_LEDGER', message, { exitCode: ExitCode.USAGE, ...(hint ? { hint } : {}) });
  }
}

/** The ledger could not be written (disk full, I/O error, read-only): nothing was issued or billed. */
export class LedgerWriteError extends MocopyError {
  constructor(path: string, cause: unknown) {
    super('E_LEDGER_WRITE', `the license center could not write its ledger ${path} (${(cause as { code?: string }).code ?? (cause as Error).message}); nothing was issued or billed`, {
      exitCode: ExitCode.CENTER_UNAVAILABLE, cause,
      hint: 'the center\'s disk is full or failing: free space (or fix the disk), then run the same command again',
    });
  }
}

/** SQLite's storage failures, as opposed to constraint violations (a race another request won). */
export function isStorageFailure(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|BUSY|LOCKED)/.test(code);
}

export class Ledger {
  readonly path: string;
  readonly db: Database.Database;

  private readonly statements = new Map<string, Database.Statement>();

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.db = db;
  }

  /** Prepared once, reused: preparing costs more than running these small statements. */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** Opens (creating if needed) a ledger. `create: false` refuses a missing file. */
  static open(path: string, opts: { create?: boolean } = {}): Ledger {
    const exists = path === ':memory:' || existsSync(path);
    if (!exists) {
      if (opts.create === false) throw new LedgerError(`no ledger at ${path}`, 'create one with `mocopy center station add NAME --db LEDGER --key-out FILE` or `mocopy master build ... --center-db LEDGER`');
      // Create it private before SQLite touches it: it will hold the center's secrets.
      closeSync(openSync(path, 'wx', 0o600));
    }
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (e) {
      throw new LedgerError(`cannot open the ledger ${path}: ${(e as Error).message}`);
    }
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 10000');
      db.exec(SCHEMA);
    } catch (e) {
      db.close();
      throw new LedgerError(`${path} is not a mocopy ledger (or is damaged): ${(e as Error).message}`);
    }
    const l = new Ledger(path, db);
    l.initMeta();
    return l;
  }

  private initMeta(): void {
    const get = this.stmt('SELECT value FROM meta WHERE key = ?');
    const put = this.stmt('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)');
    this.db.transaction(() => {
      put.run('schema_version', Buffer.from(String(SCHEMA_VERSION)));
      put.run('center_id', Buffer.from(`center-${randomBytes(4).toString('hex')}`));
      put.run('center_secret', randomBytes(32)); // KEYc derivation
      put.run('master_key', randomBytes(32)); // KM of scheme B
    })();
    const v = Number((get.get('schema_version') as { value: Buffer }).value.toString());
    if (v > SCHEMA_VERSION) throw new LedgerError(`${this.path} was written by a newer mocopy (schema ${v})`);
  }

  private meta(key: string): Buffer {
    const row = this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: Buffer } | undefined;
    if (!row) throw new LedgerError(`${this.path}: missing ${key}`);
    return Buffer.from(row.value);
  }

  get centerId(): string {
    return this.meta('center_id').toString();
  }
  /** Secret from which each license's KEYc is derived. */
  centerSecret(): Buffer {
    return this.meta('center_secret');
  }
  /** KM (scheme B). */
  masterKey(): Buffer {
    return this.meta('master_key');
  }

  addStation(id: string, name: string, userKey: Buffer): void {
    this.stmt("INSERT INTO stations (id, name, user_key, status, created_at) VALUES (?, ?, ?, 'active', ?)").run(id, name, userKey, new Date().toISOString());
  }

  station(id: string): StationRow | undefined {
    const r = this.stmt('SELECT id, name, user_key, status, created_at, revoked_at FROM stations WHERE id = ?').get(id) as
      { id: string; name: string; user_key: Buffer; status: 'active' | 'revoked'; created_at: string; revoked_at: string | null } | undefined;
    return r && { id: r.id, name: r.name, userKey: r.user_key, status: r.status, createdAt: r.created_at, revokedAt: r.revoked_at };
  }

  stations(): Array<Omit<StationRow, 'userKey'>> {
    return (this.stmt('SELECT id, name, status, created_at, revoked_at FROM stations ORDER BY created_at').all() as Array<{ id: string; name: string; status: 'active' | 'revoked'; created_at: string; revoked_at: string | null }>)
      .map((r) => ({ id: r.id, name: r.name, status: r.status, createdAt: r.created_at, revokedAt: r.revoked_at }));
  }

  revokeStation(id: string): boolean {
    return this.stmt("UPDATE stations SET status = 'revoked', revoked_at = ? WHERE id = ? AND status = 'active'").run(new Date().toISOString(), id).changes === 1;
  }

  upsertContent(c: { id: string; name: string; schemes: Scheme[]; price: number }): void {
    this.stmt(`INSERT INTO contents (id, name, schemes, price, created_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, schemes = excluded.schemes, price = excluded.price`)
      .run(c.id, c.name, c.schemes.join(','), Math.round(c.price), new Date().toISOString());
  }

  content(id: string): ContentRow | undefined {
    const r = this.stmt('SELECT id, name, schemes, price, created_at FROM contents WHERE id = ?').get(id) as { id: string; name: string; schemes: string; price: number; created_at: string } | undefined;
    return r && { id: r.id, name: r.name, schemes: r.schemes.split(',') as Scheme[], price: r.price, createdAt: r.created_at };
  }

  contents(): ContentRow[] {
    return (this.stmt('SELECT id, name, schemes, price, created_at FROM contents ORDER BY id').all() as Array<{ id: string; name: string; schemes: string; price: number; created_at: string }>)
      .map((r) => ({ id: r.id, name: r.name, schemes: r.schemes.split(',') as Scheme[], price: r.price, createdAt: r.created_at }));
  }

  private toLicense(r: { id: string; request_id: string; station_id: string; content_id: string; medium_id: string; scheme: Scheme; response: string; issued_at: string }): LicenseRow {
    return { id: r.id, requestId: r.request_id, stationId: r.station_id, contentId: r.content_id, mediumId: r.medium_id, scheme: r.scheme, response: JSON.parse(r.response) as License, issuedAt: r.issued_at };
  }

  licenseByRequest(requestId: string): LicenseRow | undefined {
    const r = this.stmt('SELECT * FROM licenses WHERE request_id = ?').get(requestId) as Parameters<Ledger['toLicense']>[0] | undefined;
    return r && this.toLicense(r);
  }

  licenseByPair(stationId: string, mediumId: string, contentId: string, scheme: Scheme): LicenseRow | undefined {
    const r = this.stmt('SELECT * FROM licenses WHERE station_id = ? AND medium_id = ? AND content_id = ? AND scheme = ?')
      .get(stationId, mediumId, contentId, scheme) as Parameters<Ledger['toLicense']>[0] | undefined;
    return r && this.toLicense(r);
  }

  /** Stores a license and its billing row in one durable transaction. */
  recordLicense(l: LicenseRow, amount: number): void {
    try {
      this.insertLicense(l, amount);
    } catch (e) {
      if (isStorageFailure(e)) throw new LedgerWriteError(this.path, e);
      throw e;
    }
  }

  private insertLicense(l: LicenseRow, amount: number): void {
    this.db.transaction(() => {
      this.stmt('INSERT INTO licenses (id, request_id, station_id, content_id, medium_id, scheme, response, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(l.id, l.requestId, l.stationId, l.contentId, l.mediumId, l.scheme, JSON.stringify(l.response), l.issuedAt);
      this.stmt('INSERT INTO billing (license_id, station_id, content_id, amount, billed_at) VALUES (?, ?, ?, ?, ?)')
        .run(l.id, l.stationId, l.contentId, amount, l.issuedAt);
    })();
  }

  /** Records a request nonce; false if this station used it already (a replay). */
  useNonce(stationId: string, nonce: string, nowMs: number, windowMs: number): boolean {
    return this.db.transaction(() => {
      this.stmt('DELETE FROM nonces WHERE seen_at < ?').run(nowMs - 2 * windowMs);
      return this.stmt('INSERT OR IGNORE INTO nonces (station_id, nonce, seen_at) VALUES (?, ?, ?)').run(stationId, nonce, nowMs).changes === 1;
    })();
  }

  report(): { licenses: Array<Omit<LicenseRow, 'response'>>; billing: Array<BillingRow & { mediumId: string; scheme: Scheme }> } {
    const licenses = (this.stmt('SELECT * FROM licenses ORDER BY issued_at, id').all() as Array<Parameters<Ledger['toLicense']>[0]>)
      .map((r) => ({ id: r.id, requestId: r.request_id, stationId: r.station_id, contentId: r.content_id, mediumId: r.medium_id, scheme: r.scheme, issuedAt: r.issued_at }));
    const billing = (this.stmt(`SELECT b.id, b.license_id, b.station_id, b.content_id, b.amount, b.billed_at, l.medium_id, l.scheme
      FROM billing b LEFT JOIN licenses l ON l.id = b.license_id ORDER BY b.id`).all() as Array<{ id: number; license_id: string; station_id: string; content_id: string; amount: number; billed_at: string; medium_id: string; scheme: Scheme }>)
      .map((r) => ({ id: r.id, licenseId: r.license_id, stationId: r.station_id, contentId: r.content_id, amount: r.amount, billedAt: r.billed_at, mediumId: r.medium_id, scheme: r.scheme }));
    return { licenses, billing };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
