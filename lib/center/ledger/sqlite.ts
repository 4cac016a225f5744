/**
 * The ledger in one SQLite file (better-sqlite3): WAL, synchronous=FULL, created mode 0600 (it holds the
 * center's secrets). The embedded default: `npx mocopy demo`, a single-site center, the in-process center.
 *
 * Group commit: transactions submitted while a commit is pending run in ONE SQLite transaction, each in its
 * own savepoint (a refusal undoes only its own writes), and every caller is answered only after that commit is
 * on disk: one fsync serves many licenses. That fsync (of the -wal file) runs on the libuv pool, not inside
 * COMMIT, so the event loop is free while the disk works (see commitBatch).
 *
 * better-sqlite3 is synchronous, and a batch's transaction stays open only across awaits of this ledger's own
 * calls, which settle in microtasks: no I/O callback runs while a batch is open. Calls from outside a batch
 * wait for the batch to end, so they never read or write inside someone else's uncommitted transaction.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, existsSync, fstatSync, fsync, openSync } from 'node:fs';
import type { Scheme } from '../../domain/index.js';
import { LATEST_SCHEMA, SQLITE_MIGRATIONS } from './migrations.js';
import { auditJson, auditSql, fromLicenseListTuple, licensePageSql, perDaySql, revenueBySql, STATION_ACTIVITY_SQL, toAuditRow, totalsSql, toStationActivity, type LicenseListTuple } from './console-sql.js';
import { REPORT_BILLING, REPORT_LICENSES, toBillingLine, toOperator, type DbOperator, toContent, toLicense, toLicenseSummary, toStation, toStationPublic, type DbBillingLine, type DbContent, type DbLicense, type DbStation } from './rows.js';
import { LedgerError, LedgerWriteError, NONCE_KEEP_MS, SIGN_IN_FAILURES_KEEP_MS, type AuditActor, type AuditFilter, type AuditRow, type ConsoleSession, type KeyDownload, type LicenseCursor, type LicenseFilter, type LicenseListRow, type OperatorRole, type OperatorRow, type ContentRow, type LedgerObserver, type Ledger, type LedgerDump, type LedgerReport, type LedgerTx, type LicenseRow, type StationRow } from './types.js';

/** Set while a batch runs a transaction's work: a ledger call from there would wait for its own batch. */
const inBatch = new AsyncLocalStorage<SqliteLedger>();

/** SQLite's storage failures, as opposed to constraint violations (a race another request won). */
export function isStorageFailure(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|BUSY|LOCKED)/.test(code);
}

interface Item {
  spend: ((tx: LedgerTx) => Promise<void>) | undefined;
  fn: (tx: LedgerTx) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  outcome?: { ok: true; value: unknown } | { ok: false; error: unknown };
}

export interface SqliteOptions {
  create?: boolean;
  /**
   * How long the first transaction of a batch waits for company (ms). Default: adaptive — no wait: the batch
   * commits in the next turn of the event loop with every request that reached the ledger in this one. Under
   * load, requests that arrive while a commit's fsync holds the loop are read in one turn and share the next.
   */
  windowMs?: number;
  /**
   * 'deferred' (default): a batch of several commits at synchronous=NORMAL and its callers are answered after an
   * fsync of the -wal file on the libuv pool (a batch of one fsyncs in COMMIT). 'in-commit': COMMIT itself fsyncs, on the event loop (synchronous=FULL, as
   * before; kept for the benchmark's same-run comparison).
   */
  walSync?: 'deferred' | 'in-commit';
  maxBatch?: number;
  observer?: LedgerObserver;
}

export class SqliteLedger implements Ledger {
  readonly kind = 'sqlite' as const;
  readonly centerId: string;
  /** Commits so far and transactions per commit, for the benchmark and tests. */
  readonly stats = { commits: 0, items: 0 };

