import { strict as assert } from 'node:assert';
import * as cdb from '../lib/scsi/cdb.js';

const hex = (b: Buffer) => b.toString('hex');

describe('CDB builders (byte for byte against SPC-5 / SBC-4 / MMC-6)', () => {
  it('TEST UNIT READY: 6 zero bytes (SPC-5 6.47)', () => assert.equal(hex(cdb.testUnitReady()), '000000000000'));
  it('REQUEST SENSE: 03 DESC 00 00 ALLOC 00 (SPC-5 6.39)', () => {
    assert.equal(hex(cdb.requestSense(252)), '030000 00fc00'.replace(' ', ''));
    assert.equal(hex(cdb.requestSense(18, true)), '030100001200');
  });
  it('INQUIRY standard: 12 00 00 ALLOC(BE16) 00 (SPC-5 6.7)', () => assert.equal(hex(cdb.inquiry({ alloc: 96 })), '120000006000'));
  it('INQUIRY VPD pages 00/80/83/B0: EVPD=1, page code in byte 2', () => {
    assert.equal(hex(cdb.inquiry({ evpd: true, page: 0x00, alloc: 0xfc })), '12010000fc00');
    assert.equal(hex(cdb.inquiry({ evpd: true, page: 0x80, alloc: 0xfc })), '12018000fc00');
    assert.equal(hex(cdb.inquiry({ evpd: true, page: 0x83, alloc: 0x1000 })), '120183100000');
    assert.equal(hex(cdb.inquiry({ evpd: true, page: 0xb0, alloc: 0x40 })), '1201b0004000');
    assert.throws(() => cdb.inquiry({ page: 0x80 }), RangeError);
  });
  it('READ CAPACITY(10): 25 + 9 zero bytes (SBC-4 5.20)', () => assert.equal(hex(cdb.readCapacity10()), '25000000000000000000'));
  it('READ CAPACITY(16): 9E 10, ALLOC at bytes 10-13 (SBC-4 5.21)', () => assert.equal(hex(cdb.readCapacity16(32)), '9e100000000000000000000000200000'));
  it('READ(10)/WRITE(10): op FUA(bit3) LBA(BE32) group LEN(BE16) control (SBC-4 5.13/5.39)', () => {
    assert.equal(hex(cdb.read10(0x12345678, 0x0102)), '28001234567800010200');
    assert.equal(hex(cdb.write10(1, 16, { fua: true })), '2a080000000100001000');
    assert.throws(() => cdb.read10(2 ** 32, 1), RangeError);
    assert.throws(() => cdb.read10(0, 0x10000), RangeError);
  });
  it('READ(12)/WRITE(12): LEN as BE32 at bytes 6-9', () => {
    assert.equal(hex(cdb.read12(0xaabbccdd, 0x10000)), 'a800aabbccdd000100000000');
    assert.equal(hex(cdb.write12(0, 1)), 'aa0000000000000000010000');
  });
  it('READ(16)/WRITE(16): LBA as BE64 at bytes 2-9, LEN BE32 at 10-13', () => {
    assert.equal(hex(cdb.read16(0x0102030405060708n, 0x0a0b0c0d)), '880001020304050607080a0b0c0d0000');
    assert.equal(hex(cdb.write16(2 ** 33, 8, { fua: true })), '8a080000000200000000000000080000');
  });
  it('VERIFY(10): BYTCHK in bits 2:1 of byte 1 (SBC-4 5.33)', () => {
    assert.equal(hex(cdb.verify10(100, 5)), '2f000000006400000500');
    assert.equal(hex(cdb.verify10(100, 5, { bytchk: 1 })), '2f020000006400000500');
  });
  it('MODE SENSE(6): 1A DBD PC|PAGE SUBPAGE ALLOC 00; MODE SENSE(10): 5A LLBAA|DBD PC|PAGE SUBPAGE 000000 ALLOC(BE16) 00', () => {
    assert.equal(hex(cdb.modeSense6({ page: 0x3f, alloc: 0xfc })), '1a003f00fc00');
    assert.equal(hex(cdb.modeSense6({ page: 0x08, dbd: true, pc: 2, alloc: 0x20 })), '1a0888002000');
    assert.equal(hex(cdb.modeSense10({ page: 0x3f, alloc: 0x200, llbaa: true })), '5a103f00000000020000');
  });
  it('START STOP UNIT: 1B IMMED 00 00 LOEJ|START 00 (SBC-4 5.25)', () => {
    assert.equal(hex(cdb.startStopUnit({ start: false, loej: true })), '1b0000000200');
    assert.equal(hex(cdb.startStopUnit({ start: true, loej: true, immed: true })), '1b0100000300');
  });
  it('PREVENT ALLOW MEDIUM REMOVAL: 1E 00 00 00 PREVENT 00 (SPC-5 6.16)', () => {
    assert.equal(hex(cdb.preventAllowMediumRemoval(true)), '1e0000000100');
    assert.equal(hex(cdb.preventAllowMediumRemoval(false)), '1e0000000000');
  });
  it('SYNCHRONIZE CACHE(10): 35 IMMED(bit1) LBA BLOCKS (SBC-4 5.28)', () => {
    assert.equal(hex(cdb.synchronizeCache10()), '35000000000000000000');
    assert.equal(hex(cdb.synchronizeCache10(16, 32, { immed: true })), '35020000001000002000');
  });
  it('READ MEDIA SERIAL NUMBER: AB 01 00 00 00 00 ALLOC(BE32) 00 00 (SPC-3 6.16)', () => {
    assert.equal(hex(cdb.readMediaSerialNumber(4)), 'ab0100000000000000040000');
    assert.equal(hex(cdb.readMediaSerialNumber(0x1234)), 'ab0100000000000012340000');
  });
  it('REPORT LUNS: A0 00 SELECT 000000 ALLOC(BE32) 00 00 (SPC-5 6.33)', () => {
    assert.equal(hex(cdb.reportLuns(256)), 'a00000000000000001000000');
    assert.throws(() => cdb.reportLuns(8), RangeError);
  });
  it('READ TOC/PMA/ATIP: 43 MSF FORMAT 000000 TRACK ALLOC(BE16) 00 (MMC-6 6.36)', () => {
    assert.equal(hex(cdb.readTocPmaAtip({ format: 0, alloc: 0x324 })), '43000000000000032400');
    assert.equal(hex(cdb.readTocPmaAtip({ format: 1, msf: true, track: 1, alloc: 12 })), '43020100000001000c00');
  });
  it('GET CONFIGURATION: 46 RT START(BE16) ... ALLOC(BE16) (MMC-6 6.6)', () => assert.equal(hex(cdb.getConfiguration({ rt: 2, startFeature: 0x0109, alloc: 64 })), '46020109000000004000'));
  it('REPORT SUPPORTED OPERATION CODES: A3 0C OPTIONS OP SA(BE16) ALLOC(BE32) 00 00 (SPC-5 6.35)', () => {
    assert.equal(hex(cdb.reportSupportedOperationCodes({ alloc: 8192 })), 'a30c00000000000020000000');
    assert.equal(hex(cdb.reportSupportedOperationCodes({ reportingOptions: 1, opcode: 0x28, alloc: 64 })), 'a30c01280000000000400000');
  });
  it('names commands for messages', () => {
    assert.equal(cdb.opcodeName(cdb.read10(0, 1)), 'READ(10)');
    assert.equal(cdb.opcodeName(cdb.readMediaSerialNumber(4)), 'READ MEDIA SERIAL NUMBER');
    assert.equal(cdb.opcodeName(cdb.readCapacity16()), 'READ CAPACITY(16)');
    assert.equal(cdb.opcodeName(Buffer.from([0xc1, 0])), 'vendor-specific 0xC1');
    assert.equal(cdb.cdbHex(cdb.testUnitReady()), '00 00 00 00 00 00');
  });
  it('decoding a READ(10)/(16) CDB gives back its LBA and length (round trip)', () => {
    for (const [lba, n] of [[0, 1], [123456, 65535], [2 ** 32 - 2, 1]] as const) {
      const c = cdb.read10(lba, n);
      assert.equal(c.readUInt32BE(2), lba);
      assert.equal(c.readUInt16BE(7), n);
    }
    const c16 = cdb.read16(2n ** 40n + 5n, 77);
    assert.equal(c16.readBigUInt64BE(2), 2n ** 40n + 5n);
    assert.equal(c16.readUInt32BE(10), 77);
  });
});
