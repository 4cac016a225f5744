/**
 * Pure CDB builders (SPC-5, SBC-4, MMC-6). Each returns the exact bytes sent to the device.
 * Field layouts are commented at the byte level because those comments are what the tests
 * check against; ranges are validated here so a bad LBA never reaches a drive silently truncated.
 */

function u8(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xff) throw new RangeError(`${what} must be 0..255, got ${n}`);
  return n;
}
function u16(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`${what} must be 0..65535, got ${n}`);
  return n;
}
function u32(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${what} must be 0..2^32-1, got ${n}`);
  return n;
}
function u64(n: number | bigint, what: string): bigint {
  const b = BigInt(n);
  if (b < 0n || b > 0xffffffffffffffffn) throw new RangeError(`${what} must be 0..2^64-1, got ${n}`);
  if (typeof n === 'number' && !Number.isInteger(n)) throw new RangeError(`${what} must be an integer, got ${n}`);
  return b;
}

export const Opcode = {
  TEST_UNIT_READY: 0x00,
  REQUEST_SENSE: 0x03,
  INQUIRY: 0x12,
  MODE_SENSE_6: 0x1a,
  START_STOP_UNIT: 0x1b,
  PREVENT_ALLOW_MEDIUM_REMOVAL: 0x1e,
  READ_CAPACITY_10: 0x25,
  READ_6: 0x08,
  WRITE_6: 0x0a,
  READ_10: 0x28,
  WRITE_10: 0x2a,
  WRITE_AND_VERIFY_10: 0x2e,
  VERIFY_10: 0x2f,
  SYNCHRONIZE_CACHE_10: 0x35,
  READ_TOC_PMA_ATIP: 0x43,
  GET_CONFIGURATION: 0x46,
  MODE_SENSE_10: 0x5a,
  READ_16: 0x88,
  WRITE_16: 0x8a,
  WRITE_AND_VERIFY_16: 0x8e,
  VERIFY_16: 0x8f,
  SERVICE_ACTION_IN_16: 0x9e,
  REPORT_LUNS: 0xa0,
  MAINTENANCE_IN: 0xa3,
  READ_12: 0xa8,
  WRITE_12: 0xaa,
  WRITE_AND_VERIFY_12: 0xae,
  VERIFY_12: 0xaf,
  SERVICE_ACTION_IN_12: 0xab,
  READ_DISC_STRUCTURE: 0xad,
} as const;

export const ServiceAction = {
  READ_CAPACITY_16: 0x10,
  READ_MEDIA_SERIAL_NUMBER: 0x01,
  REPORT_SUPPORTED_OPERATION_CODES: 0x0c,
} as const;

export interface RwOptions {
  /** Force Unit Access: the drive must reach the medium before reporting GOOD. */
  fua?: boolean;
}

/** TEST UNIT READY: 00 00 00 00 00 00 */
export function testUnitReady(): Buffer {
  return Buffer.alloc(6);
}

/** REQUEST SENSE: 03 DESC 00 00 ALLOC CONTROL */
export function requestSense(alloc = 252, descriptorFormat = false): Buffer {
  return Buffer.from([Opcode.REQUEST_SENSE, descriptorFormat ? 1 : 0, 0, 0, u8(alloc, 'allocation length'), 0]);
}

/** INQUIRY: 12 EVPD PAGE ALLOC(BE16) CONTROL */
export function inquiry(opts: { evpd?: boolean; page?: number; alloc?: number } = {}): Buffer {
  const page = opts.page ?? 0;
  if (!opts.evpd && page !== 0) throw new RangeError('INQUIRY: a page code needs evpd');
  const b = Buffer.alloc(6);
  b[0] = Opcode.INQUIRY;
  b[1] = opts.evpd ? 1 : 0;
  b[2] = u8(page, 'page code');
  b.writeUInt16BE(u16(opts.alloc ?? 96, 'allocation length'), 3);
  return b;
}

/** READ CAPACITY(10): 25 00 00000000 00 00 00 00 */
export function readCapacity10(): Buffer {
  const b = Buffer.alloc(10);
  b[0] = Opcode.READ_CAPACITY_10;
  return b;
}

/** READ CAPACITY(16) = SERVICE ACTION IN(16) 9E/10: 9E 10 LBA(8)=0 ALLOC(BE32) 00 CONTROL */
export function readCapacity16(alloc = 32): Buffer {
  const b = Buffer.alloc(16);
  b[0] = Opcode.SERVICE_ACTION_IN_16;
  b[1] = ServiceAction.READ_CAPACITY_16;
  b.writeUInt32BE(u32(alloc, 'allocation length'), 10);
  return b;
}

function rw10(op: number, lba: number, blocks: number, fua: boolean): Buffer {
  const b = Buffer.alloc(10);
  b[0] = op;
  b[1] = fua ? 0x08 : 0;
  b.writeUInt32BE(u32(lba, 'LBA'), 2);
  b.writeUInt16BE(u16(blocks, 'transfer length'), 7);
  return b;
}
function rw12(op: number, lba: number, blocks: number, fua: boolean): Buffer {
  const b = Buffer.alloc(12);
  b[0] = op;
  b[1] = fua ? 0x08 : 0;
  b.writeUInt32BE(u32(lba, 'LBA'), 2);
  b.writeUInt32BE(u32(blocks, 'transfer length'), 6);
  return b;
}
function rw16(op: number, lba: number | bigint, blocks: number, fua: boolean): Buffer {
  const b = Buffer.alloc(16);
  b[0] = op;
  b[1] = fua ? 0x08 : 0;
  b.writeBigUInt64BE(u64(lba, 'LBA'), 2);
  b.writeUInt32BE(u32(blocks, 'transfer length'), 10);
  return b;
}

/** READ(10): 28 FLAGS(FUA=bit3) LBA(BE32) GROUP LEN(BE16) CONTROL */
export const read10 = (lba: number, blocks: number, o: RwOptions = {}) => rw10(Opcode.READ_10, lba, blocks, !!o.fua);
/** READ(12): A8 FLAGS LBA(BE32) LEN(BE32) GROUP CONTROL */
export const read12 = (lba: number, blocks: number, o: RwOptions = {}) => rw12(Opcode.READ_12, lba, blocks, !!o.fua);
/** READ(16): 88 FLAGS LBA(BE64) LEN(BE32) GROUP CONTROL */
export const read16 = (lba: number | bigint, blocks: number, o: RwOptions = {}) => rw16(Opcode.READ_16, lba, blocks, !!o.fua);
/** WRITE(10): 2A FLAGS(FUA=bit3) LBA(BE32) GROUP LEN(BE16) CONTROL */
export const write10 = (lba: number, blocks: number, o: RwOptions = {}) => rw10(Opcode.WRITE_10, lba, blocks, !!o.fua);
/** WRITE(12): AA FLAGS LBA(BE32) LEN(BE32) GROUP CONTROL */
export const write12 = (lba: number, blocks: number, o: RwOptions = {}) => rw12(Opcode.WRITE_12, lba, blocks, !!o.fua);
/** WRITE(16): 8A FLAGS LBA(BE64) LEN(BE32) GROUP CONTROL */
export const write16 = (lba: number | bigint, blocks: number, o: RwOptions = {}) => rw16(Opcode.WRITE_16, lba, blocks, !!o.fua);

/** VERIFY(10): 2F BYTCHK(bits 2:1) LBA(BE32) GROUP LEN(BE16) CONTROL. BYTCHK=0: the drive checks the medium itself. */
export function verify10(lba: number, blocks: number, opts: { bytchk?: 0 | 1 | 3 } = {}): Buffer {
  const b = rw10(Opcode.VERIFY_10, lba, blocks, false);
  b[1] = ((opts.bytchk ?? 0) & 3) << 1;
  return b;
}

export interface ModeSenseOptions {
  page: number;
  subpage?: number;
  /** Page control: 0 current, 1 changeable, 2 default, 3 saved. */
  pc?: 0 | 1 | 2 | 3;
  /** Disable block descriptors. */
  dbd?: boolean;
  alloc?: number;
}

/** MODE SENSE(6): 1A DBD(bit3) PC(7:6)|PAGE(5:0) SUBPAGE ALLOC CONTROL */
export function modeSense6(o: ModeSenseOptions): Buffer {
  if (o.page < 0 || o.page > 0x3f) throw new RangeError(`page code must be 0..63, got ${o.page}`);
  return Buffer.from([Opcode.MODE_SENSE_6, o.dbd ? 0x08 : 0, ((o.pc ?? 0) << 6) | o.page, u8(o.subpage ?? 0, 'subpage'), u8(o.alloc ?? 0xfc, 'allocation length'), 0]);
}

/** MODE SENSE(10): 5A LLBAA(bit4)|DBD(bit3) PC|PAGE SUBPAGE 00 00 00 ALLOC(BE16) CONTROL */
export function modeSense10(o: ModeSenseOptions & { llbaa?: boolean }): Buffer {
  if (o.page < 0 || o.page > 0x3f) throw new RangeError(`page code must be 0..63, got ${o.page}`);
  const b = Buffer.alloc(10);
  b[0] = Opcode.MODE_SENSE_10;
  b[1] = (o.llbaa ? 0x10 : 0) | (o.dbd ? 0x08 : 0);
  b[2] = ((o.pc ?? 0) << 6) | o.page;
  b[3] = u8(o.subpage ?? 0, 'subpage');
  b.writeUInt16BE(u16(o.alloc ?? 0x200, 'allocation length'), 7);
  return b;
}

/** START STOP UNIT: 1B IMMED(bit0) 00 00 LOEJ(bit1)|START(bit0) CONTROL */
export function startStopUnit(o: { start: boolean; loej: boolean; immed?: boolean }): Buffer {
  return Buffer.from([Opcode.START_STOP_UNIT, o.immed ? 1 : 0, 0, 0, (o.loej ? 2 : 0) | (o.start ? 1 : 0), 0]);
}

/** PREVENT ALLOW MEDIUM REMOVAL: 1E 00 00 00 PREVENT(bits 1:0) CONTROL */
export function preventAllowMediumRemoval(prevent: boolean): Buffer {
  return Buffer.from([Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, prevent ? 1 : 0, 0]);
}

/** SYNCHRONIZE CACHE(10): 35 IMMED(bit1) LBA(BE32) GROUP BLOCKS(BE16) CONTROL; blocks 0 = to the end of the medium. */
export function synchronizeCache10(lba = 0, blocks = 0, o: { immed?: boolean } = {}): Buffer {
  const b = rw10(Opcode.SYNCHRONIZE_CACHE_10, lba, blocks, false);
  b[1] = o.immed ? 0x02 : 0;
  return b;
}

/** READ MEDIA SERIAL NUMBER = SERVICE ACTION IN(12) AB/01: AB 01 00 00 00 00 ALLOC(BE32) 00 CONTROL */
export function readMediaSerialNumber(alloc: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = Opcode.SERVICE_ACTION_IN_12;
  b[1] = ServiceAction.READ_MEDIA_SERIAL_NUMBER;
  b.writeUInt32BE(u32(alloc, 'allocation length'), 6);
  return b;
}

/** REPORT LUNS: A0 00 SELECT 00 00 00 ALLOC(BE32) 00 CONTROL */
export function reportLuns(alloc = 256, select = 0): Buffer {
  const b = Buffer.alloc(12);
  b[0] = Opcode.REPORT_LUNS;
  b[2] = u8(select, 'select report');
  if (alloc < 16) throw new RangeError('REPORT LUNS allocation length must be at least 16');
  b.writeUInt32BE(u32(alloc, 'allocation length'), 6);
  return b;
}

/** READ TOC/PMA/ATIP (MMC-6): 43 MSF(bit1) FORMAT(3:0) 00 00 00 TRACK ALLOC(BE16) CONTROL */
export function readTocPmaAtip(o: { format?: number; msf?: boolean; track?: number; alloc?: number } = {}): Buffer {
  const b = Buffer.alloc(10);
  b[0] = Opcode.READ_TOC_PMA_ATIP;
  b[1] = o.msf ? 0x02 : 0;
  b[2] = (o.format ?? 0) & 0x0f;
  b[6] = u8(o.track ?? 0, 'track/session number');
  b.writeUInt16BE(u16(o.alloc ?? 0x324, 'allocation length'), 7);
  return b;
}

/** GET CONFIGURATION (MMC-6): 46 RT(1:0) START-FEATURE(BE16) 00 00 00 ALLOC(BE16) CONTROL */
export function getConfiguration(o: { rt?: 0 | 1 | 2; startFeature?: number; alloc?: number } = {}): Buffer {
  const b = Buffer.alloc(10);
  b[0] = Opcode.GET_CONFIGURATION;
  b[1] = (o.rt ?? 0) & 3;
  b.writeUInt16BE(u16(o.startFeature ?? 0, 'starting feature number'), 2);
  b.writeUInt16BE(u16(o.alloc ?? 0x1000, 'allocation length'), 7);
  return b;
}

/** REPORT SUPPORTED OPERATION CODES = MAINTENANCE IN A3/0C: A3 0C OPTIONS(2:0) OPCODE SA(BE16) ALLOC(BE32) 00 CONTROL */
export function reportSupportedOperationCodes(o: { reportingOptions?: number; opcode?: number; serviceAction?: number; alloc?: number } = {}): Buffer {
  const b = Buffer.alloc(12);
  b[0] = Opcode.MAINTENANCE_IN;
  b[1] = ServiceAction.REPORT_SUPPORTED_OPERATION_CODES;
  b[2] = (o.reportingOptions ?? 0) & 7;
  b[3] = u8(o.opcode ?? 0, 'requested operation code');
  b.writeUInt16BE(u16(o.serviceAction ?? 0, 'requested service action'), 4);
  b.writeUInt32BE(u32(o.alloc ?? 0x10000, 'allocation length'), 6);
  return b;
}

/** READ DISC STRUCTURE (MMC-6): AD MEDIA-TYPE ADDRESS(BE32) LAYER FORMAT ALLOC(BE16) AGID(7:6) CONTROL */
export function readDiscStructure(o: { mediaType?: number; address?: number; layer?: number; format: number; alloc?: number }): Buffer {
  const b = Buffer.alloc(12);
  b[0] = Opcode.READ_DISC_STRUCTURE;
  b[1] = (o.mediaType ?? 0) & 0x0f;
  b.writeUInt32BE(u32(o.address ?? 0, 'address'), 2);
  b[6] = u8(o.layer ?? 0, 'layer number');
  b[7] = u8(o.format, 'format code');
  b.writeUInt16BE(u16(o.alloc ?? 0x1000, 'allocation length'), 8);
  return b;
}

const NAMES: Record<number, string> = {
  0x00: 'TEST UNIT READY', 0x03: 'REQUEST SENSE', 0x12: 'INQUIRY', 0x1a: 'MODE SENSE(6)', 0x1b: 'START STOP UNIT',
  0x1e: 'PREVENT ALLOW MEDIUM REMOVAL', 0x25: 'READ CAPACITY(10)', 0x28: 'READ(10)', 0x2a: 'WRITE(10)', 0x2f: 'VERIFY(10)',
  0x35: 'SYNCHRONIZE CACHE(10)', 0x43: 'READ TOC/PMA/ATIP', 0x46: 'GET CONFIGURATION', 0x5a: 'MODE SENSE(10)',
  0x88: 'READ(16)', 0x8a: 'WRITE(16)', 0xa0: 'REPORT LUNS', 0xa8: 'READ(12)', 0xaa: 'WRITE(12)', 0xad: 'READ DISC STRUCTURE',
  0x08: 'READ(6)', 0x0a: 'WRITE(6)', 0x15: 'MODE SELECT(6)', 0x55: 'MODE SELECT(10)', 0x1d: 'SEND DIAGNOSTIC', 0x5e: 'PERSISTENT RESERVE IN',
  0x4a: 'GET EVENT STATUS NOTIFICATION', 0x51: 'READ DISC INFORMATION', 0xbe: 'READ CD', 0x2b: 'SEEK(10)',
};

/** Human name of a CDB, e.g. 'READ(10)', 'SERVICE ACTION IN(12)/READ MEDIA SERIAL NUMBER'. */
export function opcodeName(cdb: Uint8Array): string {
  if (cdb.length === 0) return 'empty CDB';
  const op = cdb[0]!;
  const sa = (cdb[1] ?? 0) & 0x1f;
  if (op === Opcode.SERVICE_ACTION_IN_16) return sa === ServiceAction.READ_CAPACITY_16 ? 'READ CAPACITY(16)' : `SERVICE ACTION IN(16)/0x${sa.toString(16)}`;
  if (op === Opcode.SERVICE_ACTION_IN_12) return sa === ServiceAction.READ_MEDIA_SERIAL_NUMBER ? 'READ MEDIA SERIAL NUMBER' : `SERVICE ACTION IN(12)/0x${sa.toString(16)}`;
  if (op === Opcode.MAINTENANCE_IN) return sa === ServiceAction.REPORT_SUPPORTED_OPERATION_CODES ? 'REPORT SUPPORTED OPERATION CODES' : `MAINTENANCE IN/0x${sa.toString(16)}`;
  if (op >= 0xc0) return `vendor-specific 0x${op.toString(16).toUpperCase()}`;
  return NAMES[op] ?? `opcode 0x${op.toString(16).padStart(2, '0').toUpperCase()}`;
}

export function cdbHex(cdb: Uint8Array): string {
  return Buffer.from(cdb.buffer, cdb.byteOffset, cdb.byteLength).toString('hex').replace(/(..)(?!$)/g, '$1 ');
}
