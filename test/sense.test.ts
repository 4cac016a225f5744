import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ASC_TABLE_SIZE, ascText } from '../lib/scsi/asc-table.js';
import { buildFixedSense, formatSense, parseSense, SenseKey, senseKeyName } from '../lib/scsi/sense.js';

describe('sense data', () => {
  it('decodes fixed format with VALID information and a field pointer', () => {
    // 70h|VALID, key 5, info 0x00001234, add. length 10, ASC 24 ASCQ 00, SKSV C/D=1 BPV bit 3, field 0x0002
    const b = Buffer.from('f0000500001234' + '0a' + '00000000' + '2400' + '00' + 'cb0002', 'hex');
    const s = parseSense(b)!;
    assert.equal(s.responseCode, 0x70);
    assert.equal(s.senseKey, SenseKey.ILLEGAL_REQUEST);
    assert.equal(s.asc, 0x24);
    assert.equal(s.ascq, 0);
    assert.equal(s.information, 0x1234n);
    assert.deepEqual(s.fieldPointer, { commandData: true, bitPointerValid: true, bitPointer: 3, field: 2 });
    assert.equal(s.truncated, false);
    assert.equal(formatSense(s), 'ILLEGAL REQUEST: INVALID FIELD IN CDB (24/00) [information 0x1234] [CDB byte 2 bit 3]');
  });
  it('decodes deferred errors (71h and 73h)', () => {
    assert.equal(parseSense(Buffer.from('71000300000000' + '0a' + '00000000' + '0c00' + '000000', 'hex'))!.deferred, true);
    const d = parseSense(Buffer.from('73030c0000000000', 'hex'))!;
    assert.equal(d.deferred, true);
    assert.equal(d.descriptorFormat, true);
    assert.match(formatSense(d), /^deferred error: MEDIUM ERROR: WRITE ERROR \(0C\/00\)/);
  });
  it('decodes descriptor format with information and sense-key-specific descriptors', () => {
    // 72h, key 3, 11/00, add. length 20: info descriptor (00 0a 80 00 + 8 bytes) and SKS descriptor (02 06 00 00 + 3 + 1)
    const b = Buffer.from('72031100000000' + '14' + '000a8000' + '0000000000abcdef' + '02060000' + '800005' + '00', 'hex');
    const s = parseSense(b)!;
    assert.equal(s.descriptorFormat, true);
    assert.equal(s.senseKey, SenseKey.MEDIUM_ERROR);
    assert.equal(s.information, 0xabcdefn);
    assert.equal(s.descriptors.length, 2);
    assert.equal(formatSense(s), 'MEDIUM ERROR: UNRECOVERED READ ERROR (11/00) [information 0xabcdef]');
  });
  it('treats empty, unknown response codes and truncated sense without throwing', () => {
    assert.equal(parseSense(Buffer.alloc(0)), undefined);
    assert.equal(parseSense(Buffer.from([0x00, 0x01])), undefined);
    const t = parseSense(Buffer.from([0x70, 0x00, 0x06]))!;
    assert.equal(t.senseKey, SenseKey.UNIT_ATTENTION);
    assert.equal(t.truncated, true);
    const t2 = parseSense(Buffer.from('700006000000000a00000000', 'hex'))!;
    assert.equal(t2.truncated, true);
    assert.equal(t2.asc, 0);
  });
  it('builds fixed sense that it parses back (emulator and tests use this)', () => {
    const s = parseSense(buildFixedSense(SenseKey.MEDIUM_ERROR, 0x11, 0x00, { information: 777 }))!;
    assert.equal(s.information, 777n);
    assert.equal(s.asc, 0x11);
  });
  it('names every sense key and a broad ASC/ASCQ table', () => {
    assert.equal(senseKeyName(0x6), 'UNIT ATTENTION');
    assert.equal(senseKeyName(0xe), 'MISCOMPARE');
    assert.ok(ASC_TABLE_SIZE > 600, `table has ${ASC_TABLE_SIZE} entries`);
    const spot: Array<[number, number, string]> = [
      [0x04, 0x01, 'LOGICAL UNIT IS IN PROCESS OF BECOMING READY'], [0x11, 0x00, 'UNRECOVERED READ ERROR'],
      [0x20, 0x00, 'INVALID COMMAND OPERATION CODE'], [0x21, 0x00, 'LOGICAL BLOCK ADDRESS OUT OF RANGE'],
      [0x24, 0x00, 'INVALID FIELD IN CDB'], [0x27, 0x00, 'WRITE PROTECTED'], [0x28, 0x00, 'NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED'],
      [0x29, 0x00, 'POWER ON, RESET, OR BUS DEVICE RESET OCCURRED'], [0x3a, 0x00, 'MEDIUM NOT PRESENT'], [0x3a, 0x02, 'MEDIUM NOT PRESENT - TRAY OPEN'],
      [0x53, 0x02, 'MEDIUM REMOVAL PREVENTED'], [0x0c, 0x00, 'WRITE ERROR'], [0x1d, 0x00, 'MISCOMPARE DURING VERIFY OPERATION'],
      [0x30, 0x02, 'CANNOT READ MEDIUM - INCOMPATIBLE FORMAT'], [0x57, 0x00, 'UNABLE TO RECOVER TABLE-OF-CONTENTS'], [0x64, 0x00, 'ILLEGAL MODE FOR THIS TRACK'],
      [0x6f, 0x00, 'COPY PROTECTION KEY EXCHANGE FAILURE - AUTHENTICATION FAILURE'], [0x73, 0x03, 'POWER CALIBRATION AREA ERROR'],
      [0x5d, 0x00, 'FAILURE PREDICTION THRESHOLD EXCEEDED'], [0x44, 0x00, 'INTERNAL TARGET FAILURE'], [0x3e, 0x02, 'TIMEOUT ON LOGICAL UNIT'],
    ];
    for (const [asc, ascq, text] of spot) assert.equal(ascText(asc, ascq), text);
    assert.equal(ascText(0x40, 0x81), 'DIAGNOSTIC FAILURE ON COMPONENT 0x81');
    assert.equal(ascText(0x80, 0x01), 'VENDOR SPECIFIC ASC 0x80 ASCQ 0x01');
    assert.equal(ascText(0x7e, 0x01), 'ASC 0x7E ASCQ 0x01 (unknown)');
  });
  it('never throws on random or mutated sense (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const s = parseSense(bytes);
      if (s) formatSense(s);
    }), { numRuns: 3000 });
    const valid = buildFixedSense(5, 0x24, 0, { fieldPointer: { commandData: true, field: 4 } });
    fc.assert(fc.property(fc.integer({ min: 0, max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: valid.length }), (i, v, cut) => {
      const m = Buffer.from(valid);
      m[i] = v;
      const s = parseSense(m.subarray(0, cut));
      if (s) formatSense(s);
    }), { numRuns: 3000 });
  });
});