  private readonly statements = new Map<string, Database.Statement>();
  private readonly rawStatements = new Map<string, Database.Statement>();
  private readonly secret: Buffer;
  private readonly km: Buffer;
  private pending: Item[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private batchOpen: Promise<void> | undefined;
  private lastPrune = 0;
  private lastFailurePrune = -Infinity;
  private readonly tx: LedgerTx;
  /** Our own descriptor of the -wal file, for the batches' fsync off the event loop (undefined until the first). */
  private walFd: number | undefined;
  private syncRunning: Promise<void> | undefined;
  private syncWanted: Promise<void> | undefined;

  private constructor(readonly name: string, readonly db: Database.Database, private readonly opts: SqliteOptions) {
    this.centerId = this.meta('center_id').toString();
    this.secret = this.meta('center_secret');
    this.km = this.meta('master_key');
    this.tx = this.makeTx();
  }

  /** Opens (creating if needed) a ledger file, bringing its schema up to date. `create: false` refuses a missing file. */
  static open(path: string, opts: SqliteOptions = {}): SqliteLedger {
    const exists = path === ':memory:' || existsSync(path);
    if (!exists) {
      if (opts.create === false) throw new LedgerError(`no ledger at ${path}`, 'create one with `mocopy center station add NAME --db LEDGER --key-out FILE` or `mocopy master build ... --center-db LEDGER`');
      // Create it private before SQLite touches it: it will hold the center's secrets.
      closeSync(openSync(path, 'wx', 0o600));
    }
    let db: Database.Database;
    let migrated: { from: number; to: number };
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
      migrated = migrateSqlite(db, path);
    } catch (e) {
      db.close();
      if (e instanceof LedgerError) throw e;
      throw new LedgerError(`${path} is not a mocopy ledger (or is damaged): ${(e as Error).message}`);
    }
    const l = new SqliteLedger(path, db, opts);
    l.migrated = migrated;
    return l;
  }

  /** Schema versions before and after this open (a SQLite ledger is brought up to date when opened). */
  migrated = { from: 0, to: 0 };

  /**
   * Prepared once, reused: preparing costs more than running these small statements. `raw` ones return rows as
   * arrays of column values (pages and exports that read many rows).
   */
  private stmt(sql: string, raw = false): Database.Statement {
    const cache = raw ? this.rawStatements : this.statements;
    let st = cache.get(sql);
    if (!st) {
      st = raw ? this.db.prepare(sql).raw(true) : this.db.prepare(sql);
      cache.set(sql, st);
    }
    return st;
  }

