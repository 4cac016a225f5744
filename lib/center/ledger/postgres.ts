/**
 * The ledger on PostgreSQL (node-postgres): several stateless center instances share it. Each request is
 * one READ COMMITTED transaction whose outcome the database's unique keys decide: `INSERT … ON CONFLICT DO
 * NOTHING` waits for a concurrent insert of the same request (or the same station, medium, content, scheme)
 * to commit and then yields to it, so two instances racing on one request issue one license and one bill.
 * Deadlocks and serialization failures are retried; a lost connection answers E_LEDGER_UNAVAILABLE (the
 * station retries the same request ID, which is idempotent). PostgreSQL batches concurrent commits' WAL
 * flushes itself, so no group commit is needed here. A license is acknowledged only after COMMIT returned:
 * with `synchronous_commit = on` and a synchronous standby, after the standby has it too.
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { Scheme } from '../../domain/index.js';
import { LATEST_SCHEMA, POSTGRES_MIGRATIONS } from './migrations.js';
import { auditJson, auditSql, licensePageSql, perDaySql, revenueBySql, STATION_ACTIVITY_SQL, toAuditRow, toLicenseListRow, totalsSql, toStationActivity, type DbLicenseListRow } from './console-sql.js';
import { parsePostgresUrl, redactPostgresUrl, type PgTarget } from './pg-url.js';
import { toBillingLine, toOperator, type DbOperator, toContent, toLicense, toLicenseSummary, toStation, toStationPublic, type DbBillingLine, type DbContent, type DbLicense, type DbStation } from './rows.js';
import { LedgerError, LedgerUnavailableError, LedgerWriteError, NONCE_KEEP_MS, SIGN_IN_FAILURES_KEEP_MS, type AuditActor, type AuditFilter, type AuditRow, type ConsoleSession, type KeyDownload, type LicenseCursor, type LicenseFilter, type LicenseListRow, type OperatorRole, type OperatorRow, type ContentRow, type LedgerObserver, type Ledger, type LedgerDump, type LedgerReport, type LedgerTx, type LicenseRow, type StationRow } from './types.js';

/** Held for the migration's transaction, so two instances migrating at once apply each step once. */
const MIGRATION_LOCK = 0x6d6f636f;
const RETRIES = 5;

/** SQLSTATEs worth retrying the whole transaction for. */
const RETRYABLE = new Set(['40001', '40P01']);
/** Connection-class failures: the server went away, or this server no longer takes writes (a demoted primary). */
const CONNECTION_STATES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '25006']);
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'ENOENT']);

function sqlState(e: unknown): string | undefined {
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'string' ? c : undefined;
}

export function isConnectionFailure(e: unknown): boolean {
  const c = sqlState(e);
  if (c && (CONNECTION_STATES.has(c) || CONNECTION_ERRNOS.has(c))) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|Client was closed|not queryable/i.test((e as Error)?.message ?? '');
}

function isDatabaseError(e: unknown): boolean {
  return e instanceof pg.DatabaseError || isConnectionFailure(e);
}

/** Disk full, I/O error, out of resources: nothing was written. */
function isStorageFailure(e: unknown): boolean {
  const c = sqlState(e);
  return !!c && /^(53|58)/.test(c);
}

/** Connections that carry a lasting 'error' listener. */
const heard = new WeakSet<pg.PoolClient>();

type Query = (text: string, values?: unknown[], name?: string) => Promise<pg.QueryResult>;

export interface PostgresOptions {
  /** Connections per instance (default 10). */
  poolSize?: number;
  observer?: LedgerObserver;
}

export class PostgresLedger implements Ledger {
  readonly kind = 'postgres' as const;
  readonly name: string;
  centerId = '';
  private secret = Buffer.alloc(0);
  private km = Buffer.alloc(0);
  private pool: pg.Pool | undefined;
  private selecting: Promise<pg.Pool> | undefined;
  private lastPrune = 0;
  private lastFailurePrune = -Infinity;
  private closed = false;

  private constructor(private readonly target: PgTarget, spec: string, private readonly opts: PostgresOptions) {
    this.name = redactPostgresUrl(spec);
  }

