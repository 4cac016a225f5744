/**
 * How many bytes a CDB asks to move, and which way, from the CDB alone (SPC-5/SBC-4/MMC-6 field layouts).
 * A transport that carries CDBs without knowing them (the iSCSI target) needs it for residuals: the
 * initiator's expected length and the command's own length may differ.
 */
import { Opcode } from './cdb.js';

/** CDB length by opcode group (SPC-5 4.2.5.1); vendor groups 6 and 7 carry 16 bytes here. */
export function cdbLength(opcode: number): number {
  const g = opcode >> 5;
  return g === 0 ? 6 : g === 1 || g === 2 ? 10 : g === 5 ? 12 : 16;
}

export interface Transfer {
  direction: 'in' | 'out' | 'none';
  bytes: number;
}

const be = (c: Uint8Array, at: number, n: number) => Buffer.from(c.buffer, c.byteOffset, c.byteLength).readUIntBE(at, n);

/** `blockSize` is the medium's; undefined when no medium is loaded (block-counting CDBs then give undefined). */
export function transferOf(cdb: Uint8Array, blockSize: number | undefined): Transfer | undefined {
  const op = cdb[0]!;
  const blocks = (n: number): Transfer | undefined => (blockSize === undefined ? undefined : { direction: 'none', bytes: n * blockSize });
  const dataIn = (n: number): Transfer => ({ direction: n > 0 ? 'in' : 'none', bytes: n });
  const dataOut = (n: number): Transfer => ({ direction: n > 0 ? 'out' : 'none', bytes: n });
  const withDir = (t: Transfer | undefined, d: 'in' | 'out'): Transfer | undefined => (t ? { direction: t.bytes > 0 ? d : 'none', bytes: t.bytes } : undefined);
  switch (op) {
    case Opcode.TEST_UNIT_READY: case Opcode.START_STOP_UNIT: case Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL: case Opcode.SYNCHRONIZE_CACHE_10:
    case 0x16: case 0x17: case 0x34: case 0x90: // RESERVE(6), RELEASE(6), PRE-FETCH(10/16)
      return { direction: 'none', bytes: 0 };
    case 0x37: return dataIn(be(cdb, 7, 2)); // READ DEFECT DATA(10)
    case 0xb7: return dataIn(be(cdb, 6, 4)); // READ DEFECT DATA(12)
    case Opcode.REQUEST_SENSE: case Opcode.MODE_SENSE_6: return dataIn(cdb[4]!);
    case Opcode.INQUIRY: return dataIn(be(cdb, 3, 2));
    case Opcode.READ_CAPACITY_10: return dataIn(8);
    case Opcode.MODE_SENSE_10: case Opcode.READ_TOC_PMA_ATIP: case Opcode.GET_CONFIGURATION: return dataIn(be(cdb, 7, 2));
    case Opcode.SERVICE_ACTION_IN_16: return dataIn(be(cdb, 10, 4));
    case Opcode.REPORT_LUNS: case Opcode.MAINTENANCE_IN: case Opcode.SERVICE_ACTION_IN_12: return dataIn(be(cdb, 6, 4));
    case Opcode.READ_DISC_STRUCTURE: return dataIn(be(cdb, 8, 2));
    case Opcode.READ_6: return withDir(blocks(cdb[4]! || 256), 'in');
    case Opcode.WRITE_6: return withDir(blocks(cdb[4]! || 256), 'out');
    case Opcode.READ_10: return withDir(blocks(be(cdb, 7, 2)), 'in');
    case Opcode.READ_12: return withDir(blocks(be(cdb, 6, 4)), 'in');
    case Opcode.READ_16: return withDir(blocks(be(cdb, 10, 4)), 'in');
    case Opcode.WRITE_10: case Opcode.WRITE_AND_VERIFY_10: return withDir(blocks(be(cdb, 7, 2)), 'out'); // WRITE, WRITE AND VERIFY(10)
    case Opcode.WRITE_12: case Opcode.WRITE_AND_VERIFY_12: return withDir(blocks(be(cdb, 6, 4)), 'out');
    case Opcode.WRITE_16: case Opcode.WRITE_AND_VERIFY_16: return withDir(blocks(be(cdb, 10, 4)), 'out');
    case Opcode.VERIFY_10: case Opcode.VERIFY_12: case Opcode.VERIFY_16: { // data out only with BYTCHK
      const n = op === Opcode.VERIFY_10 ? be(cdb, 7, 2) : op === Opcode.VERIFY_12 ? be(cdb, 6, 4) : be(cdb, 10, 4);
      const bytchk = (cdb[1]! >> 1) & 3;
      // 00b: the medium only; 10b: reserved (the device refuses it, nothing moves); 11b: one block, whatever the length.
      if (bytchk === 0 || bytchk === 2) return { direction: 'none', bytes: 0 };
      return withDir(blocks(bytchk === 3 ? 1 : n), 'out');
    }
    case 0x15: return dataOut(cdb[4]!); // MODE SELECT(6)
    case 0x55: return dataOut(be(cdb, 7, 2)); // MODE SELECT(10)
    default: return undefined;
  }
}
