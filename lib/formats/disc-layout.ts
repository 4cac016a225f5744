/**
 * The layout of a licensed-copy MO disc (pure encode/decode; docs/disc-layout.md).
 * Byte geometry is fixed and a multiple of 2048, so it maps onto 512- and 2048-byte blocks alike:
 *
 *   0         2 KiB    disc label: "ours", version, geometry (written last on a blank disc)
 *   2 KiB     128 KiB  license region [patent: region 41]: 64 slots of 2 KiB, one license record each
 *   130 KiB   64 KiB   directory copy 0
 *   194 KiB   64 KiB   directory copy 1
 *   320 KiB   ...      data extents (64 KiB aligned), one per licensed copy
 *
 * The directory is written alternately to copy 0 and copy 1 with a generation counter and a
 * SHA-256 checksum; the newest valid copy wins, so a write torn by a power cut leaves the other.
 */
import { createHash } from 'node:crypto';
import { FormatError } from '../errors.js';
import { isContentId, isScheme, type Scheme } from '../domain/index.js';

export const LABEL_OFFSET = 0;
export const LABEL_BYTES = 2048;
export const SLOT_BYTES = 2048;
export const SLOT_COUNT = 64;
export const LICENSE_REGION_OFFSET = 2048;
export const DIRECTORY_BYTES = 65536;
export const DIRECTORY_OFFSETS = [LICENSE_REGION_OFFSET + SLOT_COUNT * SLOT_BYTES, LICENSE_REGION_OFFSET + SLOT_COUNT * SLOT_BYTES + DIRECTORY_BYTES] as const;
export const DATA_OFFSET = 327680;
export const EXTENT_ALIGN = 65536;

const LABEL_MAGIC = 'MOCOPYDL';
const DIR_MAGIC = 'MOCOPYDR';
const SLOT_MAGIC = 'MOCOPYLR';

function sha(b: Uint8Array): Buffer {
  return createHash('sha256').update(b).digest();
}

// ---------------------------------------------------------------- label

export interface DiscLabel {
  version: 1;
  blockSize: number;
  created: string;
}

export type LabelState = { kind: 'blank' } | { kind: 'ours'; label: DiscLabel } | { kind: 'foreign'; reason: string };

export function encodeLabel(l: DiscLabel): Buffer {
  const b = Buffer.alloc(LABEL_BYTES);
  b.write(LABEL_MAGIC, 0, 'latin1');
  const body = Buffer.from(JSON.stringify({ version: l.version, blockSize: l.blockSize, created: l.created, slots: SLOT_COUNT, dataOffset: DATA_OFFSET }));
  b.writeUInt16BE(body.length, 8);
  body.copy(b, 10);
  sha(b.subarray(0, LABEL_BYTES - 32)).copy(b, LABEL_BYTES - 32);
  return b;
}

/** Classifies a disc by its first 2 KiB: blank (all zero), ours, or someone else's data. */
export function decodeLabel(b: Buffer): LabelState {
  if (b.length < LABEL_BYTES) throw new FormatError('disc label: short read');
  if (b.subarray(0, LABEL_BYTES).every((x) => x === 0)) return { kind: 'blank' };
  if (b.toString('latin1', 0, 8) !== LABEL_MAGIC) return { kind: 'foreign', reason: 'the disc holds data that is not a mocopy disc' };
  if (!sha(b.subarray(0, LABEL_BYTES - 32)).equals(b.subarray(LABEL_BYTES - 32, LABEL_BYTES))) return { kind: 'foreign', reason: 'the mocopy disc label is damaged (checksum)' };
  try {
    const o = JSON.parse(b.toString('utf8', 10, 10 + b.readUInt16BE(8)));
    if (o.version !== 1 || o.slots !== SLOT_COUNT || o.dataOffset !== DATA_OFFSET) return { kind: 'foreign', reason: `unsupported mocopy disc layout version ${o.version}` };
    return { kind: 'ours', label: { version: 1, blockSize: o.blockSize, created: o.created } };
  } catch {
    return { kind: 'foreign', reason: 'the mocopy disc label is damaged' };
  }
}

// ---------------------------------------------------------------- license records (slots)

export interface LicenseRecordA {
  scheme: 'a';
  contentId: string;
  centerId: string;
  licenseId: string;
  /** CS, 16 bytes. */
  certificate: Buffer;
  /** EKU(KEYc). */
  wrappedCertificationKey: Buffer;
  /** EKU(Kd). */
  wrappedContentKey: Buffer;
}

export interface LicenseRecordB {
  scheme: 'b';
  contentId: string;
  centerId: string;
  licenseId: string;
  /** E_Mid(Ku), stored as received [S15]. */
  wrappedMediumKey: Buffer;
}

export type LicenseRecord = LicenseRecordA | LicenseRecordB;