  /** Opens a migrated ledger; refuses one that is missing, older or newer than this program's schema. */
  static async open(spec: string, opts: PostgresOptions = {}): Promise<PostgresLedger> {
    const l = new PostgresLedger(parsePostgresUrl(spec), spec, opts);
    try {
      const meta = new Map<string, Buffer>();
      try {
        for (const r of (await l.query('SELECT key, value FROM meta')).rows as Array<{ key: string; value: Buffer }>) meta.set(r.key, r.value);
      } catch (e) {
        if (sqlState(e) === '42P01') throw new LedgerError(`${l.name} holds no mocopy ledger`, `create it with \`mocopy center migrate --db ${l.name}\``);
        throw e;
      }
      const v = Number(meta.get('schema_version')?.toString() ?? 0);
      if (v > LATEST_SCHEMA) throw new LedgerError(`${l.name} is at schema ${v}, newer than this mocopy knows (${LATEST_SCHEMA})`, 'upgrade mocopy on this machine before starting it against this ledger');
      if (v < LATEST_SCHEMA) throw new LedgerError(`${l.name} is at schema ${v}; this mocopy needs ${LATEST_SCHEMA}`, `run \`mocopy center migrate --db ${l.name}\` once (it is safe while older instances run)`);
      const need = (k: string) => {
        const b = meta.get(k);
        if (!b) throw new LedgerError(`${l.name}: missing ${k}`);
        return Buffer.from(b);
      };
      l.centerId = need('center_id').toString();
      l.secret = need('center_secret');
      l.km = need('master_key');
      return l;
    } catch (e) {
      await l.close();
      throw e;
    }
  }

