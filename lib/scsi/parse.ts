/**
 * Response parsers for the commands in cdb.ts. Each checks lengths before reading and throws
 * only FormatError, so a drive that answers short or garbage gives a clear message, not a RangeError.
 */
import { FormatError } from '../errors.js';
import type { Capacity, InquiryInfo } from './device-api.js';

function need(buf: Buffer, n: number, what: string): void {
  if (buf.length < n) throw new FormatError(`${what}: answer is ${buf.length} bytes, needs at least ${n}`);
}
function ascii(buf: Buffer, from: number, to: number): string {
  // Printable ASCII only: drives pad with spaces and some put NULs in.
  return buf.subarray(from, Math.min(to, buf.length)).toString('latin1').replace(/[^\x20-\x7e]/g, ' ').trim();
}

export const PeripheralType: Record<number, string> = {
  0x00: 'direct-access block device', 0x01: 'sequential-access device', 0x05: 'CD/DVD device',
  0x07: 'optical memory device', 0x08: 'medium changer', 0x0c: 'storage array controller', 0x0d: 'enclosure services',
  0x0e: 'simplified direct-access device', 0x1f: 'unknown or no device type',
};
export function peripheralTypeName(t: number): string {
  return PeripheralType[t] ?? `peripheral type 0x${t.toString(16).padStart(2, '0')}`;
}

/** Standard INQUIRY data (SPC-5 6.7.2). */
export function parseInquiry(buf: Buffer): InquiryInfo {
  need(buf, 36, 'INQUIRY');
  return {
    peripheralQualifier: buf[0]! >> 5,
    peripheralType: buf[0]! & 0x1f,
    removable: !!(buf[1]! & 0x80),
    version: buf[2]!,
    vendor: ascii(buf, 8, 16),
    product: ascii(buf, 16, 32),
    revision: ascii(buf, 32, 36),
  };
}

export interface VpdPage {
  peripheralType: number;
  page: number;
  /** The page body (after the 4-byte header), cut to the declared page length. */
  body: Buffer;
}

/** Any VPD page: 4-byte header (PDT, page code, BE16 page length) + body. */
export function parseVpdPage(buf: Buffer, expectPage?: number): VpdPage {
  need(buf, 4, 'VPD page');
  const page = buf[1]!;
  if (expectPage !== undefined && page !== expectPage) {
    throw new FormatError(`VPD page: asked for page 0x${expectPage.toString(16)}, got 0x${page.toString(16)}`);
  }
  const len = buf.readUInt16BE(2);
  return { peripheralType: buf[0]! & 0x1f, page, body: buf.subarray(4, Math.min(4 + len, buf.length)) };
}

/** VPD 0x00: the list of supported page codes. */
export function parseSupportedVpdPages(buf: Buffer): number[] {
  return [...parseVpdPage(buf, 0x00).body];
}

/** VPD 0x80: the unit (drive) serial number — never the medium ID. */
export function parseUnitSerial(buf: Buffer): string {
  return ascii(parseVpdPage(buf, 0x80).body, 0, 0xffff);
}

export interface Designator { codeSet: number; association: number; type: number; value: Buffer; text: string }

/** VPD 0x83: device identification designators. */
export function parseDeviceIdentification(buf: Buffer): Designator[] {
  const body = parseVpdPage(buf, 0x83).body;
  const out: Designator[] = [];
  let off = 0;
  while (off + 4 <= body.length) {
    const len = body[off + 3]!;
    if (off + 4 + len > body.length) throw new FormatError('VPD 0x83: a designator runs past the end of the page');
    const codeSet = body[off]! & 0x0f;
    const value = body.subarray(off + 4, off + 4 + len);
    out.push({
      codeSet, association: (body[off + 1]! >> 4) & 3, type: body[off + 1]! & 0x0f, value,
      text: codeSet === 2 || codeSet === 3 ? ascii(value, 0, value.length) : value.toString('hex'),
    });
    off += 4 + len;
  }
  return out;
}

export interface BlockLimits { maxTransferBlocks: number; optimalTransferBlocks: number; optimalGranularity: number }

/** VPD 0xB0: block limits (SBC-4 6.6.4). */
export function parseBlockLimits(buf: Buffer): BlockLimits {
  const body = parseVpdPage(buf, 0xb0).body;
  need(body, 12, 'VPD 0xB0');
  return { optimalGranularity: body.readUInt16BE(2), maxTransferBlocks: body.readUInt32BE(4), optimalTransferBlocks: body.readUInt32BE(8) };
}

