import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { FormatError } from '../lib/errors.js';
import * as P from '../lib/scsi/parse.js';

function inquiry(pdt: number, rmb: boolean, vendor: string, product: string, rev: string): Buffer {
  const b = Buffer.alloc(36);
  b[0] = pdt;
  b[1] = rmb ? 0x80 : 0;
  b[2] = 0x02;
  b[3] = 0x02;
  b[4] = 31;
  b.write(vendor.padEnd(8), 8, 'latin1');
  b.write(product.padEnd(16), 16, 'latin1');
  b.write(rev.padEnd(4), 32, 'latin1');
  return b;
}

describe('response parsers', () => {
  it('INQUIRY of a Fujitsu MO drive and a CD-ROM drive', () => {
    const mo = P.parseInquiry(inquiry(0x07, true, 'FUJITSU', 'MCJ3230AP', '0040'));
    assert.deepEqual(mo, { peripheralQualifier: 0, peripheralType: 7, removable: true, version: 2, vendor: 'FUJITSU', product: 'MCJ3230AP', revision: '0040' });
    const cd = P.parseInquiry(inquiry(0x05, true, 'TOSHIBA', 'CD-ROM XM-6201TA', '1037'));
    assert.equal(cd.peripheralType, 5);
    assert.equal(P.peripheralTypeName(cd.peripheralType), 'CD/DVD device');
    assert.throws(() => P.parseInquiry(Buffer.alloc(20)), FormatError);
  });
  it('VPD 00h, 80h, 83h, B0h', () => {
    assert.deepEqual(P.parseSupportedVpdPages(Buffer.from('0700000400 80 83 b0'.replace(/ /g, ''), 'hex')), [0x00, 0x80, 0x83, 0xb0]);
    assert.equal(P.parseUnitSerial(Buffer.from([0x07, 0x80, 0, 6, ...Buffer.from(' AB12 ')])), 'AB12');
    assert.throws(() => P.parseUnitSerial(Buffer.from([0x07, 0x83, 0, 0])), FormatError);
    const d = Buffer.from([0, 0x83, 0, 12, 0x02, 0x01, 0, 8, ...Buffer.from('VENDOR01')]);
    assert.deepEqual(P.parseDeviceIdentification(d).map((x) => x.text), ['VENDOR01']);
    assert.throws(() => P.parseDeviceIdentification(Buffer.from([0, 0x83, 0, 6, 2, 1, 0, 9, 65, 65])), FormatError);
    const bl = Buffer.alloc(64);
    bl[1] = 0xb0;
    bl.writeUInt16BE(60, 2);
    bl.writeUInt32BE(512, 8);
    bl.writeUInt32BE(32, 12);
    assert.deepEqual(P.parseBlockLimits(bl), { optimalGranularity: 0, maxTransferBlocks: 512, optimalTransferBlocks: 32 });
  });
  it('READ CAPACITY(10) saturates at FFFFFFFF; (16) reads BE64', () => {
    assert.deepEqual(P.parseReadCapacity10(Buffer.from('0004ffff00000800', 'hex')), { blockSize: 2048, blockCount: 0x50000, bytes: 0x50000 * 2048, saturated: false });
    assert.equal(P.parseReadCapacity10(Buffer.from('ffffffff00000200', 'hex')).saturated, true);
    const c16 = Buffer.alloc(32);
    c16.writeBigUInt64BE(0x1_0000_0000n, 0);
    c16.writeUInt32BE(512, 8);
    assert.equal(P.parseReadCapacity16(c16).blockCount, 0x1_0000_0001);
    assert.throws(() => P.parseReadCapacity10(Buffer.from('0000000100000000', 'hex')), FormatError);
  });
  it('MODE SENSE(6)/(10): WP bit, block descriptors (short and long LBA), pages', () => {
    const m6 = Buffer.from('0f008008' + '00001000' + '00000800' + '0802' + '0400', 'hex');
    const p6 = P.parseModeSense6(m6);
    assert.equal(p6.writeProtected, true);
    assert.deepEqual(p6.blockDescriptors, [{ blocks: 0x1000, blockLength: 2048 }]);
    assert.deepEqual([...p6.pages.keys()], [8]);
    const m10 = Buffer.from('00160000' + '0100' + '0010' + '0000000000000100' + '00000000' + '00000200', 'hex');
    const p10 = P.parseModeSense10(m10);
    assert.equal(p10.writeProtected, false);
    assert.deepEqual(p10.blockDescriptors, [{ blocks: 256, blockLength: 512 }]);
  });
  it('READ MEDIA SERIAL NUMBER, REPORT LUNS, READ TOC, GET CONFIGURATION, supported opcodes', () => {
    assert.deepEqual(P.parseMediaSerialNumber(Buffer.from('00000004deadbeef', 'hex')).serial, Buffer.from('deadbeef', 'hex'));
    assert.equal(P.parseMediaSerialNumber(Buffer.from('00000008dead', 'hex')).complete, false);
    assert.equal(P.parseReportLuns(Buffer.from('00000008000000000000000000000000', 'hex')).length, 1);
    assert.throws(() => P.parseReportLuns(Buffer.from('0000000500000000', 'hex')), FormatError);
    const toc = P.parseToc(Buffer.from('00120101' + '00140100' + '00000000' + '0014aa00' + '00001000', 'hex'));
    assert.deepEqual(toc.entries.map((e) => [e.track, e.lba, e.dataTrack]), [[1, 0, true], [0xaa, 0x1000, true]]);
    const conf = P.parseConfiguration(Buffer.from('0000000800000003' + '01090300', 'hex'));
    assert.deepEqual(conf.features.map((f) => [f.code, f.current]), [[0x0109, true]]);
    const ops = P.parseSupportedOpcodes(Buffer.from('00000010' + '2800000000000a00' + 'ab00000101000c00'.slice(0, 16), 'hex'));
    assert.deepEqual(ops.map((o) => o.opcode), [0x28, 0xab]);
  });
  it('random and mutated answers raise only FormatError (property)', () => {
    const parsers = [P.parseInquiry, P.parseSupportedVpdPages, P.parseUnitSerial, P.parseDeviceIdentification, P.parseBlockLimits, P.parseReadCapacity10,
      P.parseReadCapacity16, P.parseModeSense6, P.parseModeSense10, P.parseMediaSerialNumber, P.parseReportLuns, P.parseToc, P.parseConfiguration, P.parseSupportedOpcodes];
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: parsers.length - 1 }), (bytes, i) => {
      try {
        parsers[i]!(Buffer.from(bytes));
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
      }
    }), { numRuns: 5000 });
  });
});
