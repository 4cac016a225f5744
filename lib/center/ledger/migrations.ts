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
];

export const LATEST_SCHEMA = SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1]!.version;
