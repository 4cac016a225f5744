import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ASC_TABLE_SIZE, ascName, ascText } from '../lib/scsi/asc-table.js';
import { buildFixedSense, decodeSenseKeySpecific, formatSense, parseSense, SenseKey, senseKeyName } from '../lib/scsi/sense.js';

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
    assert.equal(s.retryCount, 5);
    assert.equal(formatSense(s), 'MEDIUM ERROR: UNRECOVERED READ ERROR (11/00) [information 0xabcdef] [actual retry count 5]');
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
  it('completes the T10 list: the 5Dh failure prediction family and the newer codes', () => {
    assert.equal(ASC_TABLE_SIZE, 764);
    assert.equal(ascText(0x5d, 0x10), 'HARDWARE IMPENDING FAILURE GENERAL HARD DRIVE FAILURE');
    assert.equal(ascText(0x5d, 0x1d), 'HARDWARE IMPENDING FAILURE POWER LOSS PROTECTION CIRCUIT');
    assert.equal(ascText(0x5d, 0x2c), 'CONTROLLER IMPENDING FAILURE DRIVE CALIBRATION RETRY COUNT');
    assert.equal(ascText(0x5d, 0x3b), 'DATA CHANNEL IMPENDING FAILURE SPIN-UP RETRY COUNT');
    assert.equal(ascText(0x5d, 0x4a), 'SERVO IMPENDING FAILURE SEEK TIME PERFORMANCE');
    assert.equal(ascText(0x5d, 0x56), 'SPINDLE IMPENDING FAILURE START UNIT TIMES TOO HIGH');
    assert.equal(ascText(0x5d, 0x6c), 'FIRMWARE IMPENDING FAILURE DRIVE CALIBRATION RETRY COUNT');
    assert.equal(ascText(0x5d, 0x73), 'MEDIA IMPENDING FAILURE ENDURANCE LIMIT MET');
    assert.equal(ascText(0x5d, 0xff), 'FAILURE PREDICTION THRESHOLD EXCEEDED (FALSE)');
    // Every ASCQ T10 assigns in 5Dh: 00-03, 10-1D, 20-2C, 30-3C, 40-4C, 50-5C, 60-6C, 73, FF.
    const assigned = [0, 1, 2, 3, ...Array.from({ length: 14 }, (_, i) => 0x10 + i), ...[0x20, 0x30, 0x40, 0x50, 0x60].flatMap((b) => Array.from({ length: 13 }, (_, i) => b + i)), 0x73, 0xff];
    for (const q of assigned) assert.ok(ascName(0x5d, q) && !/VENDOR/.test(ascName(0x5d, q)!), `5D/${q.toString(16)}`);
    assert.equal(ascName(0x5d, 0x04), undefined);
    assert.equal(ascText(0x00, 0x23), 'OVERLAPPING ATOMIC COMMAND IN PROGRESS');
    assert.equal(ascText(0x30, 0x0b), 'CLEANING TAPE EXPIRED');
    assert.equal(ascText(0x38, 0x08), 'DEPOPULATION INTERRUPTED');
    assert.equal(ascText(0x3b, 0x20), 'ELEMENT STATIC INFORMATION CHANGED');
    assert.equal(ascText(0x67, 0x0e), 'FEATURE NOT ENABLED');
    assert.equal(ascText(0x20, 0x05), 'WRITE TYPE OPERATION WHILE IN READ CAPABLE STATE (OBS)');
  });
  it('names the NN families and the vendor specific ranges, and nothing else', () => {
    assert.equal(ascText(0x40, 0x00), 'RAM FAILURE (SHOULD USE 40 NN)');
    assert.equal(ascText(0x40, 0x12), 'RAM FAILURE 0x12');
    assert.equal(ascText(0x40, 0xff), 'DIAGNOSTIC FAILURE ON COMPONENT 0xFF');
    assert.equal(ascText(0x41, 0x03), 'DATA PATH FAILURE 0x03');
    assert.equal(ascText(0x42, 0x90), 'POWER-ON OR SELF-TEST FAILURE 0x90');
    assert.equal(ascText(0x4d, 0x00), 'TAGGED OVERLAPPED COMMANDS (TASK TAG 0x00)');
    assert.equal(ascText(0x4d, 0x2a), 'TAGGED OVERLAPPED COMMANDS (TASK TAG 0x2A)');
    assert.equal(ascText(0x70, 0x07), 'DECOMPRESSION EXCEPTION SHORT ALGORITHM ID OF 0x07');
    assert.equal(ascText(0x71, 0x00), 'DECOMPRESSION EXCEPTION LONG ALGORITHM ID');
    // ASC 80h-FFh: vendor specific; ASCQ 80h-FFh: vendor specific qualification of the standard ASC.
    assert.equal(ascName(0xff, 0xff), 'VENDOR SPECIFIC ASC 0xFF ASCQ 0xFF');
    assert.equal(ascText(0x24, 0x90), 'INVALID FIELD IN CDB, VENDOR SPECIFIC ASCQ 0x90');
    assert.equal(ascText(0x7e, 0x81), 'ASC 0x7E, VENDOR SPECIFIC ASCQ 0x81');
    // 34h/00h is ENCLOSURE FAILURE and no more: 34h/01h is reserved.
    assert.equal(ascText(0x34, 0x00), 'ENCLOSURE FAILURE');
    assert.equal(ascName(0x34, 0x01), undefined);
    assert.equal(ascText(0x34, 0x01), 'ASC 0x34 ASCQ 0x01 (unknown)');
    assert.equal(ascText(0x34, 0x80), 'ENCLOSURE FAILURE, VENDOR SPECIFIC ASCQ 0x80');
    let named = 0;
    for (let p = 0; p < 65536; p++) if (ascName(p >> 8, p & 0xff) !== undefined) named++;
    assert.equal(named, 50552);
  });
  it('decodes progress indication (NO SENSE, NOT READY) in fixed and descriptor format', () => {
    // NOT READY, 04/04 FORMAT IN PROGRESS, SKSV, progress 0x8000 = 50 %.
    const f = parseSense(Buffer.from('70000200000000' + '0a' + '00000000' + '0404' + '00' + '808000', 'hex'))!;
    assert.equal(f.progress, 0x8000);
    assert.equal(f.progressPercent, 50);
    assert.equal(f.fieldPointer, undefined);
    assert.equal(formatSense(f), 'NOT READY: LOGICAL UNIT NOT READY, FORMAT IN PROGRESS (04/04) [progress 50.0%]');
    // NO SENSE, 00/16 OPERATION IN PROGRESS, descriptor 02h with progress 0x4000 = 25 %.
    const d = parseSense(Buffer.from('72000016000000' + '08' + '02060000' + '804000' + '00', 'hex'))!;
    assert.equal(d.progress, 0x4000);
    assert.equal(d.progressPercent, 25);
    assert.equal(formatSense(d), 'NO SENSE: OPERATION IN PROGRESS (00/16) [progress 25.0%]');
    const built = parseSense(buildFixedSense(SenseKey.NOT_READY, 0x04, 0x1b, { progress: 0xffff }))!;
    assert.equal(built.progress, 0xffff);
    assert.ok(built.progressPercent! > 99.99 && built.progressPercent! < 100);
    // SKSV clear in fixed format: nothing there.
    const off = parseSense(Buffer.from('70000200000000' + '0a' + '00000000' + '0404' + '00' + '008000', 'hex'))!;
    assert.equal(off.progress, undefined);
    assert.equal(formatSense(off), 'NOT READY: LOGICAL UNIT NOT READY, FORMAT IN PROGRESS (04/04)');
  });
  it('decodes the actual retry count (RECOVERED, MEDIUM and HARDWARE ERROR)', () => {
    for (const key of [SenseKey.RECOVERED_ERROR, SenseKey.MEDIUM_ERROR, SenseKey.HARDWARE_ERROR]) {
      const s = parseSense(buildFixedSense(key, 0x11, 0x00, { retryCount: 0x0102 }))!;
      assert.equal(s.retryCount, 258);
      assert.equal(s.progress, undefined);
      assert.match(formatSense(s), / \[actual retry count 258\]$/);
    }
    const d = parseSense(Buffer.from('72011701000000' + '08' + '02060000' + '800003' + '00', 'hex'))!;
    assert.equal(d.retryCount, 3);
    assert.equal(formatSense(d), 'RECOVERED ERROR: RECOVERED DATA WITH RETRIES (17/01) [actual retry count 3]');
    // The same bytes under another key mean something else or nothing.
    assert.equal(parseSense(buildFixedSense(SenseKey.DATA_PROTECT, 0x27, 0x00, { retryCount: 7 }))!.retryCount, undefined);
  });
  it('decodes the field pointer (ILLEGAL REQUEST) in descriptor format too', () => {
    // Parameter data (C/D 0), BPV, bit 5, byte 0x0102.
    const d = parseSense(Buffer.from('72052600000000' + '08' + '02060000' + '8d0102' + '00', 'hex'))!;
    assert.deepEqual(d.fieldPointer, { commandData: false, bitPointerValid: true, bitPointer: 5, field: 258 });
    assert.equal(formatSense(d), 'ILLEGAL REQUEST: INVALID FIELD IN PARAMETER LIST (26/00) [parameter data byte 258 bit 5]');
    // SPC: in the descriptor SKSV "shall be set to one"; a descriptor with it clear is still read (as sg3_utils does).
    const clear = parseSense(Buffer.from('72052400000000' + '08' + '02060000' + '400004' + '00', 'hex'))!;
    assert.deepEqual(clear.fieldPointer, { commandData: true, bitPointerValid: false, bitPointer: 0, field: 4 });
  });
  it('decodes the segment pointer (COPY ABORTED) in fixed and descriptor format', () => {
    // SD (relative to the segment descriptor), BPV, bit 4, byte 18.
    const f = parseSense(Buffer.from('70000a00000000' + '0a' + '00000000' + '0d00' + '00' + 'ac0012', 'hex'))!;
    assert.deepEqual(f.segmentPointer, { segmentDescriptor: true, bitPointerValid: true, bitPointer: 4, field: 18 });
    assert.equal(f.fieldPointer, undefined);
    assert.equal(formatSense(f), 'COPY ABORTED: ERROR DETECTED BY THIRD PARTY TEMPORARY INITIATOR (0D/00) [segment descriptor byte 18 bit 4]');
    const d = parseSense(Buffer.from('720a0d00000000' + '08' + '02060000' + '800102' + '00', 'hex'))!;
    assert.deepEqual(d.segmentPointer, { segmentDescriptor: false, bitPointerValid: false, bitPointer: 0, field: 258 });
    assert.match(formatSense(d), / \[parameter list byte 258\]$/);
    const built = parseSense(buildFixedSense(SenseKey.COPY_ABORTED, 0x0d, 0x02, { segmentPointer: { segmentDescriptor: true, field: 40, bit: 1 } }))!;
    assert.deepEqual(built.segmentPointer, { segmentDescriptor: true, bitPointerValid: true, bitPointer: 1, field: 40 });
  });
  it('decodes the unit attention queue overflow flag and ignores keys without sense-key-specific data', () => {
    const ua = parseSense(Buffer.from('70000600000000' + '0a' + '00000000' + '2900' + '00' + '810000', 'hex'))!;
    assert.equal(ua.unitAttentionOverflow, true);
    assert.match(formatSense(ua), / \[unit attention queue overflow\]$/);
    assert.deepEqual(decodeSenseKeySpecific(Buffer.from([0x80, 0, 0]), SenseKey.UNIT_ATTENTION), { unitAttentionOverflow: false });
    for (const key of [SenseKey.DATA_PROTECT, SenseKey.BLANK_CHECK, SenseKey.ABORTED_COMMAND, SenseKey.MISCOMPARE]) {
      assert.deepEqual(decodeSenseKeySpecific(Buffer.from([0xff, 0xff, 0xff]), key), {});
    }
    assert.deepEqual(decodeSenseKeySpecific(Buffer.from([0x80, 0x01]), SenseKey.NOT_READY), {});
    // A truncated descriptor 02h (fewer than 7 bytes) is not read.
    const short = parseSense(Buffer.from('72020404000000' + '06' + '02040000' + '8080', 'hex'))!;
    assert.equal(short.progress, undefined);
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
