/** Database rows (snake_case, as either backend returns them) to the ledger's values. */
import type { License, Scheme } from '../../domain/index.js';
import type { BillingLine, OperatorRow, ContentRow, LicenseRow, LicenseSummary, StationRow } from './types.js';

export interface DbStation { id: string; name: string; user_key: Buffer; status: 'active' | 'revoked'; created_at: string; revoked_at: string | null }
export interface DbContent { id: string; name: string; schemes: string; price: number | string; created_at: string }
export interface DbLicense { id: string; request_id: string; station_id: string; content_id: string; medium_id: string; scheme: Scheme; response: string; issued_at: string }
export interface DbBillingLine { id: number | string; license_id: string; station_id: string; content_id: string; amount: number | string; billed_at: string; medium_id: string; scheme: Scheme }

export const toStation = (r: DbStation): StationRow =>
  ({ id: r.id, name: r.name, userKey: Buffer.from(r.user_key), status: r.status, createdAt: r.created_at, revokedAt: r.revoked_at });

export const toStationPublic = (r: Omit<DbStation, 'user_key'>): Omit<StationRow, 'userKey'> =>
  ({ id: r.id, name: r.name, status: r.status, createdAt: r.created_at, revokedAt: r.revoked_at });

// PostgreSQL's BIGINT arrives as a string (it may exceed 2^53); prices and bill numbers stay far below.
export const toContent = (r: DbContent): ContentRow =>
  ({ id: r.id, name: r.name, schemes: r.schemes.split(',') as Scheme[], price: Number(r.price), createdAt: r.created_at });

export const toLicense = (r: DbLicense): LicenseRow =>
  ({ id: r.id, requestId: r.request_id, stationId: r.station_id, contentId: r.content_id, mediumId: r.medium_id, scheme: r.scheme, response: JSON.parse(r.response) as License, issuedAt: r.issued_at });

export const toLicenseSummary = (r: Omit<DbLicense, 'response'>): LicenseSummary =>
  ({ id: r.id, requestId: r.request_id, stationId: r.station_id, contentId: r.content_id, mediumId: r.medium_id, scheme: r.scheme, issuedAt: r.issued_at });

export const toBillingLine = (r: DbBillingLine): BillingLine =>
  ({ id: Number(r.id), licenseId: r.license_id, stationId: r.station_id, contentId: r.content_id, amount: Number(r.amount), billedAt: r.billed_at, mediumId: r.medium_id, scheme: r.scheme });

/** The same query text on both backends: columns the report shows, in a stable order. */
export const REPORT_LICENSES = 'SELECT id, request_id, station_id, content_id, medium_id, scheme, issued_at FROM licenses ORDER BY issued_at, id';
export const REPORT_BILLING = `SELECT b.id, b.license_id, b.station_id, b.content_id, b.amount, b.billed_at, l.medium_id, l.scheme
  FROM billing b LEFT JOIN licenses l ON l.id = b.license_id ORDER BY b.id`;

export interface DbOperator { name: string; role: 'admin' | 'viewer'; password_hash: string; created_at: string; password_changed_at: string }
export const toOperator = (r: DbOperator): OperatorRow =>
  ({ name: r.name, role: r.role, passwordHash: r.password_hash, createdAt: r.created_at, passwordChangedAt: r.password_changed_at });
