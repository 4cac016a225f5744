/**
 * Versioned schema migrations, one list per backend with the same version numbers, so a dump from either
 * names one schema. A ledger records the version it is at (meta 'schema_version'); a program refuses a ledger
 * newer than the last version it knows. Append only: a released migration is never edited.
 */

export interface Migration { version: number; name: string; sql: string }

export const SQLITE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'stations, contents, licenses, billing, nonces',
    // IF NOT EXISTS: ledgers written before migrations were versioned already hold these tables.
    sql: `
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
CREATE INDEX IF NOT EXISTS nonces_seen ON nonces(seen_at);`,
  },
  {
    version: 2,
    name: 'indexes for reports by time and by medium',
    sql: `
CREATE INDEX IF NOT EXISTS licenses_issued ON licenses(issued_at, id);
CREATE INDEX IF NOT EXISTS licenses_medium ON licenses(medium_id);`,
  },
  {
    version: 3,
    name: 'operators console: operators, sessions, sign-in failures, key downloads, audit log; indexes for license filters',
    sql: `
CREATE TABLE IF NOT EXISTS operators (
  name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
  password_hash TEXT NOT NULL, created_at TEXT NOT NULL, password_changed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_sessions (
  token_hash TEXT PRIMARY KEY, operator TEXT NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
  created_ms INTEGER NOT NULL, seen_ms INTEGER NOT NULL, address TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS console_sessions_seen ON console_sessions(seen_ms);
CREATE TABLE IF NOT EXISTS console_failures (name TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS console_downloads (
  token_hash TEXT PRIMARY KEY, station_id TEXT NOT NULL REFERENCES stations(id), session_hash TEXT NOT NULL, expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
  id INTEGER PRIMARY KEY, at TEXT NOT NULL, operator TEXT NOT NULL, address TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL, before TEXT, after TEXT);
CREATE INDEX IF NOT EXISTS audit_operator ON audit_log(operator, id);
CREATE INDEX IF NOT EXISTS audit_action ON audit_log(action, id);
CREATE INDEX IF NOT EXISTS licenses_station_issued ON licenses(station_id, issued_at, id);
CREATE INDEX IF NOT EXISTS licenses_content_issued ON licenses(content_id, issued_at, id);
CREATE INDEX IF NOT EXISTS licenses_medium_issued ON licenses(medium_id, issued_at, id);
CREATE INDEX IF NOT EXISTS billing_billed ON billing(billed_at);`,
  },
];

export const POSTGRES_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'stations, contents, licenses, billing, nonces',
    sql: `
CREATE TABLE meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE stations (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, user_key BYTEA NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
  created_at TEXT NOT NULL, revoked_at TEXT);
CREATE TABLE contents (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, schemes TEXT NOT NULL, price BIGINT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE licenses (
  id TEXT PRIMARY KEY, request_id TEXT NOT NULL UNIQUE,
  station_id TEXT NOT NULL REFERENCES stations(id), content_id TEXT NOT NULL REFERENCES contents(id),
  medium_id TEXT NOT NULL, scheme TEXT NOT NULL CHECK (scheme IN ('a', 'b')),
  response TEXT NOT NULL, issued_at TEXT NOT NULL,
  UNIQUE (station_id, medium_id, content_id, scheme));
CREATE TABLE billing (
  id BIGSERIAL PRIMARY KEY, license_id TEXT NOT NULL UNIQUE REFERENCES licenses(id),
  station_id TEXT NOT NULL, content_id TEXT NOT NULL, amount BIGINT NOT NULL, billed_at TEXT NOT NULL);
CREATE TABLE nonces (
  station_id TEXT NOT NULL, nonce TEXT NOT NULL, seen_at BIGINT NOT NULL, PRIMARY KEY (station_id, nonce));
CREATE INDEX nonces_seen ON nonces(seen_at);`,
  },
  {
    version: 2,
    name: 'indexes for reports by time and by medium',
    sql: `
CREATE INDEX licenses_issued ON licenses(issued_at COLLATE "C", id COLLATE "C");
CREATE INDEX licenses_medium ON licenses(medium_id);`,
  },
  {
    version: 3,
    name: 'operators console: operators, sessions, sign-in failures, key downloads, audit log; indexes for license filters',
    sql: `
CREATE TABLE operators (
  name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
  password_hash TEXT NOT NULL, created_at TEXT NOT NULL, password_changed_at TEXT NOT NULL);
CREATE TABLE console_sessions (
  token_hash TEXT PRIMARY KEY, operator TEXT NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
  created_ms BIGINT NOT NULL, seen_ms BIGINT NOT NULL, address TEXT NOT NULL);
CREATE INDEX console_sessions_seen ON console_sessions(seen_ms);
CREATE TABLE console_failures (name TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_ms BIGINT NOT NULL);
CREATE TABLE console_downloads (
  token_hash TEXT PRIMARY KEY, station_id TEXT NOT NULL REFERENCES stations(id), session_hash TEXT NOT NULL, expires_ms BIGINT NOT NULL);
CREATE TABLE audit_log (
  id BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, operator TEXT NOT NULL, address TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL, before TEXT, after TEXT);
CREATE INDEX audit_operator ON audit_log(operator, id);
CREATE INDEX audit_action ON audit_log(action, id);
CREATE INDEX licenses_station_issued ON licenses(station_id, issued_at COLLATE "C", id COLLATE "C");
CREATE INDEX licenses_content_issued ON licenses(content_id, issued_at COLLATE "C", id COLLATE "C");
CREATE INDEX licenses_medium_issued ON licenses(medium_id, issued_at COLLATE "C", id COLLATE "C");
CREATE INDEX billing_billed ON billing(billed_at COLLATE "C");`,
  },
];

export const LATEST_SCHEMA = SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1]!.version;
