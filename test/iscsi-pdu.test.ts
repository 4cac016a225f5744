/**
 * lib/iscsi pure codecs: PDU header/data/digests (pdu.ts), serial number arithmetic, LUN fields, and the
 * text key codec and negotiation table (text.ts). Property tests throw random and mutated input at them.
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  BHS_BYTES, decodePdu, digest, DIGEST_BYTES, encodePdu, lunField, lunOf, pad4, PduFormatError, RejectReason, snAdd, snLess, wireLength,
  type TargetPdu,
} from '../lib/iscsi/pdu.js';
import { decodeText, encodeText, negotiate, targetTable, type KeyValues } from '../lib/iscsi/text.js';
import { rawPdu } from './helpers/iscsi-client.js';

const wire = (p: TargetPdu, hd: boolean, dd: boolean) => Buffer.concat(encodePdu(p, hd, dd));

function throwsFormat(f: () => unknown, message?: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof PduFormatError, `expected PduFormatError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

const targetPduArb: fc.Arbitrary<TargetPdu> = fc.record({
  opcode: fc.integer({ min: 0, max: 0x7f }),
  flags: fc.integer({ min: 0, max: 0xff }),
  byte2: fc.integer({ min: 0, max: 0xff }),
  byte3: fc.integer({ min: 0, max: 0xff }),
  lun: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((a) => Buffer.from(a)),
  itt: fc.nat({ max: 0xffffffff }),
  word20: fc.nat({ max: 0xffffffff }),
  statSN: fc.nat({ max: 0xffffffff }),
  expCmdSN: fc.nat({ max: 0xffffffff }),
  maxCmdSN: fc.nat({ max: 0xffffffff }),
  word36: fc.nat({ max: 0xffffffff }),
  word40: fc.nat({ max: 0xffffffff }),
  word44: fc.nat({ max: 0xffffffff }),
  data: fc.uint8Array({ maxLength: 70 }).map((a) => Buffer.from(a)),
});

describe('iSCSI PDU codec (lib/iscsi/pdu.ts)', () => {
  describe('encode → decode', () => {
    it('round-trips every header field a target PDU and an initiator PDU share, with and without digests', () => {
      fc.assert(fc.property(targetPduArb, fc.boolean(), fc.boolean(), (p, hd, dd) => {
        const w = wire(p, hd, dd);
        assert.equal(w.length, wireLength(w.subarray(0, BHS_BYTES), hd, dd));
        const d = decodePdu(w, hd, dd);
        assert.equal(d.opcode, p.opcode & 0x3f);
        assert.equal(d.immediate, !!(p.opcode & 0x40));
        assert.equal(d.flags, p.flags);
        assert.equal(d.final, !!(p.flags & 0x80));
        assert.equal(d.header[2], p.byte2);
        assert.equal(d.header[3], p.byte3);
        assert.equal(d.ahsLength, 0);
        assert.equal(d.dataLength, p.data!.length);
        assert.deepEqual(d.lun, p.lun);
        assert.equal(d.itt, p.itt);
        assert.equal(d.word20, p.word20);
        assert.equal(d.cmdSN, p.statSN); // bytes 24-27
        assert.equal(d.expStatSN, p.expCmdSN); // bytes 28-31
        assert.equal(d.header.readUInt32BE(32), p.maxCmdSN);
        assert.equal(d.header.readUInt32BE(36), p.word36);
        assert.equal(d.header.readUInt32BE(40), p.word40);
        assert.equal(d.header.readUInt32BE(44), p.word44);
        assert.deepEqual(d.data, p.data);
      }), { numRuns: 300 });
    });

    it('puts ISID/TSIH (bytes8) in place of the LUN, and writes zero for fields left out', () => {
      const bytes8 = Buffer.from([1, 2, 3, 4, 5, 6, 0x12, 0x34]);
      const w = wire({ opcode: 0x23, flags: 0x87, itt: 7, expCmdSN: 9, maxCmdSN: 10, bytes8, lun: Buffer.alloc(8, 0xee) }, false, false);
      assert.equal(w.length, BHS_BYTES);
      assert.deepEqual(w.subarray(8, 16), bytes8);
      assert.equal(w.readUInt32BE(20), 0);
      assert.equal(w.readUInt32BE(24), 0);
      assert.equal(w.readUIntBE(5, 3), 0);
      assert.equal(w.readUInt32BE(36), 0);
    });

    it('decodes a PDU built byte by byte by the test initiator (SCSI command: EDTL, CmdSN, ExpStatSN, CDB)', () => {
      const cdb = Buffer.from([0x12, 0, 0, 0, 0x60, 0]);
      const bytes32 = Buffer.alloc(16);
      cdb.copy(bytes32);
      const w = rawPdu({ opcode: 0x01, immediate: true, flags: 0xc1, bytes8: lunField(5), itt: 0xabcd, word20: 96, word24: 0xfffffffe, word28: 3, bytes32 });
      const d = decodePdu(w, false, false);
      assert.deepEqual([d.opcode, d.immediate, d.final, d.flags, d.itt, d.word20, d.cmdSN, d.expStatSN, lunOf(d.lun)], [1, true, true, 0xc1, 0xabcd, 96, 0xfffffffe, 3, 5]);
      assert.deepEqual(d.header.subarray(32, 38), cdb);
    });

    it('pads the data segment to a multiple of 4 bytes with zeros, and the length field keeps the unpadded length', () => {
      for (let n = 0; n <= 9; n++) {
        const data = Buffer.alloc(n, 0xa5);
        const pieces = encodePdu({ opcode: 0x24, flags: 0x80, itt: 1, expCmdSN: 1, maxCmdSN: 1, data }, false, false);
        const w = Buffer.concat(pieces);
        assert.equal(w.length, BHS_BYTES + pad4(n), `length for ${n} data bytes`);
        assert.equal(w.length % 4, 0);
        assert.equal(w.readUIntBE(5, 3), n);
        assert.ok(w.subarray(BHS_BYTES + n).every((b) => b === 0), 'padding is zero');
        assert.deepEqual(decodePdu(w, false, false).data, data);
      }
      assert.deepEqual([0, 1, 2, 3, 4, 5, 8, 9].map(pad4), [0, 4, 4, 4, 4, 8, 8, 12]);
    });

    it('refuses a data segment longer than the 24-bit length field', () => {
      assert.throws(() => encodePdu({ opcode: 0x25, flags: 0, itt: 1, expCmdSN: 1, maxCmdSN: 1, data: Buffer.alloc(0x1000000) }, false, false), RangeError);
    });
  });

  describe('digests (CRC32C)', () => {
    it('is CRC32C: the check value of "123456789" is 0xE3069283, RFC 3720 B.4 vectors hold', () => {
      assert.equal(digest(Buffer.from('123456789', 'latin1')), 0xe3069283);
      assert.equal(digest(Buffer.from('1234', 'latin1'), Buffer.from('56789', 'latin1')), 0xe3069283, 'over several parts');
      assert.equal(digest(Buffer.alloc(32)), 0x8a9136aa);
      assert.equal(digest(Buffer.alloc(32, 0xff)), 0x62a8ab43);
      assert.equal(digest(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
      assert.equal(digest(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c);
    });

    it('puts the header digest after the header, least significant byte first, over the 48 header bytes', () => {
      const w = wire({ opcode: 0x20, flags: 0x80, itt: 0x11223344, expCmdSN: 5, maxCmdSN: 8 }, true, true);
      assert.equal(w.length, BHS_BYTES + DIGEST_BYTES, 'no data: no data digest either');
      assert.equal(w.readUInt32LE(BHS_BYTES), digest(w.subarray(0, BHS_BYTES)));
      // RFC 3720 B.4: the zero vector goes on the wire as aa 36 91 8a.
      const z = Buffer.alloc(4);
      z.writeUInt32LE(digest(Buffer.alloc(32)));
      assert.deepEqual([...z], [0xaa, 0x36, 0x91, 0x8a]);
    });

    it('computes the data digest over the data and its padding', () => {
      const data = Buffer.from('abcde');
      const w = wire({ opcode: 0x25, flags: 0x81, itt: 1, expCmdSN: 1, maxCmdSN: 1, data }, false, true);
      assert.equal(w.length, BHS_BYTES + 8 + DIGEST_BYTES);
      assert.equal(w.readUInt32LE(BHS_BYTES + 8), digest(Buffer.concat([data, Buffer.alloc(3)])));
      const hd = wire({ opcode: 0x25, flags: 0x81, itt: 1, expCmdSN: 1, maxCmdSN: 1, data }, true, true);
      assert.equal(hd.length, BHS_BYTES + DIGEST_BYTES + 8 + DIGEST_BYTES);
      assert.deepEqual(decodePdu(hd, true, true).data, data);
    });

    it('detects a damaged header, header digest, data, padding or data digest (data digest errors carry reason 0x02)', () => {
      const data = Buffer.from('hello, target');
      const good = wire({ opcode: 0x04, flags: 0x80, itt: 42, word20: 0xffffffff, expCmdSN: 3, maxCmdSN: 3, data }, true, true);
      decodePdu(good, true, true);
      const flip = (at: number) => { const b = Buffer.from(good); b[at]! ^= 0x01; return b; };
      for (const at of [0, 1, 17, 47]) throwsFormat(() => decodePdu(flip(at), true, true), /header digest/);
      for (const at of [48, 51]) throwsFormat(() => decodePdu(flip(at), true, true), /header digest/);
      const dataAt = BHS_BYTES + DIGEST_BYTES;
      for (const at of [dataAt, dataAt + data.length - 1, dataAt + data.length /* padding */, good.length - 1 /* digest */]) {
        assert.throws(() => decodePdu(flip(at), true, true), (e: unknown) => e instanceof PduFormatError && /data digest/.test(e.message) && e.reason === RejectReason.DATA_DIGEST);
      }
      // Without digests in force the same bytes are not checked.
      const plain = wire({ opcode: 0x04, flags: 0x80, itt: 42, expCmdSN: 3, maxCmdSN: 3, data }, false, false);
      const damaged = Buffer.from(plain);
      damaged[BHS_BYTES] = 0x48;
      assert.equal(decodePdu(damaged, false, false).data.toString(), 'Hello, target');
    });

    it('refuses truncated PDUs with PduFormatError: short header, short data, missing header digest, missing data digest', () => {
      const data = Buffer.alloc(100, 7);
      const plain = wire({ opcode: 0x25, flags: 0x81, itt: 1, expCmdSN: 1, maxCmdSN: 1, data }, false, false);
      for (const n of [0, 1, 47]) throwsFormat(() => decodePdu(plain.subarray(0, n), false, false), /shorter than a header/);
      for (const n of [48, 60, 147]) throwsFormat(() => decodePdu(plain.subarray(0, n), false, false), /truncated/);
      const digested = wire({ opcode: 0x25, flags: 0x81, itt: 1, expCmdSN: 1, maxCmdSN: 1, data }, true, true);
      for (const n of [48, 50, 51]) throwsFormat(() => decodePdu(digested.subarray(0, n), true, true));
      for (const n of [52, 151, 152, 153, 155]) throwsFormat(() => decodePdu(digested.subarray(0, n), true, true));
      const noData = wire({ opcode: 0x20, flags: 0x80, itt: 1, expCmdSN: 1, maxCmdSN: 1 }, true, false);
      throwsFormat(() => decodePdu(noData.subarray(0, 48), true, false));
      // An AHS the wire does not hold.
      const ahs = Buffer.from(plain.subarray(0, 48));
      ahs[4] = 2;
      ahs.writeUIntBE(0, 5, 3);
      throwsFormat(() => decodePdu(ahs, true, false));
    });
  });

  describe('serial number arithmetic (RFC 1982, 32 bits)', () => {
    it('snAdd wraps at 2^32', () => {
      assert.equal(snAdd(0xffffffff, 1), 0);
      assert.equal(snAdd(0xfffffff0, 0x20), 0x10);
      assert.equal(snAdd(0, 0xffffffff), 0xffffffff);
      assert.equal(snAdd(0x80000000, 0x80000000), 0);
      assert.equal(snAdd(5, 0), 5);
    });

    it('snLess compares across the wrap', () => {
      assert.equal(snLess(0xffffffff, 0), true);
      assert.equal(snLess(0, 0xffffffff), false);
      assert.equal(snLess(0xfffffff0, 0x10), true);
      assert.equal(snLess(0x10, 0xfffffff0), false);
      assert.equal(snLess(1, 2), true);
      assert.equal(snLess(2, 1), false);
      assert.equal(snLess(7, 7), false);
      assert.equal(snLess(0x7fffffff, 0x80000000), true);
      assert.equal(snLess(0, 0x7fffffff), true);
      // Exactly 2^31 apart: undefined in RFC 1982, neither is less.
      assert.equal(snLess(0, 0x80000000), false);
      assert.equal(snLess(0x80000000, 0), false);
    });

    it('a < a + n and not a + n < a for every a and 0 < n < 2^31', () => {
      fc.assert(fc.property(fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 0x7fffffff }), (a, n) => {
        const b = snAdd(a, n);
        assert.ok(b >= 0 && b <= 0xffffffff && Number.isInteger(b));
        assert.equal(snLess(a, b), true);
        assert.equal(snLess(b, a), false);
      }), { numRuns: 500 });
    });
  });

  describe('LUN fields (SAM-5 single level)', () => {
    it('LUN 0, 5 and 300', () => {
      assert.deepEqual([...lunField(0)], [0, 0, 0, 0, 0, 0, 0, 0]);
      assert.deepEqual([...lunField(5)], [0, 5, 0, 0, 0, 0, 0, 0]);
      assert.deepEqual([...lunField(300)], [0x41, 0x2c, 0, 0, 0, 0, 0, 0], 'flat addressing above 255');
      assert.equal(lunOf(lunField(0)), 0);
      assert.equal(lunOf(lunField(5)), 5);
      assert.equal(lunOf(lunField(300)), 300);
      assert.equal(lunOf(Buffer.from([0, 0x2c, 0, 0, 0, 0, 0, 0])), 0x2c);
    });

    it('every single-level LUN round-trips; other addressing methods and multi-level LUNs are undefined', () => {
      fc.assert(fc.property(fc.integer({ min: 0, max: 0x3fff }), (lun) => assert.equal(lunOf(lunField(lun)), lun)), { numRuns: 300 });
      assert.equal(lunOf(Buffer.from([0x80, 1, 0, 0, 0, 0, 0, 0])), undefined);
      assert.equal(lunOf(Buffer.from([0xc0, 1, 0, 0, 0, 0, 0, 0])), undefined);
      assert.equal(lunOf(Buffer.from([0, 1, 0, 1, 0, 0, 0, 0])), undefined);
      assert.equal(lunOf(Buffer.from([0, 1, 0, 0, 0, 0, 0, 9])), undefined);
    });
  });

  describe('properties: hostile bytes', () => {
    /** A valid initiator-like PDU (header and data digests as asked), then damaged. */
    const mutatedArb = fc.record({
      pdu: targetPduArb,
      hd: fc.boolean(),
      dd: fc.boolean(),
      cut: fc.option(fc.nat({ max: 200 })),
      sets: fc.array(fc.tuple(fc.nat({ max: 199 }), fc.nat({ max: 255 })), { maxLength: 4 }),
      tail: fc.uint8Array({ maxLength: 8 }),
    }).map(({ pdu, hd, dd, cut, sets, tail }) => {
      let b = Buffer.concat([wire(pdu, hd, dd), Buffer.from(tail)]);
      for (const [at, v] of sets) if (at < b.length) b[at] = v;
      if (cut !== null) b = b.subarray(0, Math.min(cut, b.length));
      return b;
    });
    /** Headers whose length fields are the interesting ones (AHS, data length near the wire's size). */
    const lengthsArb = fc.record({
      ahs: fc.nat({ max: 255 }), len: fc.oneof(fc.nat({ max: 80 }), fc.nat({ max: 0xffffff })), extra: fc.nat({ max: 120 }),
    }).map(({ ahs, len, extra }) => {
      const b = Buffer.alloc(48 + extra, 0x5a);
      b[4] = ahs;
      b.writeUIntBE(len, 5, 3);
      return b;
    });

    it('decodePdu on random or mutated bytes returns a consistent PDU or throws PduFormatError, nothing else', () => {
      fc.assert(fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 160 }).map((a) => Buffer.from(a)), mutatedArb, lengthsArb), fc.boolean(), fc.boolean(),
        (bytes, hd, dd) => {
          let d;
          try {
            d = decodePdu(bytes, hd, dd);
          } catch (e) {
            if (e instanceof PduFormatError) return;
            throw new Error(`decodePdu threw ${(e as Error).constructor.name} (not PduFormatError): ${(e as Error).message}`);
          }
          assert.equal(d.data.length, d.dataLength);
          assert.equal(d.header.length, BHS_BYTES);
          assert.ok(d.opcode >= 0 && d.opcode <= 0x3f);
        },
      ), { numRuns: 2000 });
    });
  });
});