  /** Applies every migration the database lacks, under an advisory lock; returns the versions before and after. */
  static async migrate(spec: string): Promise<{ from: number; to: number }> {
    const l = new PostgresLedger(parsePostgresUrl(spec), spec, { poolSize: 1 });
    try {
      return await l.withClient(async (q) => {
        await q('BEGIN');
        try {
          await q('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
          const has = (await q("SELECT to_regclass('meta') IS NOT NULL AS has")).rows[0].has as boolean;
          const at = has ? Number(((await q("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0]?.value as Buffer | undefined)?.toString() ?? 0) : 0;
          if (at > LATEST_SCHEMA) throw new LedgerError(`${l.name} is at schema ${at}, newer than this mocopy knows (${LATEST_SCHEMA})`, 'upgrade mocopy on this machine');
          for (const m of POSTGRES_MIGRATIONS) if (m.version > at) await q(m.sql);
          const put = 'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING';
          await q(put, ['center_id', Buffer.from(`center-${randomBytes(4).toString('hex')}`)]);
          await q(put, ['center_secret', randomBytes(32)]); // KEYc derivation
          await q(put, ['master_key', randomBytes(32)]); // KM of scheme B
          const to = Math.max(at, LATEST_SCHEMA);
          await q('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', ['schema_version', Buffer.from(String(to))]);
          await q('COMMIT');
          return { from: at, to };
        } catch (e) {
          await q('ROLLBACK').catch(() => undefined);
          throw e;
        }
      });
    } finally {
      await l.close();
    }
  }

  centerSecret(): Buffer {
    return Buffer.from(this.secret);
  }
  masterKey(): Buffer {
    return Buffer.from(this.km);
  }

  // ---- connections ----

  private clientConfig(h: { host: string; port: number }): pg.ClientConfig {
    const t = this.target;
    return {
      host: h.host, port: h.port, database: t.database, user: t.user, password: t.password,
      connectionTimeoutMillis: t.connectTimeoutMs, application_name: t.applicationName, ...(t.ssl ? { ssl: true } : {}),
    };
  }

  /**
   * Picks the first listed host that answers (and, under target_session_attrs=read-write, accepts writes),
   * as libpq does, and pools connections to it until one of them fails.
   */
  private async getPool(): Promise<pg.Pool> {
    if (this.closed) throw new LedgerUnavailableError(this.name, 'the ledger was closed');
    if (this.pool) return this.pool;
    this.selecting ??= this.selectHost().finally(() => (this.selecting = undefined));
    return this.selecting;
  }

  private async selectHost(): Promise<pg.Pool> {
    const tried: string[] = [];
    for (const h of this.target.hosts) {
      const where = `${h.host}:${h.port}`;
      const probe = new pg.Client(this.clientConfig(h));
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        if (this.target.targetSessionAttrs !== 'any') {
          const r = (await probe.query("SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS ro")).rows[0] as { standby: boolean; ro: string };
          if (r.standby || r.ro === 'on') {
            tried.push(`${where} is read-only`);
            continue;
          }
        }
        const pool = new pg.Pool({ ...this.clientConfig(h), max: this.opts.poolSize ?? 10, idleTimeoutMillis: 10_000 });
        // An idle connection's server went away: forget this host, pick again on the next request.
        pool.on('error', () => this.dropPool(pool));
        this.pool = pool;
        return pool;
      } catch (e) {
        tried.push(`${where}: ${(e as Error).message}`);
      } finally {
        await probe.end().catch(() => undefined);
      }
    }
    throw new LedgerUnavailableError(this.name, `no usable server (${tried.join('; ')})`);
  }

  private dropPool(pool: pg.Pool | undefined = this.pool): void {
    if (!pool) return;
    if (this.pool === pool) this.pool = undefined;
    pool.end().catch(() => undefined);
  }

  private async withClient<T>(f: (q: Query) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await (await this.getPool()).connect();
    } catch (e) {
      if (e instanceof LedgerUnavailableError) throw e;
      this.dropPool();
      throw new LedgerUnavailableError(this.name, (e as Error).message, e);
    }
    let broken: Error | undefined;
    // A checked-out connection reports the server's death as an 'error' event as well as by failing the
    // query in flight; unheard, the event would end the process. The failed query carries it to the caller.
    const onError = (e: Error) => { broken = e; };
    client.on('error', onError);
    if (!heard.has(client)) {
      // After release a dead connection may still report its socket's end; the pool has already discarded it.
      heard.add(client);
      client.on('error', () => undefined);
    }
    const q: Query = (text, values, name) => client.query(name ? { name, text, values: values ?? [] } : { text, values: values ?? [] });
    try {
      return await f(q);
    } catch (e) {
      if (isConnectionFailure(e)) {
        broken = e as Error;
        this.dropPool();
        throw new LedgerUnavailableError(this.name, (e as Error).message, e);
      }
      if (isStorageFailure(e)) throw new LedgerWriteError(this.name, e);
      throw e;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  private query(text: string, values?: unknown[], name?: string): Promise<pg.QueryResult> {
    return this.withClient((q) => q(text, values, name));
  }

  // ---- administration ----

  async schemaVersion(): Promise<number> {
    return Number(((await this.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0]?.value as Buffer).toString());
  }

  async addStation(id: string, name: string, userKey: Buffer): Promise<void> {
    await this.query("INSERT INTO stations (id, name, user_key, status, created_at) VALUES ($1, $2, $3, 'active', $4)", [id, name, userKey, new Date().toISOString()]);
  }

  async station(id: string): Promise<StationRow | undefined> {
    const r = (await this.query('SELECT id, name, user_key, status, created_at, revoked_at FROM stations WHERE id = $1', [id], 'station')).rows[0] as DbStation | undefined;
    return r && toStation(r);
  }

  async stations(): Promise<Array<Omit<StationRow, 'userKey'>>> {
    return ((await this.query('SELECT id, name, status, created_at, revoked_at FROM stations ORDER BY created_at COLLATE "C", id COLLATE "C"')).rows as DbStation[]).map(toStationPublic);
  }

  async revokeStation(id: string): Promise<boolean> {
    return (await this.query("UPDATE stations SET status = 'revoked', revoked_at = $1 WHERE id = $2 AND status = 'active'", [new Date().toISOString(), id])).rowCount === 1;
  }

  async upsertContent(c: { id: string; name: string; schemes: Scheme[]; price: number }): Promise<void> {
    await this.query(`INSERT INTO contents (id, name, schemes, price, created_at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, schemes = EXCLUDED.schemes, price = EXCLUDED.price`,
    [c.id, c.name, c.schemes.join(','), Math.round(c.price), new Date().toISOString()]);
  }

  async content(id: string): Promise<ContentRow | undefined> {
    const r = (await this.query('SELECT id, name, schemes, price, created_at FROM contents WHERE id = $1', [id], 'content')).rows[0] as DbContent | undefined;
    return r && toContent(r);
  }

  async contents(): Promise<ContentRow[]> {
    return ((await this.query('SELECT id, name, schemes, price, created_at FROM contents ORDER BY id COLLATE "C"')).rows as DbContent[]).map(toContent);
  }

  async report(): Promise<LedgerReport> {
    return this.withClient(async (q) => {
      // One snapshot for both lists, so every bill's license is in the same report.
      await q('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const licenses = (await q('SELECT id, request_id, station_id, content_id, medium_id, scheme, issued_at FROM licenses ORDER BY issued_at COLLATE "C", id COLLATE "C"')).rows as DbLicense[];
        const billing = (await q(`SELECT b.id, b.license_id, b.station_id, b.content_id, b.amount, b.billed_at, l.medium_id, l.scheme
          FROM billing b LEFT JOIN licenses l ON l.id = b.license_id ORDER BY b.id`)).rows as DbBillingLine[];
        return { licenses: licenses.map(toLicenseSummary), billing: billing.map(toBillingLine) };
      } finally {
        await q('COMMIT').catch(() => undefined);
      }
    });
  }

  // ---- issuance ----

  /** `beforeWrite` runs before each write, so a savepoint is taken only by work that writes. */
  private txFor(q: Query, beforeWrite: () => Promise<void> = async () => undefined): LedgerTx {
    const one = async (sql: string, values: unknown[], name: string) => (await q(sql, values, name)).rows[0] as DbLicense | undefined;
    const byRequest = async (requestId: string) => {
      const r = await one('SELECT * FROM licenses WHERE request_id = $1', [requestId], 'license-by-request');
      return r && toLicense(r);
    };
    const byPair = async (s: string, m: string, c: string, sch: Scheme) => {
      const r = await one('SELECT * FROM licenses WHERE station_id = $1 AND medium_id = $2 AND content_id = $3 AND scheme = $4', [s, m, c, sch], 'license-by-pair');
      return r && toLicense(r);
    };
    return {
      station: async (id) => {
        const r = (await q('SELECT id, name, user_key, status, created_at, revoked_at FROM stations WHERE id = $1', [id], 'station')).rows[0] as DbStation | undefined;
        return r && toStation(r);
      },
      content: async (id) => {
        const r = (await q('SELECT id, name, schemes, price, created_at FROM contents WHERE id = $1', [id], 'content')).rows[0] as DbContent | undefined;
        return r && toContent(r);
      },
      contents: async () => ((await q('SELECT id, name, schemes, price, created_at FROM contents ORDER BY id COLLATE "C"', [], 'contents')).rows as DbContent[]).map(toContent),
      lookup: async (k) => {
        // One round trip: each part is a scalar subquery returning its row as JSON (bytea as hex).
        const r = (await q(`SELECT
            (SELECT row_to_json(s) FROM (SELECT id, name, encode(user_key, 'hex') AS user_key, status, created_at, revoked_at FROM stations WHERE id = $1) s) AS station,
            (SELECT row_to_json(c) FROM (SELECT id, name, schemes, price, created_at FROM contents WHERE id = $4) c) AS content,
            (SELECT row_to_json(l) FROM (SELECT * FROM licenses WHERE request_id = $2) l) AS by_request,
            (SELECT row_to_json(l) FROM (SELECT * FROM licenses WHERE station_id = $1 AND medium_id = $3 AND content_id = $4 AND scheme = $5) l) AS by_pair`,
        [k.stationId, k.requestId, k.mediumId, k.contentId, k.scheme], 'lookup')).rows[0] as { station: (Omit<DbStation, 'user_key'> & { user_key: string }) | null; content: DbContent | null; by_request: DbLicense | null; by_pair: DbLicense | null };
        return {
          station: r.station ? toStation({ ...r.station, user_key: Buffer.from(r.station.user_key, 'hex') }) : undefined,
          content: r.content ? toContent(r.content) : undefined,
          byRequest: r.by_request ? toLicense(r.by_request) : undefined,
          byPair: r.by_pair ? toLicense(r.by_pair) : undefined,
        };
      },
      licenseByRequest: byRequest,
      licenseByPair: byPair,
      insertLicense: async (l: LicenseRow, amount: number) => {
        await beforeWrite();
        // The license and its bill in one statement: the bill is inserted only for a license this statement added.
        const added = await q(`WITH l AS (
            INSERT INTO licenses (id, request_id, station_id, content_id, medium_id, scheme, response, issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT DO NOTHING RETURNING id, station_id, content_id, issued_at)
          INSERT INTO billing (license_id, station_id, content_id, amount, billed_at) SELECT id, station_id, content_id, $9, issued_at FROM l`,
        [l.id, l.requestId, l.stationId, l.contentId, l.mediumId, l.scheme, JSON.stringify(l.response), l.issuedAt, amount], 'insert-license');
        if (added.rowCount === 1) return { license: l, inserted: true };
        // Another transaction holds this request or this pair and has committed (ON CONFLICT waited for it):
        // under READ COMMITTED this statement sees it.
        const stored = (await byRequest(l.requestId)) ?? (await byPair(l.stationId, l.mediumId, l.contentId, l.scheme));
        if (!stored) throw new LedgerError(`license ${l.id} conflicts with a row that is not a license for the same request`);
        return { license: stored, inserted: false };
      },
      spendNonce: async (stationId, nonce, nowMs) => {
        await beforeWrite();
        if (nowMs - this.lastPrune > 60_000) {
          this.lastPrune = nowMs;
          // Outside the request's transaction: instances pruning at once must not queue behind each other's locks.
          this.query('DELETE FROM nonces WHERE seen_at < $1', [nowMs - NONCE_KEEP_MS]).catch(() => undefined);
        }
        return (await q('INSERT INTO nonces (station_id, nonce, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [stationId, nonce, nowMs], 'spend-nonce')).rowCount === 1;
      },
    };
  }

  run<T>(fn: (tx: LedgerTx) => Promise<T>): Promise<T> {
    return this.transact(undefined, fn);
  }

  runSpending<T>(spend: (tx: LedgerTx) => Promise<void>, fn: (tx: LedgerTx) => Promise<T>): Promise<T> {
    return this.transact(spend, fn);
  }

  private async transact<T>(spend: ((tx: LedgerTx) => Promise<void>) | undefined, fn: (tx: LedgerTx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const t0 = process.hrtime.bigint();
        const outcome = await this.withClient(async (q) => {
          await q('BEGIN');
          try {
            // The work's writes go under a savepoint, taken lazily before its first write: a refusal rolls back
            // only them (the spent nonce stays), and work that refuses before writing costs no savepoint.
            let working = false;
            let savepoint = false;
            const tx = this.txFor(q, async () => {
              if (working && !savepoint) {
                await q('SAVEPOINT work');
                savepoint = true;
              }
            });
            if (spend) await spend(tx);
            working = true;
            let result: { ok: true; value: T } | { ok: false; error: unknown };
            try {
              result = { ok: true, value: await fn(tx) };
            } catch (error) {
              if (isDatabaseError(error)) throw error; // the database failed, not the request: undo everything
              if (savepoint) await q('ROLLBACK TO SAVEPOINT work');
              result = { ok: false, error };
            }
            await q('COMMIT');
            this.opts.observer?.commit(Number(process.hrtime.bigint() - t0) / 1e9, 1);
            return result;
          } catch (e) {
            if (!isConnectionFailure(e)) await q('ROLLBACK').catch(() => undefined);
            throw e;
          }
        });
        if (!outcome.ok) throw outcome.error;
        return outcome.value;
      } catch (e) {
        if (RETRYABLE.has(sqlState(e) ?? '') && attempt < RETRIES) continue;
        throw e;
      }
    }
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async dump(): Promise<LedgerDump> {
    return this.withClient(async (q) => {
      await q('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const meta = Object.fromEntries(((await q('SELECT key, value FROM meta ORDER BY key COLLATE "C"')).rows as Array<{ key: string; value: Buffer }>).map((r) => [r.key, r.value.toString('hex')]));
        const stations = ((await q('SELECT * FROM stations ORDER BY id COLLATE "C"')).rows as DbStation[]).map((r) => ({ ...toStationPublic(r), userKey: r.user_key.toString('hex') }));
        const contents = ((await q('SELECT * FROM contents ORDER BY id COLLATE "C"')).rows as DbContent[]).map(toContent);
        const licenses = ((await q('SELECT * FROM licenses ORDER BY issued_at COLLATE "C", id COLLATE "C"')).rows as DbLicense[]).map(toLicense);
        const billing = ((await q('SELECT * FROM billing ORDER BY id')).rows as DbBillingLine[]).map((r) => {
          const b = toBillingLine(r);
          return { id: b.id, licenseId: b.licenseId, stationId: b.stationId, contentId: b.contentId, amount: b.amount, billedAt: b.billedAt };
        });
        const operators = ((await q('SELECT * FROM operators ORDER BY name COLLATE "C"')).rows as DbOperator[]).map(toOperator);
        const auditLog = ((await q('SELECT * FROM audit_log ORDER BY id')).rows as AuditRow[]).map((r) => ({ ...r, id: Number(r.id) }));
        return { format: 'mocopy-ledger-export' as const, version: 1 as const, schemaVersion: Number(Buffer.from(meta.schema_version ?? '', 'hex').toString()), meta, stations, contents, licenses, billing, operators, auditLog };
      } finally {
        await q('COMMIT').catch(() => undefined);
      }
    });
  }

  async load(d: LedgerDump): Promise<void> {
    await this.withClient(async (q) => {
      await q('BEGIN');
      try {
        const n = (await q('SELECT (SELECT COUNT(*) FROM stations) + (SELECT COUNT(*) FROM contents) + (SELECT COUNT(*) FROM licenses) AS n')).rows[0].n as string;
        if (Number(n) > 0) throw new LedgerError(`${this.name} is not empty: import only into a new ledger`);
        for (const [k, v] of Object.entries(d.meta)) {
          if (k === 'schema_version') continue;
          await q('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [k, Buffer.from(v, 'hex')]);
        }
        for (const s of d.stations) await q('INSERT INTO stations (id, name, user_key, status, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)', [s.id, s.name, Buffer.from(s.userKey, 'hex'), s.status, s.createdAt, s.revokedAt]);
        for (const c of d.contents) await q('INSERT INTO contents (id, name, schemes, price, created_at) VALUES ($1, $2, $3, $4, $5)', [c.id, c.name, c.schemes.join(','), c.price, c.createdAt]);
        for (const l of d.licenses) await q('INSERT INTO licenses (id, request_id, station_id, content_id, medium_id, scheme, response, issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [l.id, l.requestId, l.stationId, l.contentId, l.mediumId, l.scheme, JSON.stringify(l.response), l.issuedAt], 'load-license');
        for (const b of d.billing) await q('INSERT INTO billing (id, license_id, station_id, content_id, amount, billed_at) VALUES ($1, $2, $3, $4, $5, $6)', [b.id, b.licenseId, b.stationId, b.contentId, b.amount, b.billedAt], 'load-bill');
        for (const o of d.operators ?? []) await q('INSERT INTO operators (name, role, password_hash, created_at, password_changed_at) VALUES ($1, $2, $3, $4, $5)', [o.name, o.role, o.passwordHash, o.createdAt, o.passwordChangedAt]);
        for (const a of d.auditLog ?? []) await q('INSERT INTO audit_log (id, at, operator, address, action, target, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [a.id, a.at, a.operator, a.address, a.action, a.target, a.before, a.after]);
        await q("SELECT setval(pg_get_serial_sequence('audit_log', 'id'), GREATEST((SELECT MAX(id) FROM audit_log), 1), (SELECT COUNT(*) FROM audit_log) > 0)");
        // Bills keep their numbers; new ones continue after the highest.
        await q("SELECT setval(pg_get_serial_sequence('billing', 'id'), GREATEST((SELECT MAX(id) FROM billing), 1), (SELECT COUNT(*) FROM billing) > 0)");
        await q('COMMIT');
      } catch (e) {
        await q('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool ?? (this.selecting ? await this.selecting.catch(() => undefined) : undefined);
    this.pool = undefined;
    if (pool) await pool.end().catch(() => undefined);
  }

  // ---- the operators' console ----

  /** `f` in one transaction (the change and its audit row commit together), retried on serialization failures. */
  private async txn<T>(f: (q: Query) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withClient(async (q) => {
          await q('BEGIN');
          try {
            const v = await f(q);
            await q('COMMIT');
            return v;
          } catch (e) {
            if (!isConnectionFailure(e)) await q('ROLLBACK').catch(() => undefined);
            throw e;
          }
        });
      } catch (e) {
        if (RETRYABLE.has(sqlState(e) ?? '') && attempt < RETRIES) continue;
        throw e;
      }
    }
  }

  private auditRow(q: Query, actor: AuditActor, action: string, target: string, before: unknown, after: unknown): Promise<pg.QueryResult> {
    return q('INSERT INTO audit_log (at, operator, address, action, target, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [new Date().toISOString(), actor.operator, actor.address, action, target, auditJson(before), auditJson(after)], 'audit-insert');
  }

  async addOperator(o: OperatorRow, actor: AuditActor): Promise<boolean> {
    return this.txn(async (q) => {
      const added = (await q('INSERT INTO operators (name, role, password_hash, created_at, password_changed_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
        [o.name, o.role, o.passwordHash, o.createdAt, o.passwordChangedAt])).rowCount === 1;
      if (added) await this.auditRow(q, actor, 'operator.add', o.name, null, { role: o.role });
      return added;
    });
  }

  async operator(name: string): Promise<OperatorRow | undefined> {
    const r = (await this.query('SELECT name, role, password_hash, created_at, password_changed_at FROM operators WHERE name = $1', [name], 'operator')).rows[0] as DbOperator | undefined;
    return r && toOperator(r);
  }

  async operators(): Promise<Array<Omit<OperatorRow, 'passwordHash'>>> {
    return ((await this.query('SELECT name, role, password_hash, created_at, password_changed_at FROM operators ORDER BY name COLLATE "C"')).rows as DbOperator[])
      .map((r) => { const { passwordHash: _, ...o } = toOperator(r); return o; });
  }

  async removeOperator(name: string, actor: AuditActor): Promise<boolean> {
    return this.txn(async (q) => {
      const before = (await q('SELECT role FROM operators WHERE name = $1 FOR UPDATE', [name])).rows[0] as { role: string } | undefined;
      if (!before) return false;
      await q('DELETE FROM console_sessions WHERE operator = $1', [name]);
      await q('DELETE FROM operators WHERE name = $1', [name]);
      await this.auditRow(q, actor, 'operator.remove', name, { role: before.role }, null);
      return true;
    });
  }

  async setOperatorPassword(name: string, passwordHash: string, actor: AuditActor): Promise<boolean> {
    return this.txn(async (q) => {
      const at = new Date().toISOString();
      if ((await q('UPDATE operators SET password_hash = $1, password_changed_at = $2 WHERE name = $3', [passwordHash, at, name])).rowCount !== 1) return false;
      await q('DELETE FROM console_sessions WHERE operator = $1', [name]);
      await this.auditRow(q, actor, 'operator.passwd', name, null, { passwordChangedAt: at });
      return true;
    });
  }

  async createSession(x: { tokenHash: string; operator: string; nowMs: number; address: string }): Promise<void> {
    await this.query('INSERT INTO console_sessions (token_hash, operator, created_ms, seen_ms, address) VALUES ($1, $2, $3, $3, $4)', [x.tokenHash, x.operator, x.nowMs, x.address]);
    await this.query('DELETE FROM console_sessions WHERE seen_ms < $1', [x.nowMs - 24 * 3600_000]);
  }

  async useSession(tokenHash: string, nowMs: number, idleMs: number, absoluteMs: number): Promise<ConsoleSession | undefined> {
    const r = (await this.query(`SELECT s.operator, o.role, s.created_ms, s.seen_ms FROM console_sessions s JOIN operators o ON o.name = s.operator
      WHERE s.token_hash = $1`, [tokenHash], 'session')).rows[0] as { operator: string; role: OperatorRole; created_ms: string; seen_ms: string } | undefined;
    if (!r) return undefined;
    const created = Number(r.created_ms);
    const seen = Number(r.seen_ms);
    if (nowMs - seen > idleMs || nowMs - created > absoluteMs) {
      await this.query('DELETE FROM console_sessions WHERE token_hash = $1', [tokenHash]);
      return undefined;
    }
    if (nowMs - seen > 1000) await this.query('UPDATE console_sessions SET seen_ms = GREATEST(seen_ms, $1) WHERE token_hash = $2', [nowMs, tokenHash], 'session-touch');
    return { operator: r.operator, role: r.role, createdMs: created, seenMs: nowMs };
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.query('DELETE FROM console_sessions WHERE token_hash = $1', [tokenHash]);
  }

  async signInFailures(name: string): Promise<{ failures: number; lastMs: number } | undefined> {
    const r = (await this.query('SELECT failures, last_ms FROM console_failures WHERE name = $1', [name])).rows[0] as { failures: number; last_ms: string } | undefined;
    return r && { failures: Number(r.failures), lastMs: Number(r.last_ms) };
  }

  async recordSignInFailure(name: string, nowMs: number): Promise<number> {
    if (Math.abs(nowMs - this.lastFailurePrune) > 60_000) {
      this.lastFailurePrune = nowMs;
      await this.query('DELETE FROM console_failures WHERE last_ms < $1', [nowMs - SIGN_IN_FAILURES_KEEP_MS]);
    }
    return Number((await this.query(`INSERT INTO console_failures (name, failures, last_ms) VALUES ($1, 1, $2)
      ON CONFLICT (name) DO UPDATE SET failures = console_failures.failures + 1, last_ms = EXCLUDED.last_ms RETURNING failures`, [name, nowMs])).rows[0].failures);
  }

  async clearSignInFailures(name: string): Promise<void> {
    await this.query('DELETE FROM console_failures WHERE name = $1', [name]);
  }

  async addStationAudited(id: string, name: string, userKey: Buffer, actor: AuditActor, download: KeyDownload): Promise<void> {
    await this.txn(async (q) => {
      await q("INSERT INTO stations (id, name, user_key, status, created_at) VALUES ($1, $2, $3, 'active', $4)", [id, name, userKey, new Date().toISOString()]);
      await q('DELETE FROM console_downloads WHERE expires_ms < $1', [Date.now()]);
      await q('INSERT INTO console_downloads (token_hash, station_id, session_hash, expires_ms) VALUES ($1, $2, $3, $4)', [download.tokenHash, id, download.sessionHash, download.expiresMs]);
      await this.auditRow(q, actor, 'station.add', id, null, { name, status: 'active' });
    });
  }

  async takeKeyDownload(tokenHash: string, sessionHash: string, nowMs: number): Promise<StationRow | undefined> {
    return this.txn(async (q) => {
      const r = (await q('DELETE FROM console_downloads WHERE token_hash = $1 AND session_hash = $2 RETURNING station_id, expires_ms', [tokenHash, sessionHash])).rows[0] as { station_id: string; expires_ms: string } | undefined;
      if (!r || Number(r.expires_ms) < nowMs) return undefined;
      const st = (await q('SELECT id, name, user_key, status, created_at, revoked_at FROM stations WHERE id = $1', [r.station_id], 'station')).rows[0] as DbStation | undefined;
      return st && toStation(st);
    });
  }

  async revokeStationAudited(id: string, actor: AuditActor): Promise<boolean> {
    return this.txn(async (q) => {
      const at = new Date().toISOString();
      const before = (await q('SELECT name, status FROM stations WHERE id = $1 FOR UPDATE', [id])).rows[0] as { name: string; status: string } | undefined;
      if (!before || before.status !== 'active') return false;
      await q("UPDATE stations SET status = 'revoked', revoked_at = $1 WHERE id = $2", [at, id]);
      await this.auditRow(q, actor, 'station.revoke', id, { name: before.name, status: 'active' }, { name: before.name, status: 'revoked', revokedAt: at });
      return true;
    });
  }

  async addContentAudited(x: { id: string; name: string; schemes: Scheme[]; price: number }, actor: AuditActor): Promise<boolean> {
    return this.txn(async (q) => {
      const added = (await q('INSERT INTO contents (id, name, schemes, price, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
        [x.id, x.name, x.schemes.join(','), x.price, new Date().toISOString()])).rowCount === 1;
      if (added) await this.auditRow(q, actor, 'content.add', x.id, null, { name: x.name, schemes: x.schemes, price: x.price });
      return added;
    });
  }

  async setContentPrice(id: string, price: number, actor: AuditActor): Promise<boolean> {
    return this.txn(async (q) => {
      const before = (await q('SELECT price FROM contents WHERE id = $1 FOR UPDATE', [id])).rows[0] as { price: string } | undefined;
      if (!before) return false;
      await q('UPDATE contents SET price = $1 WHERE id = $2', [price, id]);
      await this.auditRow(q, actor, 'content.price', id, { price: Number(before.price) }, { price });
      return true;
    });
  }

  async auditLog(filter: AuditFilter, beforeId: number | undefined, limit: number): Promise<AuditRow[]> {
    const q = auditSql('postgres', filter, beforeId, limit);
    return ((await this.query(q.sql, q.values)).rows as AuditRow[]).map(toAuditRow);
  }

  async licensePage(filter: LicenseFilter, page: { after?: LicenseCursor; order: 'asc' | 'desc'; limit: number }): Promise<LicenseListRow[]> {
    const q = licensePageSql('postgres', filter, page);
    return ((await this.query(q.sql, q.values)).rows as DbLicenseListRow[]).map(toLicenseListRow);
  }

  async licenseTotals(sinceIso: string): Promise<{ licenses: number; revenue: number }> {
    const r = (await this.query(totalsSql('postgres'), [sinceIso])).rows[0] as { licenses: string; revenue: string };
    return { licenses: Number(r.licenses), revenue: Number(r.revenue) };
  }

  async licensesPerDay(sinceIso: string): Promise<Array<{ day: string; licenses: number; revenue: number }>> {
    return ((await this.query(perDaySql('postgres'), [sinceIso])).rows as Array<{ day: string; licenses: string; revenue: string }>)
      .map((r) => ({ day: r.day, licenses: Number(r.licenses), revenue: Number(r.revenue) }));
  }

  async revenueBy(kind: 'content' | 'station', sinceIso: string, limit: number): Promise<Array<{ id: string; licenses: number; revenue: number }>> {
    return ((await this.query(revenueBySql('postgres', kind), [sinceIso, limit])).rows as Array<{ id: string; licenses: string; revenue: string }>)
      .map((r) => ({ id: r.id, licenses: Number(r.licenses), revenue: Number(r.revenue) }));
  }

  async stationActivity(): Promise<Array<{ id: string; licenses: number; lastLicenseAt: string | null; lastRequestMs: number | null }>> {
    return ((await this.query(STATION_ACTIVITY_SQL)).rows as Parameters<typeof toStationActivity>[0][]).map(toStationActivity);
  }
}