/** READ CAPACITY(10): returned LBA (BE32) + block length (BE32). `saturated` means use (16). */
export function parseReadCapacity10(buf: Buffer): Capacity & { saturated: boolean } {
  need(buf, 8, 'READ CAPACITY(10)');
  const last = buf.readUInt32BE(0);
  const blockSize = buf.readUInt32BE(4);
  if (blockSize === 0) throw new FormatError('READ CAPACITY(10): block length 0');
  const blockCount = last === 0xffffffff ? 0 : last + 1;
  return { blockSize, blockCount, bytes: blockCount * blockSize, saturated: last === 0xffffffff };
}

/** READ CAPACITY(16): returned LBA (BE64) + block length (BE32) + protection / exponent bits. */
export function parseReadCapacity16(buf: Buffer): Capacity & { logicalPerPhysicalExponent: number } {
  need(buf, 12, 'READ CAPACITY(16)');
  const last = buf.readBigUInt64BE(0);
  const blockSize = buf.readUInt32BE(8);
  if (blockSize === 0) throw new FormatError('READ CAPACITY(16): block length 0');
  if (last >= BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('READ CAPACITY(16): capacity beyond 2^53 blocks');
  const blockCount = Number(last) + 1;
  return { blockSize, blockCount, bytes: blockCount * blockSize, logicalPerPhysicalExponent: buf.length > 13 ? buf[13]! & 0x0f : 0 };
}

export interface ModeSenseData {
  mediumType: number;
  writeProtected: boolean;
  /** Block descriptors: number of blocks (0 = all) and block length. */
  blockDescriptors: Array<{ blocks: number; blockLength: number }>;
  /** Mode pages: page code -> bytes of the page (header included). */
  pages: Map<number, Buffer>;
}

function parseModePages(buf: Buffer, off: number, end: number, pages: Map<number, Buffer>): void {
  while (off + 2 <= end) {
    const spf = !!(buf[off]! & 0x40);
    const code = buf[off]! & 0x3f;
    const len = spf ? (off + 4 <= end ? 4 + buf.readUInt16BE(off + 2) : end - off) : 2 + buf[off + 1]!;
    if (len <= 0) break;
    pages.set(code, buf.subarray(off, Math.min(off + len, end)));
    off += len;
  }
}

/** MODE SENSE(6): header (mode data length, medium type, device-specific (WP bit 7), BD length). */
export function parseModeSense6(buf: Buffer): ModeSenseData {
  need(buf, 4, 'MODE SENSE(6)');
  const end = Math.min(buf.length, buf[0]! + 1);
  const bdLen = buf[3]!;
  const out: ModeSenseData = { mediumType: buf[1]!, writeProtected: !!(buf[2]! & 0x80), blockDescriptors: [], pages: new Map() };
  for (let off = 4; off + 8 <= Math.min(4 + bdLen, end); off += 8) {
    out.blockDescriptors.push({ blocks: buf.readUInt32BE(off) & 0xffffffff, blockLength: buf.readUIntBE(off + 5, 3) });
  }
  parseModePages(buf, 4 + bdLen, end, out.pages);
  return out;
}

/** MODE SENSE(10): 8-byte header, LONGLBA bit selects 16-byte block descriptors. */
export function parseModeSense10(buf: Buffer): ModeSenseData {
  need(buf, 8, 'MODE SENSE(10)');
  const end = Math.min(buf.length, buf.readUInt16BE(0) + 2);
  const longLba = !!(buf[4]! & 0x01);
  const bdLen = buf.readUInt16BE(6);
  const out: ModeSenseData = { mediumType: buf[2]!, writeProtected: !!(buf[3]! & 0x80), blockDescriptors: [], pages: new Map() };
  const step = longLba ? 16 : 8;
  for (let off = 8; off + step <= Math.min(8 + bdLen, end); off += step) {
    if (longLba) out.blockDescriptors.push({ blocks: Number(buf.readBigUInt64BE(off)), blockLength: buf.readUInt32BE(off + 12) });
    else out.blockDescriptors.push({ blocks: buf.readUInt32BE(off), blockLength: buf.readUIntBE(off + 5, 3) });
  }
  parseModePages(buf, 8 + bdLen, end, out.pages);
  return out;
}

/** READ MEDIA SERIAL NUMBER: BE32 length + that many bytes. Returns the serial (may be empty: none). */
export function parseMediaSerialNumber(buf: Buffer): { length: number; serial: Buffer; complete: boolean } {
  need(buf, 4, 'READ MEDIA SERIAL NUMBER');
  const length = buf.readUInt32BE(0);
  const serial = buf.subarray(4, Math.min(4 + length, buf.length));
  return { length, serial, complete: serial.length === length };
}

/** REPORT LUNS: BE32 list length + reserved + 8-byte LUNs. */
export function parseReportLuns(buf: Buffer): Buffer[] {
  need(buf, 8, 'REPORT LUNS');
  const len = buf.readUInt32BE(0);
  if (len % 8 !== 0) throw new FormatError(`REPORT LUNS: list length ${len} is not a multiple of 8`);
  const luns: Buffer[] = [];
  for (let off = 8; off + 8 <= Math.min(8 + len, buf.length); off += 8) luns.push(buf.subarray(off, off + 8));
  return luns;
}

/** Flat-space LUN number of an 8-byte LUN (SAM-5 addressing methods 00b and 01b). */
export function lunNumber(lun: Buffer): number {
  const method = lun[0]! >> 6;
  if (method === 0) return lun[1]!;
  return ((lun[0]! & 0x3f) << 8) | lun[1]!;
}

export interface TocEntry { track: number; adr: number; control: number; dataTrack: boolean; lba: number }

/** READ TOC format 0000b with LBA addressing: BE16 length, first, last, then 8-byte track descriptors. */
export function parseToc(buf: Buffer): { firstTrack: number; lastTrack: number; entries: TocEntry[] } {
  need(buf, 4, 'READ TOC');
  const end = Math.min(buf.length, buf.readUInt16BE(0) + 2);
  const entries: TocEntry[] = [];
  for (let off = 4; off + 8 <= end; off += 8) {
    const control = buf[off + 1]! & 0x0f;
    entries.push({ adr: buf[off + 1]! >> 4, control, dataTrack: !!(control & 0x04), track: buf[off + 2]!, lba: buf.readInt32BE(off + 4) });
  }
  return { firstTrack: buf[2]!, lastTrack: buf[3]!, entries };
}

export interface Feature { code: number; version: number; persistent: boolean; current: boolean; data: Buffer }

/** GET CONFIGURATION: 8-byte feature header then feature descriptors. */
export function parseConfiguration(buf: Buffer): { currentProfile: number; features: Feature[] } {
  need(buf, 8, 'GET CONFIGURATION');
  const end = Math.min(buf.length, buf.readUInt32BE(0) + 4);
  const features: Feature[] = [];
  let off = 8;
  while (off + 4 <= end) {
    const len = buf[off + 3]!;
    features.push({
      code: buf.readUInt16BE(off), version: (buf[off + 2]! >> 2) & 0x0f, persistent: !!(buf[off + 2]! & 2),
      current: !!(buf[off + 2]! & 1), data: buf.subarray(off + 4, Math.min(off + 4 + len, end)),
    });
    off += 4 + len;
  }
  return { currentProfile: buf.readUInt16BE(6), features };
}

export interface SupportedOpcode { opcode: number; serviceAction?: number; cdbLength: number }

/** REPORT SUPPORTED OPERATION CODES, reporting options 000b: BE32 length + 8-byte (or 20-byte with CTDP) descriptors. */
export function parseSupportedOpcodes(buf: Buffer): SupportedOpcode[] {
  need(buf, 4, 'REPORT SUPPORTED OPERATION CODES');
  const end = Math.min(buf.length, buf.readUInt32BE(0) + 4);
  const out: SupportedOpcode[] = [];
  let off = 4;
  while (off + 8 <= end) {
    const servActv = !!(buf[off + 5]! & 0x01);
    const ctdp = !!(buf[off + 5]! & 0x02);
    out.push({ opcode: buf[off]!, ...(servActv ? { serviceAction: buf.readUInt16BE(off + 2) } : {}), cdbLength: buf.readUInt16BE(off + 6) });
    off += ctdp ? 20 : 8;
  }
  return out;
}
