/**
 * The MO image format: a 4096-byte header, then the user data area, LBA 0 first.
 *
 *   offset size  field
 *   0      8     magic "MOCOPYMO"
 *   8      4     format version (BE32) = 1
 *   12     4     block size in bytes (BE32): 512 or 2048
 *   16     8     block count (BE64)
 *   24     4     flags (BE32): bit 0 = write-protect tab set
 *   28     2     medium ID length (BE16), 1..64
 *   30     64    medium ID bytes (the factory-written, non-rewritable zone), zero padded
 *   94     3998  reserved, zero
 *   4092   4     CRC-32 (zlib) of bytes 0..4091 (BE32)
 *
 * The medium ID lives in the header, outside the user data area, so no SCSI WRITE can reach it:
 * that is what makes the zone non-rewritable in the emulator.
 */
import { closeSync, openSync, readSync, writeSync, ftruncateSync, existsSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { FormatError, UsageError } from '../errors.js';

export const MO_MAGIC = 'MOCOPYMO';
export const MO_HEADER_SIZE = 4096;
export const MO_VERSION = 1;
export const MAX_MEDIUM_ID_LENGTH = 64;

export interface MoHeader {
  version: number;
  blockSize: number;
  blockCount: number;
  writeProtected: boolean;
  mediumId: Buffer;
}

export function encodeMoHeader(h: MoHeader): Buffer {
  if (h.blockSize !== 512 && h.blockSize !== 2048) throw new UsageError(`MO block size must be 512 or 2048, not ${h.blockSize}`);
  if (!Number.isSafeInteger(h.blockCount) || h.blockCount <= 0) throw new UsageError(`MO block count must be positive, not ${h.blockCount}`);
  if (h.mediumId.length === 0 || h.mediumId.length > MAX_MEDIUM_ID_LENGTH) {
    throw new UsageError(`medium ID must be 1..${MAX_MEDIUM_ID_LENGTH} bytes, not ${h.mediumId.length}`);
  }
  const b = Buffer.alloc(MO_HEADER_SIZE);
  b.write(MO_MAGIC, 0, 'latin1');
  b.writeUInt32BE(h.version, 8);
  b.writeUInt32BE(h.blockSize, 12);
  b.writeBigUInt64BE(BigInt(h.blockCount), 16);
  b.writeUInt32BE(h.writeProtected ? 1 : 0, 24);
  b.writeUInt16BE(h.mediumId.length, 28);
  h.mediumId.copy(b, 30);
  b.writeUInt32BE(crc32(b.subarray(0, MO_HEADER_SIZE - 4)), MO_HEADER_SIZE - 4);
  return b;
}

export function isMoHeader(b: Buffer): boolean {
  return b.length >= 8 && b.toString('latin1', 0, 8) === MO_MAGIC;
}

export function decodeMoHeader(b: Buffer, name = 'MO image'): MoHeader {
  if (b.length < MO_HEADER_SIZE) throw new FormatError(`${name}: header is truncated (${b.length} of ${MO_HEADER_SIZE} bytes)`);
  if (!isMoHeader(b)) throw new FormatError(`${name}: not an MO image (bad magic)`);
  const stored = b.readUInt32BE(MO_HEADER_SIZE - 4);
  if (stored !== crc32(b.subarray(0, MO_HEADER_SIZE - 4))) throw new FormatError(`${name}: header checksum mismatch (the header is damaged)`);
  const version = b.readUInt32BE(8);
  if (version !== MO_VERSION) throw new FormatError(`${name}: unsupported format version ${version}`);
  const blockSize = b.readUInt32BE(12);
  if (blockSize !== 512 && blockSize !== 2048) throw new FormatError(`${name}: bad block size ${blockSize}`);
  const count = b.readBigUInt64BE(16);
  if (count === 0n || count > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`${name}: bad block count ${count}`);
  const idLen = b.readUInt16BE(28);
  if (idLen === 0 || idLen > MAX_MEDIUM_ID_LENGTH) throw new FormatError(`${name}: bad medium ID length ${idLen}`);
  return {
    version, blockSize, blockCount: Number(count), writeProtected: (b.readUInt32BE(24) & 1) === 1,
    mediumId: Buffer.from(b.subarray(30, 30 + idLen)),
  };
}

export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`not a size: "${text}" (use e.g. 640M, 1.3G, 65536)`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Math.floor(parseFloat(m[1]!) * mult);
}

export interface CreateMoOptions {
  mediumId: Buffer;
  capacityBytes: number;
  blockSize?: 512 | 2048;
  writeProtected?: boolean;
  overwrite?: boolean;
}

/** Creates a blank (sparse) MO image. */
export function createMoImage(path: string, o: CreateMoOptions): MoHeader {
  const blockSize = o.blockSize ?? 2048;
  const blockCount = Math.floor(o.capacityBytes / blockSize);
  const header: MoHeader = { version: MO_VERSION, blockSize, blockCount, writeProtected: !!o.writeProtected, mediumId: o.mediumId };
  const bytes = encodeMoHeader(header);
  if (!o.overwrite && existsSync(path)) throw new UsageError(`${path} exists already (use --force to replace it)`);
  const fd = openSync(path, o.overwrite ? 'w' : 'wx', 0o644);
  try {
    writeSync(fd, bytes, 0, bytes.length, 0);
    ftruncateSync(fd, MO_HEADER_SIZE + blockCount * blockSize);
  } finally {
    closeSync(fd);
  }
  return header;
}

export function readMoHeader(path: string): MoHeader {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(MO_HEADER_SIZE);
    const n = readSync(fd, b, 0, MO_HEADER_SIZE, 0);
    return decodeMoHeader(b.subarray(0, n), path);
  } finally {
    closeSync(fd);
  }
}

/** Rewrites only the write-protect flag (the tab on a real cartridge). */
export function setMoWriteProtect(path: string, on: boolean): void {
  const h = readMoHeader(path);
  const fd = openSync(path, 'r+');
  try {
    const b = encodeMoHeader({ ...h, writeProtected: on });
    writeSync(fd, b, 0, b.length, 0);
  } finally {
    closeSync(fd);
  }
}
