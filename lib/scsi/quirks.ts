/**
 * How to read the medium ID on a given drive model. No single standard command reads the
 * non-rewritable medium-ID zone on every drive, so the method is looked up by INQUIRY identity.
 * A lab adds a model with a JSON file (MOCOPY_QUIRKS=/path/quirks.json or --quirks); see docs/medium-id.md.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { InquiryInfo } from './device-api.js';

export type MediumIdMethod =
  /** SPC READ MEDIA SERIAL NUMBER (SERVICE ACTION IN(12) AB/01): the standard way, the default. */
  | { type: 'read-media-serial-number' }
  /** A vendor VPD page; the ID is the page body from `offset`, `length` bytes (default: to the end). */
  | { type: 'vpd'; page: number; offset?: number; length?: number }
  /** MMC READ DISC STRUCTURE with a format code; the ID is the structure body after the 4-byte header. */
  | { type: 'read-disc-structure'; format: number; offset?: number; length?: number }
  /** A vendor-unique CDB (hex); `alloc` bytes are read and bytes [offset, offset+length) are the ID. */
  | { type: 'vendor-cdb'; cdb: string; alloc: number; offset?: number; length?: number }
  /**
   * LAB STAND-IN ONLY: the drive's unit serial (VPD 80h) used as a medium ID, for virtual rig
   * drives (QEMU, scsi_debug) that have no medium-ID zone. Never for production drives:
   * the unit serial belongs to the drive, so every disc in it would share one "medium ID".
   */
  | { type: 'unit-serial-standin' };

export interface Quirk {
  vendor: string;
  /** Product prefix; '*' matches any. */
  product: string;
  /** Revision prefix (optional). */
  revision?: string;
  method: MediumIdMethod;
  note?: string;
}

export const BUILTIN_QUIRKS: readonly Quirk[] = [
  { vendor: 'QEMU', product: 'QEMU HARDDISK', method: { type: 'unit-serial-standin' }, note: 'virtual rig stand-in: QEMU scsi-hd has no medium-ID zone' },
  { vendor: 'QEMU', product: 'QEMU CD-ROM', method: { type: 'unit-serial-standin' }, note: 'virtual rig stand-in' },
  { vendor: 'Linux', product: 'scsi_debug', method: { type: 'unit-serial-standin' }, note: 'virtual rig stand-in: scsi_debug has no medium-ID zone' },
  { vendor: 'HP', product: 'C1113', method: { type: 'vpd', page: 0xc1 }, note: 'HP optical drives: VPD C1h "Unique Media ID" (published example; unverified here)' },
];

function matches(q: Quirk, inq: Pick<InquiryInfo, 'vendor' | 'product' | 'revision'>): boolean {
  const norm = (s: string) => s.trim().toUpperCase();
  if (norm(q.vendor) !== norm(inq.vendor)) return false;
  if (q.product !== '*' && !norm(inq.product).startsWith(norm(q.product))) return false;
  if (q.revision && !norm(inq.revision).startsWith(norm(q.revision))) return false;
  return true;
}

export function findQuirk(inq: Pick<InquiryInfo, 'vendor' | 'product' | 'revision'>, table: readonly Quirk[]): Quirk | undefined {
  return table.find((q) => matches(q, inq));
}

const isInt = (v: unknown, min: number, max: number): boolean => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** offset / length of the ID in the answer, when given: whole numbers (a string or fraction would cut the wrong bytes). */
function checkSlice(o: Record<string, unknown>, where: string): void {
  for (const k of ['offset', 'length'] as const) {
    if (o[k] !== undefined && !isInt(o[k], 0, 65535)) throw new UsageError(`${where}: "${k}" must be a whole number 0..65535`);
  }
}

function validateMethod(m: unknown, where: string): MediumIdMethod {
  const o = m as Record<string, unknown>;
  if (!o || typeof o !== 'object') throw new UsageError(`${where}: "method" must be an object`);
  // Every number below goes into a CDB field or sizes a buffer: whole numbers in range, or the medium-ID read
  // throws a RangeError later (a fraction passed here, found by fuzzing: test/fuzz-corpus/quirks-*).
  switch (o.type) {
    case 'read-media-serial-number': case 'unit-serial-standin': return { type: o.type };
    case 'vpd':
      if (!isInt(o.page, 0, 255)) throw new UsageError(`${where}: vpd "page" must be 0..255`);
      checkSlice(o, where);
      return o as MediumIdMethod;
    case 'read-disc-structure':
      if (!isInt(o.format, 0, 255)) throw new UsageError(`${where}: "format" must be 0..255`);
      checkSlice(o, where);
      return o as MediumIdMethod;
    case 'vendor-cdb':
      if (typeof o.cdb !== 'string' || !/^([0-9a-f]{2}\s?){6,16}$/i.test(o.cdb)) throw new UsageError(`${where}: "cdb" must be 6..16 hex bytes`);
      if (!isInt(o.alloc, 1, 65535)) throw new UsageError(`${where}: "alloc" must be 1..65535`);
      checkSlice(o, where);
      return o as MediumIdMethod;
    default:
      // JSON.stringify, not String(): a type like {"toString": null} makes String() throw a TypeError (fuzzing: test/fuzz-corpus/quirks-typeerror-*).
      throw new UsageError(`${where}: unknown method type ${JSON.stringify(o.type) ?? 'undefined'}`);
  }
}

/** Loads a quirks JSON file: an array of Quirk objects. User entries take precedence over built-ins. */
export function loadQuirks(path?: string): Quirk[] {
  const file = path ?? process.env.MOCOPY_QUIRKS;
  if (!file) return [...BUILTIN_QUIRKS];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read quirks file ${file}: ${(e as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new UsageError(`quirks file ${file} must hold a JSON array`);
  const user = parsed.map((q, i) => {
    const where = `${file} entry ${i}`;
    if (typeof q?.vendor !== 'string' || typeof q?.product !== 'string') throw new UsageError(`${where}: needs "vendor" and "product" strings`);
    return { vendor: q.vendor, product: q.product, ...(typeof q.revision === 'string' ? { revision: q.revision } : {}), method: validateMethod(q.method, where), ...(typeof q.note === 'string' ? { note: q.note } : {}) };
  });
  return [...user, ...BUILTIN_QUIRKS];
}