export function encodeLicenseRecord(r: LicenseRecord): Buffer {
  const o: Record<string, string | number> = { v: 1, scheme: r.scheme, contentId: r.contentId, centerId: r.centerId, licenseId: r.licenseId };
  if (r.scheme === 'a') {
    o.cs = r.certificate.toString('hex');
    o.ekuKeyc = r.wrappedCertificationKey.toString('hex');
    o.ekuKd = r.wrappedContentKey.toString('hex');
  } else {
    o.emidKu = r.wrappedMediumKey.toString('hex');
  }
  const body = Buffer.from(JSON.stringify(o));
  if (body.length > SLOT_BYTES - 8 - 2 - 32) throw new FormatError('license record too large for a slot');
  const b = Buffer.alloc(SLOT_BYTES);
  b.write(SLOT_MAGIC, 0, 'latin1');
  b.writeUInt16BE(body.length, 8);
  body.copy(b, 10);
  sha(b.subarray(0, SLOT_BYTES - 32)).copy(b, SLOT_BYTES - 32);
  return b;
}

/** Decodes a slot; undefined when empty; FormatError when damaged. */
export function decodeLicenseRecord(b: Buffer, slot: number): LicenseRecord | undefined {
  if (b.length < SLOT_BYTES) throw new FormatError(`license slot ${slot}: short read`);
  if (b.subarray(0, SLOT_BYTES).every((x) => x === 0)) return undefined;
  if (b.toString('latin1', 0, 8) !== SLOT_MAGIC) throw new FormatError(`license slot ${slot}: not a license record`);
  if (!sha(b.subarray(0, SLOT_BYTES - 32)).equals(b.subarray(SLOT_BYTES - 32, SLOT_BYTES))) throw new FormatError(`license slot ${slot}: checksum mismatch (the record was altered or damaged)`);
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(b.toString('utf8', 10, 10 + b.readUInt16BE(8)));
  } catch {
    throw new FormatError(`license slot ${slot}: damaged record`);
  }
  // Valid JSON that is not an object (null, a number, a list): found by fuzzing (test/fuzz-corpus/license-record-*).
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new FormatError(`license slot ${slot}: damaged record (not an object)`);
  const hex = (k: string, len: number) => {
    const v = o[k];
    if (typeof v !== 'string' || v.length !== len * 2 || !/^[0-9a-f]*$/.test(v)) throw new FormatError(`license slot ${slot}: bad ${k}`);
    return Buffer.from(v, 'hex');
  };
  const str = (k: string) => {
    const v = o[k];
    if (typeof v !== 'string' || v.length === 0 || v.length > 128) throw new FormatError(`license slot ${slot}: bad ${k}`);
    return v;
  };
  if (o.v !== 1) throw new FormatError(`license slot ${slot}: unsupported version`);
  if (o.scheme === 'a') {
    return { scheme: 'a', contentId: str('contentId'), centerId: str('centerId'), licenseId: str('licenseId'), certificate: hex('cs', 16), wrappedCertificationKey: hex('ekuKeyc', 40), wrappedContentKey: hex('ekuKd', 40) };
  }
  if (o.scheme === 'b') {
    return { scheme: 'b', contentId: str('contentId'), centerId: str('centerId'), licenseId: str('licenseId'), wrappedMediumKey: hex('emidKu', 40) };
  }
  throw new FormatError(`license slot ${slot}: unknown scheme`);
}

export function slotOffset(slot: number): number {
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) throw new RangeError(`slot ${slot} out of range`);
  return LICENSE_REGION_OFFSET + slot * SLOT_BYTES;
}

// ---------------------------------------------------------------- directory

export interface DirectoryEntry {
  contentId: string;
  name: string;
  scheme: Scheme;
  slot: number;
  /** Byte offset of the data extent on the disc. */
  offset: number;
  /** Bytes of the encrypted program in the extent. */
  encryptedSize: number;
  plainSize: number;
  /** SHA-256 of the encrypted program as written and read back. */
  sha256: string;
  committed: string;
}

export interface Directory {
  generation: number;
  entries: DirectoryEntry[];
}

export function encodeDirectory(d: Directory): Buffer {
  const body = Buffer.from(JSON.stringify({ v: 1, generation: d.generation, entries: d.entries }));
  if (body.length > DIRECTORY_BYTES - 8 - 8 - 4 - 32) throw new FormatError('directory full: too many copies on one disc');
  const b = Buffer.alloc(DIRECTORY_BYTES);
  b.write(DIR_MAGIC, 0, 'latin1');
  b.writeBigUInt64BE(BigInt(d.generation), 8);
  b.writeUInt32BE(body.length, 16);
  body.copy(b, 20);
  sha(b.subarray(0, 20 + body.length)).copy(b, 20 + body.length);
  return b;
}

/**
 * A directory copy; undefined when empty or torn (bad magic, length or checksum: the other copy then
 * stands). A copy whose checksum holds but whose content is malformed was written that way on purpose
 * or by a broken writer — not a torn write to fall back from — so it is a FormatError.
 */
