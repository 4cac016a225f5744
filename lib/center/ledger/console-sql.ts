/**
 * The console's queries, written once for both backends: placeholders (`?` or `$n`) and text ordering
 * (SQLite's BINARY, PostgreSQL's COLLATE "C", as the indexes are built) come from the dialect.
 * Every value is a bound parameter; only fixed column names are ever spliced in.
 */
import type { AuditFilter, AuditRow, LicenseCursor, LicenseFilter, LicenseListRow } from './types.js';
import type { Scheme } from '../../domain/index.js';

export type Dialect = 'sqlite' | 'postgres';

class Params {
  readonly values: unknown[] = [];
  constructor(private readonly d: Dialect) {}
  add(v: unknown): string {
    this.values.push(v);
    return this.d === 'sqlite' ? '?' : `$${this.values.length}`;
  }
}

const c = (d: Dialect, col: string) => (d === 'postgres' ? `${col} COLLATE "C"` : col);

export function licensePageSql(d: Dialect, f: LicenseFilter, page: { after?: LicenseCursor; order: 'asc' | 'desc'; limit: number }): { sql: string; values: unknown[] } {
  const p = new Params(d);
  const where: string[] = [];
  if (f.stationId) where.push(`l.station_id = ${p.add(f.stationId)}`);
  if (f.contentId) where.push(`l.content_id = ${p.add(f.contentId)}`);
  if (f.mediumId) where.push(`l.medium_id = ${p.add(f.mediumId)}`);
  if (f.from) where.push(`${c(d, 'l.issued_at')} >= ${p.add(f.from)}`);
  if (f.to) where.push(`${c(d, 'l.issued_at')} < ${p.add(f.to)}`);
  const dir = page.order === 'asc' ? 'ASC' : 'DESC';
  if (page.after) where.push(`(${c(d, 'l.issued_at')}, ${c(d, 'l.id')}) ${page.order === 'asc' ? '>' : '<'} (${p.add(page.after.issuedAt)}, ${p.add(page.after.id)})`);
  const sql = `SELECT l.id, l.request_id, l.station_id, l.content_id, l.medium_id, l.scheme, l.issued_at, b.id AS bill_id, b.amount, b.billed_at
    FROM licenses l LEFT JOIN billing b ON b.license_id = l.id
    ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY ${c(d, 'l.issued_at')} ${dir}, ${c(d, 'l.id')} ${dir} LIMIT ${p.add(page.limit)}`;
  return { sql, values: p.values };
}

export interface DbLicenseListRow { id: string; request_id: string; station_id: string; content_id: string; medium_id: string; scheme: Scheme; issued_at: string; bill_id: number | string | null; amount: number | string | null; billed_at: string | null }

/** A page row as a raw statement returns it: the columns of licensePageSql's SELECT, in order. */
export type LicenseListTuple = [string, string, string, string, string, Scheme, string, number | string | null, number | string | null, string | null];

export const fromLicenseListTuple = (r: LicenseListTuple): LicenseListRow => ({
  id: r[0], requestId: r[1], stationId: r[2], contentId: r[3], mediumId: r[4], scheme: r[5], issuedAt: r[6],
  billId: r[7] === null ? null : Number(r[7]), amount: r[8] === null ? null : Number(r[8]), billedAt: r[9],
});

export const toLicenseListRow = (r: DbLicenseListRow): LicenseListRow => ({
  id: r.id, requestId: r.request_id, stationId: r.station_id, contentId: r.content_id, mediumId: r.medium_id, scheme: r.scheme, issuedAt: r.issued_at,
  billId: r.bill_id === null ? null : Number(r.bill_id), amount: r.amount === null ? null : Number(r.amount), billedAt: r.billed_at,
});

export function auditSql(d: Dialect, f: AuditFilter, beforeId: number | undefined, limit: number): { sql: string; values: unknown[] } {
  const p = new Params(d);
  const where: string[] = [];
  if (f.operator) where.push(`operator = ${p.add(f.operator)}`);
  if (f.action) where.push(`action = ${p.add(f.action)}`);
  if (f.target) where.push(`target = ${p.add(f.target)}`);
  if (beforeId !== undefined) where.push(`id < ${p.add(beforeId)}`);
  const sql = `SELECT id, at, operator, address, action, target, before, after FROM audit_log
    ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${p.add(limit)}`;
  return { sql, values: p.values };
}

export const toAuditRow = (r: Omit<AuditRow, 'id'> & { id: number | string }): AuditRow =>
  ({ id: Number(r.id), at: r.at, operator: r.operator, address: r.address, action: r.action, target: r.target, before: r.before, after: r.after });

export function totalsSql(d: Dialect): string {
  return `SELECT COUNT(*) AS licenses, COALESCE(SUM(amount), 0) AS revenue FROM billing WHERE ${c(d, 'billed_at')} >= ${d === 'sqlite' ? '?' : '$1'}`;
}

export function perDaySql(d: Dialect): string {
  return `SELECT substr(billed_at, 1, 10) AS day, COUNT(*) AS licenses, COALESCE(SUM(amount), 0) AS revenue FROM billing
    WHERE ${c(d, 'billed_at')} >= ${d === 'sqlite' ? '?' : '$1'} GROUP BY substr(billed_at, 1, 10) ORDER BY 1`;
}

export function revenueBySql(d: Dialect, kind: 'content' | 'station'): string {
  const col = kind === 'content' ? 'content_id' : 'station_id';
  const [a, b] = d === 'sqlite' ? ['?', '?'] : ['$1', '$2'];
  return `SELECT ${col} AS id, COUNT(*) AS licenses, COALESCE(SUM(amount), 0) AS revenue FROM billing
    WHERE ${c(d, 'billed_at')} >= ${a} GROUP BY ${col} ORDER BY revenue DESC, ${c(d, col)} LIMIT ${b}`;
}

export const STATION_ACTIVITY_SQL = `SELECT s.id,
    (SELECT COUNT(*) FROM licenses l WHERE l.station_id = s.id) AS licenses,
    (SELECT MAX(l.issued_at) FROM licenses l WHERE l.station_id = s.id) AS last_license_at,
    (SELECT MAX(n.seen_at) FROM nonces n WHERE n.station_id = s.id) AS last_request_ms
  FROM stations s`;

export const toStationActivity = (r: { id: string; licenses: number | string; last_license_at: string | null; last_request_ms: number | string | null }) =>
  ({ id: r.id, licenses: Number(r.licenses), lastLicenseAt: r.last_license_at, lastRequestMs: r.last_request_ms === null ? null : Number(r.last_request_ms) });

/** An audit row's before/after: the changed object as JSON (never a key, a password or its hash). */
export const auditJson = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));