  private meta(key: string): Buffer {
    const row = this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: Buffer } | undefined;
    if (!row) throw new LedgerError(`${this.name}: missing ${key}`);
    return Buffer.from(row.value);
  }

  centerSecret(): Buffer {
    return Buffer.from(this.secret);
  }
  masterKey(): Buffer {
    return Buffer.from(this.km);
  }

  async schemaVersion(): Promise<number> {
    await this.quiet();
    return Number(this.meta('schema_version').toString());
  }

  /** Waits until no batch transaction is open on the connection. */
  private async quiet(): Promise<void> {
    if (inBatch.getStore() === this) throw new Error('a ledger call inside one of its transactions: use the transaction\'s methods (it would wait for itself)');
    while (this.batchOpen) await this.batchOpen;
  }

  private write<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (isStorageFailure(e)) throw new LedgerWriteError(this.name, e);
      throw e;
    }
  }

  async addStation(id: string, name: string, userKey: Buffer): Promise<void> {
    await this.quiet();
    this.write(() => this.stmt("INSERT INTO stations (id, name, user_key, status, created_at) VALUES (?, ?, ?, 'active', ?)").run(id, name, userKey, new Date().toISOString()));
  }

  private stationNow(id: string): StationRow | undefined {
    const r = this.stmt('SELECT id, name, user_key, status, created_at, revoked_at FROM stations WHERE id = ?').get(id) as DbStation | undefined;
    return r && toStation(r);
  }

  async station(id: string): Promise<StationRow | undefined> {
    await this.quiet();
    return this.stationNow(id);
  }

  async stations(): Promise<Array<Omit<StationRow, 'userKey'>>> {
    await this.quiet();
    return (this.stmt('SELECT id, name, status, created_at, revoked_at FROM stations ORDER BY created_at, id').all() as DbStation[]).map(toStationPublic);
  }

  async revokeStation(id: string): Promise<boolean> {
    await this.quiet();
    return this.write(() => this.stmt("UPDATE stations SET status = 'revoked', revoked_at = ? WHERE id = ? AND status = 'active'").run(new Date().toISOString(), id).changes === 1);
  }

  async upsertContent(c: { id: string; name: string; schemes: Scheme[]; price: number }): Promise<void> {
    await this.quiet();
    this.write(() => this.stmt(`INSERT INTO contents (id, name, schemes, price, created_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, schemes = excluded.schemes, price = excluded.price`)
      .run(c.id, c.name, c.schemes.join(','), Math.round(c.price), new Date().toISOString()));
  }

  private contentNow(id: string): ContentRow | undefined {
    const r = this.stmt('SELECT id, name, schemes, price, created_at FROM contents WHERE id = ?').get(id) as DbContent | undefined;
    return r && toContent(r);
  }

  async content(id: string): Promise<ContentRow | undefined> {
    await this.quiet();
    return this.contentNow(id);
  }

  async contents(): Promise<ContentRow[]> {
    await this.quiet();
    return this.contentsNow();
  }

  private contentsNow(): ContentRow[] {
    return (this.stmt('SELECT id, name, schemes, price, created_at FROM contents ORDER BY id').all() as DbContent[]).map(toContent);
  }

  async report(): Promise<LedgerReport> {
    await this.quiet();
    return {
      licenses: (this.stmt(REPORT_LICENSES).all() as DbLicense[]).map(toLicenseSummary),
      billing: (this.stmt(REPORT_BILLING).all() as DbBillingLine[]).map(toBillingLine),
    };
  }

  private makeTx(): LedgerTx {
    const byRequest = (requestId: string): LicenseRow | undefined => {
      const r = this.stmt('SELECT * FROM licenses WHERE request_id = ?').get(requestId) as DbLicense | undefined;
      return r && toLicense(r);
    };
    const byPair = (stationId: string, mediumId: string, contentId: string, scheme: Scheme): LicenseRow | undefined => {
      const r = this.stmt('SELECT * FROM licenses WHERE station_id = ? AND medium_id = ? AND content_id = ? AND scheme = ?').get(stationId, mediumId, contentId, scheme) as DbLicense | undefined;
      return r && toLicense(r);
    };
    return {
      station: async (id) => this.stationNow(id),
      content: async (id) => this.contentNow(id),
      contents: async () => this.contentsNow(),
      lookup: async (k) => ({
        station: this.stationNow(k.stationId), content: this.contentNow(k.contentId),
        byRequest: byRequest(k.requestId), byPair: byPair(k.stationId, k.mediumId, k.contentId, k.scheme),
      }),
      licenseByRequest: async (requestId) => byRequest(requestId),
      licenseByPair: async (s, m, c, sch) => byPair(s, m, c, sch),
      insertLicense: async (l, amount) => this.write(() => {
        const added = this.stmt('INSERT INTO licenses (id, request_id, station_id, content_id, medium_id, scheme, response, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
          .run(l.id, l.requestId, l.stationId, l.contentId, l.mediumId, l.scheme, JSON.stringify(l.response), l.issuedAt).changes === 1;
        if (added) {
          this.stmt('INSERT INTO billing (license_id, station_id, content_id, amount, billed_at) VALUES (?, ?, ?, ?, ?)').run(l.id, l.stationId, l.contentId, amount, l.issuedAt);
          return { license: l, inserted: true };
        }
        const stored = byRequest(l.requestId) ?? byPair(l.stationId, l.mediumId, l.contentId, l.scheme);
        if (!stored) throw new LedgerError(`license ${l.id} conflicts with a row that is not a license for the same request`);
        return { license: stored, inserted: false };
      }),
      spendNonce: async (stationId, nonce, nowMs) => this.write(() => {
        if (nowMs - this.lastPrune > 60_000) {
          this.stmt('DELETE FROM nonces WHERE seen_at < ?').run(nowMs - NONCE_KEEP_MS);
          this.lastPrune = nowMs;
        }
        return this.stmt('INSERT OR IGNORE INTO nonces (station_id, nonce, seen_at) VALUES (?, ?, ?)').run(stationId, nonce, nowMs).changes === 1;
      }),
    };
  }

  run<T>(fn: (tx: LedgerTx) => Promise<T>): Promise<T> {
    return this.enqueue(undefined, fn);
  }

  runSpending<T>(spend: (tx: LedgerTx) => Promise<void>, fn: (tx: LedgerTx) => Promise<T>): Promise<T> {
    return this.enqueue(spend, fn);
  }

  private enqueue<T>(spend: Item['spend'], fn: (tx: LedgerTx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ spend, fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.batchOpen) return; // the running flush takes it next
      if (this.pending.length >= (this.opts.maxBatch ?? 256)) {
        this.clearTimer();
        setImmediate(() => void this.flush());
      } else if (!this.timer) {
        this.timer = this.opts.windowMs ? setTimeout(() => void this.flush(), this.opts.windowMs) : setImmediate(() => void this.flush());
      }
    });
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
    }
    this.timer = undefined;
  }

  private async flush(): Promise<void> {
    this.clearTimer();
    if (this.batchOpen) return;
    let done!: () => void;
    this.batchOpen = new Promise<void>((r) => (done = r));
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, this.opts.maxBatch ?? 256);
        await this.commitBatch(batch);
      }
    } finally {
      this.batchOpen = undefined;
      done();
    }
  }

  /**
   * One batch: every item in its savepoints, one COMMIT. The COMMIT itself does not wait for the disk (the batch
   * runs at synchronous=NORMAL); the -wal file is then fsync'd on the libuv pool, and only after that are the
   * items answered. So the event loop keeps reading and checking requests while the disk works, the next batch
   * commits meanwhile, and one fsync makes several batches durable. Every other write keeps synchronous=FULL.
   */
  private async commitBatch(batch: Item[]): Promise<void> {
    const exec = (sql: string) => this.stmt(sql).run();
    const t0 = process.hrtime.bigint();
    // A batch of one means one request at a time: nothing for the event loop to do meanwhile, and the hop to the
    // pool and back would only add to its wait. Several mean concurrent stations: let the loop serve them.
    const deferSync = batch.length > 1 && this.name !== ':memory:' && this.opts.walSync !== 'in-commit';
    try {
      if (deferSync) exec('PRAGMA synchronous = NORMAL');
      exec('BEGIN IMMEDIATE');
      for (const item of batch) {
        exec('SAVEPOINT item');
        try {
          if (item.spend) await inBatch.run(this, () => item.spend!(this.tx));
          exec('SAVEPOINT work');
          try {
            item.outcome = { ok: true, value: await inBatch.run(this, () => item.fn(this.tx)) };
            exec('RELEASE work');
          } catch (error) {
            if (!this.db.inTransaction) throw error; // SQLite rolled the whole batch back (disk full, I/O)
            exec('ROLLBACK TO work');
            exec('RELEASE work');
            item.outcome = { ok: false, error };
          }
          exec('RELEASE item');
        } catch (error) {
          if (!this.db.inTransaction) throw error;
          exec('ROLLBACK TO item');
          exec('RELEASE item');
          item.outcome = { ok: false, error };
        }
      }
      exec('COMMIT');
    } catch (e) {
      // The batch's commit failed: nobody in it was issued or billed. Storage failures are named as such.
      if (this.db.inTransaction) {
        try { exec('ROLLBACK'); } catch { /* already rolled back */ }
      }
      const err = e instanceof LedgerWriteError || !isStorageFailure(e) ? e : new LedgerWriteError(this.name, e);
      for (const item of batch) item.reject(err);
      return;
    } finally {
      if (deferSync) {
        try { exec('PRAGMA synchronous = FULL'); } catch { /* the connection is gone: nothing else will write */ }
      }
    }
    const answer = () => {
      this.stats.commits++;
      this.stats.items += batch.length;
      this.opts.observer?.commit(Number(process.hrtime.bigint() - t0) / 1e9, batch.length);
      for (const item of batch) {
        const o = item.outcome!;
        if (o.ok) item.resolve(o.value);
        else item.reject(o.error);
      }
    };
    if (!deferSync) return answer();
    // Not awaited: the next batch commits while this one's fsync runs. Nobody is answered before it is on disk.
    void this.walDurable().then(answer, (e) => {
      // Committed, but not known to be on disk: nobody is told it was. A retry with the same request ID finds
      // what survived (the license, or nothing) and is answered from it.
      const err = new LedgerWriteError(this.name, e, { synced: false });
      for (const item of batch) item.reject(err);
    });
  }

  /** Resolves once an fsync of the -wal file that started after this call has completed. */
  private walDurable(): Promise<void> {
    if (!this.syncRunning) {
      const running = this.fsyncWal().finally(() => { if (this.syncRunning === running) this.syncRunning = undefined; });
      this.syncRunning = running;
      return running;
    }
    // An fsync is under way, but it may have started before this batch's COMMIT: wait for the next one, shared by
    // every batch that commits meanwhile.
    this.syncWanted ??= this.syncRunning.catch(() => undefined).then(() => {
      this.syncWanted = undefined;
      return this.walDurable();
    });
    return this.syncWanted;
  }

  private fsyncWal(): Promise<void> {
    return new Promise((resolve, reject) => {
      try {
        // Our connection keeps the -wal file alive while it is open; a new one (another process closed the last
        // connection and SQLite deleted it) is opened again.
        if (this.walFd !== undefined && fstatSync(this.walFd).nlink === 0) {
          closeSync(this.walFd);
          this.walFd = undefined;
        }
        this.walFd ??= openSync(`${this.name}-wal`, 'r+');
      } catch (e) {
        reject(e);
        return;
      }
      fsync(this.walFd, (e) => (e ? reject(e) : resolve()));
    });
  }

  /** Waits for the answers of every committed batch (their fsync). */
  private async settled(): Promise<void> {
    while (this.syncRunning || this.syncWanted) await (this.syncWanted ?? this.syncRunning)!.catch(() => undefined);
  }

  async ping(): Promise<void> {
    await this.quiet();
    this.stmt('SELECT 1').get();
  }

  async dump(): Promise<LedgerDump> {
    await this.quiet();
    const meta = Object.fromEntries((this.stmt('SELECT key, value FROM meta ORDER BY key').all() as Array<{ key: string; value: Buffer }>).map((r) => [r.key, Buffer.from(r.value).toString('hex')]));
    return {
      format: 'mocopy-ledger-export', version: 1, schemaVersion: Number(this.meta('schema_version').toString()), meta,
      stations: (this.stmt('SELECT * FROM stations ORDER BY id').all() as DbStation[]).map((r) => ({ ...toStationPublic(r), userKey: Buffer.from(r.user_key).toString('hex') })),
      contents: (this.stmt('SELECT * FROM contents ORDER BY id').all() as DbContent[]).map(toContent),
      licenses: (this.stmt('SELECT * FROM licenses ORDER BY issued_at, id').all() as DbLicense[]).map(toLicense),
      billing: (this.stmt('SELECT * FROM billing ORDER BY id').all() as Array<{ id: number; license_id: string; station_id: string; content_id: string; amount: number; billed_at: string }>)
        .map((r) => ({ id: r.id, licenseId: r.license_id, stationId: r.station_id, contentId: r.content_id, amount: r.amount, billedAt: r.billed_at })),
      operators: (this.stmt('SELECT * FROM operators ORDER BY name').all() as DbOperator[]).map(toOperator),
      auditLog: (this.stmt('SELECT * FROM audit_log ORDER BY id').all() as AuditRow[]).map((r) => ({ ...r, id: Number(r.id) })),
    };
  }

  async load(d: LedgerDump): Promise<void> {
    await this.quiet();
    const n = this.stmt('SELECT (SELECT COUNT(*) FROM stations) + (SELECT COUNT(*) FROM contents) + (SELECT COUNT(*) FROM licenses) AS n').get() as { n: number };
    if (n.n > 0) throw new LedgerError(`${this.name} is not empty: import only into a new ledger`);
    this.write(() => this.db.transaction(() => {
      for (const [k, v] of Object.entries(d.meta)) {
        if (k === 'schema_version') continue;
        this.stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(k, Buffer.from(v, 'hex'));
      }
      for (const s of d.stations) this.stmt('INSERT INTO stations (id, name, user_key, status, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)').run(s.id, s.name, Buffer.from(s.userKey, 'hex'), s.status, s.createdAt, s.revokedAt);
      for (const c of d.contents) this.stmt('INSERT INTO contents (id, name, schemes, price, created_at) VALUES (?, ?, ?, ?, ?)').run(c.id, c.name, c.schemes.join(','), c.price, c.createdAt);
      for (const l of d.licenses) this.stmt('INSERT INTO licenses (id, request_id, station_id, content_id, medium_id, scheme, response, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(l.id, l.requestId, l.stationId, l.contentId, l.mediumId, l.scheme, JSON.stringify(l.response), l.issuedAt);
      for (const b of d.billing) this.stmt('INSERT INTO billing (id, license_id, station_id, content_id, amount, billed_at) VALUES (?, ?, ?, ?, ?, ?)').run(b.id, b.licenseId, b.stationId, b.contentId, b.amount, b.billedAt);
      for (const o of d.operators ?? []) this.stmt('INSERT INTO operators (name, role, password_hash, created_at, password_changed_at) VALUES (?, ?, ?, ?, ?)').run(o.name, o.role, o.passwordHash, o.createdAt, o.passwordChangedAt);
      for (const a of d.auditLog ?? []) this.stmt('INSERT INTO audit_log (id, at, operator, address, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(a.id, a.at, a.operator, a.address, a.action, a.target, a.before, a.after);
    })());
  }

  async close(): Promise<void> {
    await this.quiet();
    if (this.timer) await this.flush();
    await this.quiet();
    await this.settled();
    if (this.db.open) this.db.close();
    if (this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
  }

  // ---- the operators' console ----

  /** `f` in one transaction of its own, outside any group-commit batch (none is open while it runs: it is synchronous). */
  private async audited<T>(f: () => T): Promise<T> {
    await this.quiet();
    return this.write(() => this.db.transaction(f)());
  }

  private auditRow(actor: AuditActor, action: string, target: string, before: unknown, after: unknown): void {
    this.stmt('INSERT INTO audit_log (at, operator, address, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(new Date().toISOString(), actor.operator, actor.address, action, target, auditJson(before), auditJson(after));
  }

  async addOperator(o: OperatorRow, actor: AuditActor): Promise<boolean> {
    return this.audited(() => {
      const added = this.stmt('INSERT INTO operators (name, role, password_hash, created_at, password_changed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(o.name, o.role, o.passwordHash, o.createdAt, o.passwordChangedAt).changes === 1;
      if (added) this.auditRow(actor, 'operator.add', o.name, null, { role: o.role });
      return added;
    });
  }

  async operator(name: string): Promise<OperatorRow | undefined> {
    await this.quiet();
    const r = this.stmt('SELECT name, role, password_hash, created_at, password_changed_at FROM operators WHERE name = ?').get(name) as DbOperator | undefined;
    return r && toOperator(r);
  }

  async operators(): Promise<Array<Omit<OperatorRow, 'passwordHash'>>> {
    await this.quiet();
    return (this.stmt('SELECT name, role, password_hash, created_at, password_changed_at FROM operators ORDER BY name').all() as DbOperator[])
      .map((r) => { const { passwordHash: _, ...o } = toOperator(r); return o; });
  }

  async removeOperator(name: string, actor: AuditActor): Promise<boolean> {
    return this.audited(() => {
      const before = this.stmt('SELECT role FROM operators WHERE name = ?').get(name) as { role: string } | undefined;
      if (!before) return false;
      this.stmt('DELETE FROM console_sessions WHERE operator = ?').run(name);
      this.stmt('DELETE FROM operators WHERE name = ?').run(name);
      this.auditRow(actor, 'operator.remove', name, { role: before.role }, null);
      return true;
    });
  }

  async setOperatorPassword(name: string, passwordHash: string, actor: AuditActor): Promise<boolean> {
    return this.audited(() => {
      const at = new Date().toISOString();
      const changed = this.stmt('UPDATE operators SET password_hash = ?, password_changed_at = ? WHERE name = ?').run(passwordHash, at, name).changes === 1;
      if (!changed) return false;
      this.stmt('DELETE FROM console_sessions WHERE operator = ?').run(name);
      this.auditRow(actor, 'operator.passwd', name, null, { passwordChangedAt: at });
      return true;
    });
  }

  async createSession(x: { tokenHash: string; operator: string; nowMs: number; address: string }): Promise<void> {
    await this.quiet();
    this.write(() => {
      this.stmt('INSERT INTO console_sessions (token_hash, operator, created_ms, seen_ms, address) VALUES (?, ?, ?, ?, ?)').run(x.tokenHash, x.operator, x.nowMs, x.nowMs, x.address);
      this.stmt('DELETE FROM console_sessions WHERE seen_ms < ?').run(x.nowMs - 24 * 3600_000);
    });
  }

  async useSession(tokenHash: string, nowMs: number, idleMs: number, absoluteMs: number): Promise<ConsoleSession | undefined> {
    await this.quiet();
    return this.write(() => {
      const r = this.stmt(`SELECT s.operator, o.role, s.created_ms, s.seen_ms FROM console_sessions s JOIN operators o ON o.name = s.operator
        WHERE s.token_hash = ?`).get(tokenHash) as { operator: string; role: OperatorRole; created_ms: number; seen_ms: number } | undefined;
      if (!r) return undefined;
      if (nowMs - r.seen_ms > idleMs || nowMs - r.created_ms > absoluteMs) {
        this.stmt('DELETE FROM console_sessions WHERE token_hash = ?').run(tokenHash);
        return undefined;
      }
      if (nowMs - r.seen_ms > 1000) this.stmt('UPDATE console_sessions SET seen_ms = ? WHERE token_hash = ?').run(nowMs, tokenHash);
      return { operator: r.operator, role: r.role, createdMs: r.created_ms, seenMs: nowMs };
    });
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.quiet();
    this.write(() => this.stmt('DELETE FROM console_sessions WHERE token_hash = ?').run(tokenHash));
  }

  async signInFailures(name: string): Promise<{ failures: number; lastMs: number } | undefined> {
    await this.quiet();
    const r = this.stmt('SELECT failures, last_ms FROM console_failures WHERE name = ?').get(name) as { failures: number; last_ms: number } | undefined;
    return r && { failures: r.failures, lastMs: r.last_ms };
  }

  async recordSignInFailure(name: string, nowMs: number): Promise<number> {
    await this.quiet();
    if (Math.abs(nowMs - this.lastFailurePrune) > 60_000) {
      this.lastFailurePrune = nowMs;
      this.write(() => this.stmt('DELETE FROM console_failures WHERE last_ms < ?').run(nowMs - SIGN_IN_FAILURES_KEEP_MS));
    }
    return this.write(() => (this.stmt(`INSERT INTO console_failures (name, failures, last_ms) VALUES (?, 1, ?)
      ON CONFLICT(name) DO UPDATE SET failures = console_failures.failures + 1, last_ms = excluded.last_ms RETURNING failures`).get(name, nowMs) as { failures: number }).failures);
  }

  async clearSignInFailures(name: string): Promise<void> {
    await this.quiet();
    this.write(() => this.stmt('DELETE FROM console_failures WHERE name = ?').run(name));
  }

  async addStationAudited(id: string, name: string, userKey: Buffer, actor: AuditActor, download: KeyDownload): Promise<void> {
    await this.audited(() => {
      this.stmt("INSERT INTO stations (id, name, user_key, status, created_at) VALUES (?, ?, ?, 'active', ?)").run(id, name, userKey, new Date().toISOString());
      this.stmt('DELETE FROM console_downloads WHERE expires_ms < ?').run(Date.now());
      this.stmt('INSERT INTO console_downloads (token_hash, station_id, session_hash, expires_ms) VALUES (?, ?, ?, ?)').run(download.tokenHash, id, download.sessionHash, download.expiresMs);
      this.auditRow(actor, 'station.add', id, null, { name, status: 'active' });
    });
  }

  async takeKeyDownload(tokenHash: string, sessionHash: string, nowMs: number): Promise<StationRow | undefined> {
    return this.audited(() => {
      const r = this.stmt('DELETE FROM console_downloads WHERE token_hash = ? AND session_hash = ? RETURNING station_id, expires_ms').get(tokenHash, sessionHash) as { station_id: string; expires_ms: number } | undefined;
      if (!r || r.expires_ms < nowMs) return undefined;
      return this.stationNow(r.station_id);
    });
  }

  async revokeStationAudited(id: string, actor: AuditActor): Promise<boolean> {
    return this.audited(() => {
      const at = new Date().toISOString();
      const before = this.stmt('SELECT name, status FROM stations WHERE id = ?').get(id) as { name: string; status: string } | undefined;
      if (!before || before.status !== 'active') return false;
      this.stmt("UPDATE stations SET status = 'revoked', revoked_at = ? WHERE id = ? AND status = 'active'").run(at, id);
      this.auditRow(actor, 'station.revoke', id, { name: before.name, status: 'active' }, { name: before.name, status: 'revoked', revokedAt: at });
      return true;
    });
  }

  async addContentAudited(x: { id: string; name: string; schemes: Scheme[]; price: number }, actor: AuditActor): Promise<boolean> {
    return this.audited(() => {
      const added = this.stmt('INSERT INTO contents (id, name, schemes, price, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(x.id, x.name, x.schemes.join(','), x.price, new Date().toISOString()).changes === 1;
      if (added) this.auditRow(actor, 'content.add', x.id, null, { name: x.name, schemes: x.schemes, price: x.price });
      return added;
    });
  }

  async setContentPrice(id: string, price: number, actor: AuditActor): Promise<boolean> {
    return this.audited(() => {
      const before = this.stmt('SELECT price FROM contents WHERE id = ?').get(id) as { price: number } | undefined;
      if (!before) return false;
      this.stmt('UPDATE contents SET price = ? WHERE id = ?').run(price, id);
      this.auditRow(actor, 'content.price', id, { price: before.price }, { price });
      return true;
    });
  }

  async auditLog(filter: AuditFilter, beforeId: number | undefined, limit: number): Promise<AuditRow[]> {
    await this.quiet();
    const q = auditSql('sqlite', filter, beforeId, limit);
    return (this.stmt(q.sql).all(...q.values) as AuditRow[]).map(toAuditRow);
  }

  async licensePage(filter: LicenseFilter, page: { after?: LicenseCursor; order: 'asc' | 'desc'; limit: number }): Promise<LicenseListRow[]> {
    await this.quiet();
    const q = licensePageSql('sqlite', filter, page);
    return (this.stmt(q.sql, true).all(...q.values) as LicenseListTuple[]).map(fromLicenseListTuple);
  }

  async licenseTotals(sinceIso: string): Promise<{ licenses: number; revenue: number }> {
    await this.quiet();
    const r = this.stmt(totalsSql('sqlite')).get(sinceIso) as { licenses: number; revenue: number };
    return { licenses: Number(r.licenses), revenue: Number(r.revenue) };
  }

  async licensesPerDay(sinceIso: string): Promise<Array<{ day: string; licenses: number; revenue: number }>> {
    await this.quiet();
    return (this.stmt(perDaySql('sqlite')).all(sinceIso) as Array<{ day: string; licenses: number; revenue: number }>)
      .map((r) => ({ day: r.day, licenses: Number(r.licenses), revenue: Number(r.revenue) }));
  }

  async revenueBy(kind: 'content' | 'station', sinceIso: string, limit: number): Promise<Array<{ id: string; licenses: number; revenue: number }>> {
    await this.quiet();
    return (this.stmt(revenueBySql('sqlite', kind)).all(sinceIso, limit) as Array<{ id: string; licenses: number; revenue: number }>)
      .map((r) => ({ id: r.id, licenses: Number(r.licenses), revenue: Number(r.revenue) }));
  }

  async stationActivity(): Promise<Array<{ id: string; licenses: number; lastLicenseAt: string | null; lastRequestMs: number | null }>> {
    await this.quiet();
    return (this.stmt(STATION_ACTIVITY_SQL).all() as Parameters<typeof toStationActivity>[0][]).map(toStationActivity);
  }
}

/** Brings a SQLite ledger to the latest schema in one transaction, creating its secrets on first use. */
function migrateSqlite(db: Database.Database, path: string): { from: number; to: number } {
  return db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)');
    const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: Buffer } | undefined;
    const at = row ? Number(Buffer.from(row.value).toString()) : 0;
    if (at > LATEST_SCHEMA) throw new LedgerError(`${path} was written by a newer mocopy (schema ${at}; this one knows up to ${LATEST_SCHEMA})`, 'upgrade mocopy on this machine');
    for (const m of SQLITE_MIGRATIONS) if (m.version > at) db.exec(m.sql);
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    put.run('schema_version', Buffer.from(String(Math.max(at, LATEST_SCHEMA))));
    const init = db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)');
    init.run('center_id', Buffer.from(`center-${randomBytes(4).toString('hex')}`));
    init.run('center_secret', randomBytes(32)); // KEYc derivation
    init.run('master_key', randomBytes(32)); // KM of scheme B
    return { from: at, to: Math.max(at, LATEST_SCHEMA) };
  })();
}