export function decodeDirectory(b: Buffer): Directory | undefined {
  if (b.length < 52 || b.toString('latin1', 0, 8) !== DIR_MAGIC) return undefined;
  const len = b.readUInt32BE(16);
  if (20 + len + 32 > b.length) return undefined;
  if (!sha(b.subarray(0, 20 + len)).equals(b.subarray(20 + len, 20 + len + 32))) return undefined;
  let o: { v?: unknown; generation?: unknown; entries?: unknown };
  try {
    o = JSON.parse(b.toString('utf8', 20, 20 + len));
  } catch {
    throw new FormatError('disc directory: the checksum holds but the content is not JSON');
  }
  if (!o || typeof o !== 'object' || o.v !== 1) throw new FormatError('disc directory: unsupported version');
  if (o.generation !== Number(b.readBigUInt64BE(8))) throw new FormatError('disc directory: the generation in the header and in the body differ');
  return { generation: o.generation as number, entries: checkEntries(o.entries) };
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const MAX_NAME_LENGTH = 256;

/** The entries' types and counts, entry by entry (no medium needed). */
function checkEntries(raw: unknown): DirectoryEntry[] {
  if (!Array.isArray(raw)) throw new FormatError('disc directory: entries is not a list');
  if (raw.length > SLOT_COUNT) throw new FormatError(`disc directory: ${raw.length} entries, a disc holds at most ${SLOT_COUNT}`);
  return raw.map((e: unknown, i: number) => {
    const bad = (what: string) => new FormatError(`disc directory: entry ${i}: ${what}`);
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw bad('not an object');
    const x = e as Record<string, unknown>;
    if (!isContentId(x.contentId)) throw bad('bad contentId');
    if (typeof x.name !== 'string' || x.name.length > MAX_NAME_LENGTH) throw bad('bad name');
    if (!isScheme(x.scheme)) throw bad('bad scheme');
    if (!Number.isSafeInteger(x.slot) || (x.slot as number) < 0 || (x.slot as number) >= SLOT_COUNT) throw bad('bad slot');
    if (!Number.isSafeInteger(x.offset) || (x.offset as number) < DATA_OFFSET || (x.offset as number) % EXTENT_ALIGN !== 0) throw bad('bad offset');
    if (!Number.isSafeInteger(x.encryptedSize) || (x.encryptedSize as number) <= 0) throw bad('bad encryptedSize');
    if (!Number.isSafeInteger(x.plainSize) || (x.plainSize as number) < 0 || (x.plainSize as number) >= (x.encryptedSize as number)) throw bad('bad plainSize');
    if (typeof x.sha256 !== 'string' || !SHA256_HEX.test(x.sha256)) throw bad('bad sha256');
    if (typeof x.committed !== 'string' || x.committed.length > 64) throw bad('bad committed');
    return { contentId: x.contentId, name: x.name, scheme: x.scheme, slot: x.slot as number, offset: x.offset as number, encryptedSize: x.encryptedSize as number, plainSize: x.plainSize as number, sha256: x.sha256, committed: x.committed };
  });
}

/**
 * The directory against the medium it was read from: every extent inside the medium, no two extents
 * overlapping, no slot or content ID used twice. Checked wherever a directory is read, before it is used.
 */
export function validateDirectory(d: Directory, mediumBytes: number): Directory {
  const slots = new Set<number>();
  const ids = new Set<string>();
  const extents = [...d.entries].sort((a, b) => a.offset - b.offset);
  d.entries.forEach((e, i) => {
    if (slots.has(e.slot)) throw new FormatError(`disc directory: entry ${i}: slot ${e.slot} is used twice`);
    if (ids.has(e.contentId)) throw new FormatError(`disc directory: entry ${i}: content ${e.contentId} appears twice`);
    if (e.offset + e.encryptedSize > mediumBytes) throw new FormatError(`disc directory: entry ${i}: the extent ${e.offset}+${e.encryptedSize} runs past the end of the medium (${mediumBytes} bytes)`);
    slots.add(e.slot);
    ids.add(e.contentId);
  });
  for (let i = 1; i < extents.length; i++) {
    const [a, b] = [extents[i - 1]!, extents[i]!];
    if (a.offset + a.encryptedSize > b.offset) throw new FormatError(`disc directory: the extents of ${a.contentId} and ${b.contentId} overlap`);
  }
  return d;
}

/** The newest valid of the two copies (generation 0 and no entries when neither is valid). */
export function chooseDirectory(copies: Array<Directory | undefined>): { directory: Directory; copy: number | undefined } {
  let best: { directory: Directory; copy: number | undefined } = { directory: { generation: 0, entries: [] }, copy: undefined };
  copies.forEach((d, i) => {
    if (d && d.generation > best.directory.generation) best = { directory: d, copy: i };
  });
  return best;
}

/** Which copy the next commit goes to: the one not holding the current generation. */
export function nextDirectoryCopy(current: number | undefined): 0 | 1 {
  return current === 0 ? 1 : 0;
}

export function freeSlot(d: Directory): number | undefined {
  const used = new Set(d.entries.map((e) => e.slot));
  for (let i = 0; i < SLOT_COUNT; i++) if (!used.has(i)) return i;
  return undefined;
}

/** Byte offset of a new extent of `bytes`: after the last extent, aligned. */
export function nextExtentOffset(d: Directory): number {
  let end = DATA_OFFSET;
  for (const e of d.entries) end = Math.max(end, e.offset + e.encryptedSize);
  return Math.ceil(end / EXTENT_ALIGN) * EXTENT_ALIGN;
}