describe('iSCSI text keys (lib/iscsi/text.ts)', () => {
  const limits = { maxRecvDataSegmentLength: 262144, maxBurstLength: 1 << 20, firstBurstLength: 262144, maxOutstandingR2T: 1, digests: true };
  const table = targetTable(limits);

  it('decodes key=value pairs separated by NUL; a key without "=" has an empty value; empty parts are skipped', () => {
    assert.deepEqual(decodeText(Buffer.from('A=1\0B=x=y\0\0C\0D=\0')), [['A', '1'], ['B', 'x=y'], ['C', ''], ['D', '']]);
    assert.deepEqual(encodeText([['A', '1'], ['B', '']]), Buffer.from('A=1\0B=\0'));
    assert.deepEqual(decodeText(Buffer.alloc(0)), []);
  });

  it('property: decodeText(encodeText(kv)) round-trips keys without NUL or "=" and values without NUL', () => {
    // Any code point but NUL and lone surrogates (which UTF-8 cannot carry); '=' often.
    const unit = fc.oneof(fc.constant('='), fc.integer({ min: 1, max: 0x7f }), fc.integer({ min: 0x80, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff }))
      .map((c) => (typeof c === 'string' ? c : String.fromCodePoint(c)));
    const key = fc.string({ unit, maxLength: 12 }).filter((k) => !k.includes('='));
    const value = fc.string({ unit, maxLength: 24 });
    fc.assert(fc.property(fc.array(fc.tuple(key, value), { maxLength: 12 }), (kv) => {
      assert.deepEqual(decodeText(encodeText(kv)), kv);
    }), { numRuns: 500 });
  });

  it('negotiates numbers (min/max), booleans (or/and), lists, fixed answers; unknown keys are NotUnderstood', () => {
    const n = negotiate([
      ['MaxBurstLength', '4194304'], ['FirstBurstLength', '4096'], ['DefaultTime2Wait', '0'], ['InitialR2T', 'No'], ['ImmediateData', 'Yes'],
      ['HeaderDigest', 'CRC32C,None'], ['DataDigest', 'None'], ['IFMarker', 'Yes'], ['X-com.example.thing', '1'], ['ErrorRecoveryLevel', '0x2'],
      ['MaxRecvDataSegmentLength', '65536'],
    ], table, 'operational');
    assert.equal(n.error, undefined);
    assert.deepEqual(n.answer, [
      ['MaxBurstLength', String(1 << 20)], ['FirstBurstLength', '4096'], ['DefaultTime2Wait', '2'], ['InitialR2T', 'No'], ['ImmediateData', 'No'],
      ['HeaderDigest', 'CRC32C'], ['DataDigest', 'None'], ['IFMarker', 'No'], ['X-com.example.thing', 'NotUnderstood'], ['ErrorRecoveryLevel', '0'],
    ]);
    assert.equal(n.agreed.MaxRecvDataSegmentLength, '65536');
  });

  it('Rejects out-of-range and malformed numbers and booleans; refuses duplicates and login-only keys in full feature phase', () => {
    const n = negotiate([['MaxBurstLength', '100'], ['FirstBurstLength', '99999999999'], ['MaxConnections', '-1'], ['InitialR2T', 'yes'], ['DataDigest', 'MD5']], table, 'operational');
    assert.deepEqual(n.answer.map(([, v]) => v), ['Reject', 'Reject', 'Reject', 'Reject', 'Reject']);
    assert.deepEqual(n.agreed, {});
    assert.match(negotiate([['MaxBurstLength', '512'], ['MaxBurstLength', '1024']], table, 'operational').error ?? '', /twice/);
    assert.match(negotiate([['MaxBurstLength', '512']], table, 'full').error ?? '', /full feature/);
    assert.equal(negotiate([['MaxRecvDataSegmentLength', '8192']], table, 'full').error, undefined);
  });

  it('a key named like an Object.prototype member (constructor, __proto__, toString) is NotUnderstood, not a TypeError', () => {
    for (const k of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      const n = negotiate([[k, '1']], table, 'operational');
      assert.deepEqual(n.answer, [[k, 'NotUnderstood']], k);
      assert.equal(n.error, undefined);
    }
  });

  it('property: negotiate never throws, and every numeric answer is in the table range, Reject or NotUnderstood', () => {
    const tables = [table, targetTable({ ...limits, digests: false, maxBurstLength: 512, firstBurstLength: 512, maxOutstandingR2T: 8 })];
    const keyArb = fc.oneof(
      { arbitrary: fc.constantFrom(...Object.keys(table), 'AuthMethod', 'CHAP_A', 'CHAP_R', 'X-foo', 'SendTargets', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', ''), weight: 5 },
      { arbitrary: fc.string({ maxLength: 10 }), weight: 1 },
    );
    const valueArb = fc.oneof(
      fc.nat({ max: 0xffffffff }).map(String),
      fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
      fc.integer().map(String),
      fc.nat({ max: 0xffffffff }).map((n) => '0x' + n.toString(16)),
      fc.constantFrom('', '0', '00', '0x', '0x1ffffffff', '1e3', '1.5', ' 512', '512 ', '+512', 'NaN', 'Infinity', '-0', 'Yes', 'No', 'None', 'CRC32C', 'CRC32C,None', 'None,CRC32C', ',', 'Reject', 'NotUnderstood'),
      fc.string({ maxLength: 12 }),
    );
    fc.assert(fc.property(fc.array(fc.tuple(keyArb, valueArb), { maxLength: 12 }), fc.constantFrom('security', 'operational', 'full' as const), fc.constantFrom(0, 1), (offer: KeyValues, phase, which) => {
      const t = tables[which]!;
      const n = negotiate(offer, t, phase as 'security' | 'operational' | 'full');
      const keys = offer.map(([k]) => k);
      if (new Set(keys).size === keys.length) assert.ok(n.error === undefined || /full feature/.test(n.error), n.error);
      for (const [k, v] of n.answer) {
        const row = Object.hasOwn(t, k) ? t[k] : undefined;
        if (!row) { assert.equal(v, 'NotUnderstood', `unknown key ${k}`); continue; }
        const r = row.rule;
        if (r.kind === 'min' || r.kind === 'max') {
          if (v === 'Reject' || v === 'NotUnderstood') continue;
          assert.match(v, /^\d+$/, `${k}=${v}`);
          assert.ok(Number(v) >= r.lo && Number(v) <= r.hi, `${k}=${v} outside ${r.lo}..${r.hi}`);
        } else if (r.kind === 'bool-or' || r.kind === 'bool-and') {
          assert.ok(['Yes', 'No', 'Reject'].includes(v), `${k}=${v}`);
        } else if (r.kind === 'list') {
          assert.ok(v === 'Reject' || r.supported.includes(v), `${k}=${v}`);
        } else if (r.kind === 'fixed') {
          assert.equal(v, r.value);
        } else {
          assert.fail(`declarative key ${k} answered`);
        }
      }
      for (const [k, v] of Object.entries(n.agreed)) {
        const r = t[k]!.rule;
        if (r.kind === 'min' || r.kind === 'max') assert.ok(Number(v) >= r.lo && Number(v) <= r.hi, `agreed ${k}=${v}`);
      }
    }), { numRuns: 1000 });
  });
});
