/**
 * Moving a ledger between backends (SQLite → PostgreSQL, or a copy for a test site): every row of every
 * table, the center's secrets included, so licenses already issued still verify and stations keep their
 * keys. The file is written 0600 and never over an existing one; the import reads the target back and
 * compares it with the file, so "imported" means every row arrived unchanged.
 */
import { isDeepStrictEqual } from 'node:util';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { FormatError, MocopyError, ExitCode } from '../errors.js';
import { migrateLedger, openLedger, type LedgerDump } from './ledger.js';

export interface TransferCounts { stations: number; contents: number; licenses: number; billing: number; operators: number; auditLog: number }

// Console sessions, sign-in failure counters and pending key downloads are not moved: operators sign in again.
const counts = (d: LedgerDump): TransferCounts => ({
  stations: d.stations.length, contents: d.contents.length, licenses: d.licenses.length, billing: d.billing.length,
  operators: d.operators?.length ?? 0, auditLog: d.auditLog?.length ?? 0,
});

export async function exportLedger(spec: string, file: string): Promise<TransferCounts> {
  const l = await openLedger(spec, { create: false });
  let d: LedgerDump;
  try {
    d = await l.dump();
  } finally {
    await l.close();
  }
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (e) {
    throw new MocopyError('E_EXPORT_FILE', `cannot create ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { exitCode: ExitCode.USAGE, hint: 'name a new file: an export is never written over an existing one' });
  }
  try {
    writeSync(fd, JSON.stringify(d) + '\n');
  } finally {
    closeSync(fd);
  }
  return counts(d);
}

function readDump(file: string): LedgerDump {
  let d: LedgerDump;
  try {
    d = JSON.parse(readFileSync(file, 'utf8')) as LedgerDump;
  } catch (e) {
    throw new FormatError(`${file} is not a ledger export: ${(e as Error).message}`);
  }
  if (d?.format !== 'mocopy-ledger-export' || d.version !== 1 || ![d.stations, d.contents, d.licenses, d.billing].every(Array.isArray) || typeof d.meta !== 'object'
    || ![d.operators ?? [], d.auditLog ?? []].every(Array.isArray)) {
    throw new FormatError(`${file} is not a mocopy ledger export (format mocopy-ledger-export, version 1)`);
  }
  return d;
}

export async function importLedger(spec: string, file: string): Promise<TransferCounts> {
  const d = readDump(file);
  await migrateLedger(spec);
  const l = await openLedger(spec);
  try {
    await l.load(d);
    const back = await l.dump();
    const strip = (x: LedgerDump) => ({ ...x, schemaVersion: 0, meta: { ...x.meta, schema_version: '' }, operators: x.operators ?? [], auditLog: x.auditLog ?? [] });
    if (!isDeepStrictEqual(strip(back), strip(d))) throw new MocopyError('E_IMPORT_MISMATCH', `the ledger ${l.name} does not read back as ${file}: the import is incomplete`, { exitCode: ExitCode.INTERNAL });
    return counts(back);
  } finally {
    await l.close();
  }
}
