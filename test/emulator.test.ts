import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { createMoImage, decodeMoHeader, EmulatedDrive, encodeMoHeader, openEmulator, readMoHeader, MO_HEADER_SIZE } from '../lib/emulator/index.js';
import { FormatError } from '../lib/errors.js';
import * as cdb from '../lib/scsi/cdb.js';
import { parseSense } from '../lib/scsi/sense.js';
import { HostStatus, type DataDirection, type ScsiResult } from '../lib/scsi/transport.js';
import { tempDir } from './helpers/fixtures.js';

async function exec(d: EmulatedDrive, c: Buffer, direction: DataDirection = 'none', len = 0, data?: Buffer): Promise<ScsiResult & { data: Buffer }> {
  const buf = data ?? (len ? Buffer.alloc(len) : undefined);
  const r = await d.execute({ cdb: c, direction, ...(buf ? { data: buf } : {}), timeoutMs: 5000 });
  return { ...r, data: buf ? buf.subarray(0, buf.length - r.residual) : Buffer.alloc(0) };
}
function senseOf(r: ScsiResult): [number, number, number] {
  assert.equal(r.status, 0x02, 'expected CHECK CONDITION');
  const s = parseSense(r.sense)!;
  return [s.senseKey, s.asc, s.ascq];
}

describe('emulator', () => {
  let t: ReturnType<typeof tempDir>;
  let moPath: string;
  let cdPath: string;
  beforeEach(() => {
    t = tempDir();
    moPath = join(t.dir, 'disc.mo');
    createMoImage(moPath, { mediumId: Buffer.from('00112233445566778899', 'hex'), capacityBytes: 4 << 20, blockSize: 2048 });
    cdPath = join(t.dir, 'cd.iso');
    const iso = Buffer.alloc(64 * 2048);
    for (let i = 0; i < 64; i++) iso.writeUInt32BE(i, i * 2048);
    writeFileSync(cdPath, iso);
  });
  afterEach(() => t.cleanup());

  describe('MO image format', () => {
    it('round-trips the documented header and rejects damaged ones with FormatError', () => {
      const h = readMoHeader(moPath);
      assert.equal(h.blockSize, 2048);
      assert.equal(h.blockCount, 2048);
      assert.equal(h.mediumId.toString('hex'), '00112233445566778899');
      const bytes = encodeMoHeader(h);
      assert.equal(bytes.toString('latin1', 0, 8), 'MOCOPYMO');
      const bad = Buffer.from(bytes);
      bad[40] ^= 1;
      assert.throws(() => decodeMoHeader(bad), /checksum/);
      const magic = Buffer.from(bytes);
      magic[0] = 0x4e;
      assert.throws(() => decodeMoHeader(magic), /bad magic/);
      assert.throws(() => decodeMoHeader(bytes.subarray(0, 100)), /truncated/);
    });
    it('refuses a truncated image and a CD image of odd size', async () => {
      const img = readFileSync(moPath).subarray(0, MO_HEADER_SIZE + 1000);
      writeFileSync(join(t.dir, 'short.mo'), img);
      await assert.rejects(openEmulator(`emu:${join(t.dir, 'short.mo')}`), FormatError);
      writeFileSync(join(t.dir, 'odd.iso'), Buffer.alloc(3000));
      await assert.rejects(openEmulator(`emu:${join(t.dir, 'odd.iso')}`), /multiple of 2048/);
    });
  });

  describe('MO drive', () => {
    let d: EmulatedDrive;
    beforeEach(async () => { d = await openEmulator(`emu:${moPath}`); });
    afterEach(() => d.close());

    it('INQUIRY: optical memory (07h), removable, vendor/product; EVPD pages', async () => {
      const r = await exec(d, cdb.inquiry({ alloc: 96 }), 'in', 96);
      assert.equal(r.data[0], 0x07);
      assert.equal(r.data[1], 0x80);
      assert.equal(r.data.toString('latin1', 8, 16).trim(), 'MOCOPY');
      const short = await exec(d, cdb.inquiry({ alloc: 36 }), 'in', 96);
      assert.equal(short.data.length, 36);
      assert.equal(short.residual, 60);
      const pages = await exec(d, cdb.inquiry({ evpd: true, page: 0, alloc: 64 }), 'in', 64);
      assert.deepEqual([...pages.data.subarray(4)], [0x00, 0x80, 0x83, 0xb0]);
      const bad = await exec(d, cdb.inquiry({ evpd: true, page: 0xc7, alloc: 64 }), 'in', 64);
      assert.deepEqual(senseOf(bad), [5, 0x24, 0]);
      const s = parseSense(bad.sense)!;
      assert.deepEqual(s.fieldPointer, { commandData: true, bitPointerValid: false, bitPointer: 0, field: 2 });
    });
    it('READ MEDIA SERIAL NUMBER gives the medium ID; VPD 80h gives a different drive serial', async () => {
      const r = await exec(d, cdb.readMediaSerialNumber(64), 'in', 64);
      assert.equal(r.status, 0);
      assert.equal(r.data.readUInt32BE(0), 10);
      assert.equal(r.data.subarray(4).toString('hex'), '00112233445566778899');
      const sn = await exec(d, cdb.inquiry({ evpd: true, page: 0x80, alloc: 64 }), 'in', 64);
      assert.notEqual(sn.data.subarray(4).toString('latin1'), r.data.subarray(4).toString('latin1'));
    });
    it('READ CAPACITY(10)/(16), MODE SENSE WP bit and block descriptor', async () => {
      const c10 = await exec(d, cdb.readCapacity10(), 'in', 8);
      assert.equal(c10.data.toString('hex'), '000007ff00000800');
      const c16 = await exec(d, cdb.readCapacity16(32), 'in', 32);
      assert.equal(c16.data.readBigUInt64BE(0), 2047n);
      const ms = await exec(d, cdb.modeSense6({ page: 0x3f, alloc: 0xfc }), 'in', 0xfc);
      assert.equal(ms.data[2]! & 0x80, 0);
      assert.equal(ms.data[3], 8);
      const ms10 = await exec(d, cdb.modeSense10({ page: 0x08, alloc: 64 }), 'in', 64);
      assert.equal(ms10.status, 0);
      assert.deepEqual(senseOf(await exec(d, cdb.modeSense6({ page: 0x1c, alloc: 0xfc }), 'in', 0xfc)), [5, 0x24, 0]);
    });
    it('WRITE then READ at 10/12/16; out-of-range LBA -> 21/00; bad opcode -> 20/00; bad field -> 24/00', async () => {
      const data = Buffer.alloc(4096, 0xab);
      assert.equal((await exec(d, cdb.write10(10, 2), 'out', 0, data)).status, 0);
      assert.equal((await exec(d, cdb.read12(10, 2), 'in', 4096)).data.equals(data), true);
      assert.equal((await exec(d, cdb.read16(10, 2), 'in', 4096)).data.equals(data), true);
      assert.deepEqual(senseOf(await exec(d, cdb.read10(2047, 2), 'in', 4096)), [5, 0x21, 0]);
      assert.deepEqual(senseOf(await exec(d, cdb.write16(5000, 1), 'out', 0, Buffer.alloc(2048))), [5, 0x21, 0]);
      assert.deepEqual(senseOf(await exec(d, Buffer.from([0xd9, 0, 0, 0, 0, 0]))), [5, 0x20, 0]);
      const rdprotect = cdb.read10(0, 1);
      rdprotect[1] = 0x20;
      assert.deepEqual(senseOf(await exec(d, rdprotect, 'in', 2048)), [5, 0x24, 0]);
    });
    it('a data buffer smaller than the transfer is a host error, like an HBA overrun', async () => {
      const r = await exec(d, cdb.read10(0, 2), 'in', 2048);
      assert.equal(r.hostStatus, HostStatus.ERROR);
    });
    it('write cache: data reaches the image only on SYNCHRONIZE CACHE or FUA; power cut loses the rest', async () => {
      const off = MO_HEADER_SIZE + 100 * 2048;
      await exec(d, cdb.write10(100, 1), 'out', 0, Buffer.alloc(2048, 1));
      assert.equal(readFileSync(moPath)[off], 0, 'not yet durable');
      await exec(d, cdb.synchronizeCache10(), 'none');
      assert.equal(readFileSync(moPath)[off], 1);
      await exec(d, cdb.write10(101, 1, { fua: true }), 'out', 0, Buffer.alloc(2048, 2));
      assert.equal(readFileSync(moPath)[off + 2048], 2, 'FUA writes through');
      await exec(d, cdb.write10(102, 1), 'out', 0, Buffer.alloc(2048, 3));
      assert.equal((await exec(d, cdb.read10(102, 1), 'in', 2048)).data[0], 3, 'reads see the cache');
      d.powerCut();
      assert.equal((await exec(d, cdb.testUnitReady())).hostStatus, HostStatus.NO_CONNECT);
      await d.close();
      assert.equal(readFileSync(moPath)[off + 4096], 0, 'the unsynced write was lost');
    });
    it('power cut after N writes, by fault injection', async () => {
      d.faults.add({ kind: 'power-cut-after-writes', writes: 2 });
      await exec(d, cdb.write10(0, 1), 'out', 0, Buffer.alloc(2048, 9));
      await exec(d, cdb.write10(1, 1), 'out', 0, Buffer.alloc(2048, 9));
      assert.equal(d.isPoweredOff, true);
      assert.equal((await exec(d, cdb.write10(2, 1), 'out', 0, Buffer.alloc(2048, 9))).hostStatus, HostStatus.NO_CONNECT);
    });
    it('write-protected medium -> DATA PROTECT 27/00', async () => {
      await d.close();
      const wp = join(t.dir, 'wp.mo');
      createMoImage(wp, { mediumId: Buffer.from('01', 'hex'), capacityBytes: 1 << 20, writeProtected: true });
      d = await openEmulator(`emu:${wp}`);
      assert.deepEqual(senseOf(await exec(d, cdb.write10(0, 1), 'out', 0, Buffer.alloc(2048))), [7, 0x27, 0]);
      assert.equal((await exec(d, cdb.modeSense6({ page: 0x3f, alloc: 0xfc }), 'in', 0xfc)).data[2]! & 0x80, 0x80);
    });
    it('eject/insert: PREVENT blocks eject (53/02); no medium -> 3A/00; new disc -> UA 28/00 once', async () => {
      await exec(d, cdb.preventAllowMediumRemoval(true));
      assert.deepEqual(senseOf(await exec(d, cdb.startStopUnit({ start: false, loej: true }))), [5, 0x53, 0x02]);
      await exec(d, cdb.preventAllowMediumRemoval(false));
      assert.equal((await exec(d, cdb.startStopUnit({ start: false, loej: true }))).status, 0);
      assert.deepEqual(senseOf(await exec(d, cdb.testUnitReady())), [2, 0x3a, 0]);
      assert.equal((await exec(d, cdb.inquiry({ alloc: 36 }), 'in', 36)).status, 0, 'INQUIRY works without a medium');
      const other = join(t.dir, 'other.mo');
      createMoImage(other, { mediumId: Buffer.from('aa', 'hex'), capacityBytes: 1 << 20 });
      await d.insert(other);
      assert.equal((await exec(d, cdb.inquiry({ alloc: 36 }), 'in', 36)).status, 0, 'INQUIRY does not consume the UA');
      assert.deepEqual(senseOf(await exec(d, cdb.testUnitReady())), [6, 0x28, 0]);
      assert.equal((await exec(d, cdb.testUnitReady())).status, 0, 'reported once');
      const r = await exec(d, cdb.readMediaSerialNumber(16), 'in', 16);
      assert.equal(r.data.subarray(4).toString('hex'), 'aa');
    });
    it('bus reset -> UA 29/02 once; REQUEST SENSE returns the last sense (fixed and descriptor)', async () => {
      d.busReset();
      const rs = await exec(d, cdb.requestSense(252), 'in', 252);
      assert.deepEqual([parseSense(rs.data)!.senseKey, parseSense(rs.data)!.asc], [6, 0x29]);
      assert.equal((await exec(d, cdb.testUnitReady())).status, 0);
      await exec(d, cdb.read10(5000, 1), 'in', 2048);
      const desc = await exec(d, cdb.requestSense(252, true), 'in', 252);
      const s = parseSense(desc.data)!;
      assert.equal(s.descriptorFormat, true);
      assert.equal(s.asc, 0x21);
    });
    it('medium errors by LBA range, reproducible by seed; not-ready spells; command timeouts', async () => {
      d.faults.add({ kind: 'medium-error', op: 'read', from: 50, to: 60 });
      const r = await exec(d, cdb.read10(45, 10), 'in', 20480);
      assert.deepEqual(senseOf(r), [3, 0x11, 0]);
      assert.equal(parseSense(r.sense)!.information, 50n);
      assert.equal(r.residual, 20480 - 5 * 2048, 'blocks before the bad one are transferred');
      d.faults.add({ kind: 'medium-error', op: 'write', from: 0, to: 0 });
      assert.deepEqual(senseOf(await exec(d, cdb.write10(0, 1), 'out', 0, Buffer.alloc(2048))), [3, 0x0c, 0]);
      d.faults.clear();
      d.faults.add({ kind: 'not-ready', commands: 2 });
      assert.deepEqual(senseOf(await exec(d, cdb.testUnitReady())), [2, 0x04, 0x01]);
      assert.deepEqual(senseOf(await exec(d, cdb.testUnitReady())), [2, 0x04, 0x01]);
      assert.equal((await exec(d, cdb.testUnitReady())).status, 0);
      d.faults.add({ kind: 'timeout', opcode: 0x00 });
      const to = await d.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 30 });
      assert.equal(to.hostStatus, HostStatus.TIME_OUT);
      const pattern = async (seed: number) => {
        const e = await openEmulator(`emu:${moPath}`, { seed, faults: [{ kind: 'medium-error', op: 'read', from: 0, to: 2047, probability: 0.3 }] });
        const out: number[] = [];
        for (let i = 0; i < 40; i++) out.push((await exec(e, cdb.read10(i, 1), 'in', 2048)).status);
        await e.close();
        return out.join('');
      };
      assert.equal(await pattern(7), await pattern(7));
      assert.notEqual(await pattern(7), await pattern(8));
    });
    it('VERIFY with BYTCHK compares; GET CONFIGURATION lists feature 0109h; REPORT LUNS; supported opcodes', async () => {
      await exec(d, cdb.write10(3, 1), 'out', 0, Buffer.alloc(2048, 7));
      assert.equal((await exec(d, cdb.verify10(3, 1, { bytchk: 1 }), 'out', 0, Buffer.alloc(2048, 7))).status, 0);
      assert.deepEqual(senseOf(await exec(d, cdb.verify10(3, 1, { bytchk: 1 }), 'out', 0, Buffer.alloc(2048, 8))), [0xe, 0x1d, 0]);
      const conf = await exec(d, cdb.getConfiguration({ rt: 2, startFeature: 0x0109, alloc: 64 }), 'in', 64);
      assert.equal(conf.data.readUInt16BE(8), 0x0109);
      const luns = await exec(d, cdb.reportLuns(64), 'in', 64);
      assert.equal(luns.data.readUInt32BE(0), 8);
      const ops = await exec(d, cdb.reportSupportedOperationCodes({ alloc: 4096 }), 'in', 4096);
      const codes = new Set<number>();
      for (let o = 4; o < ops.data.length; o += 8) codes.add(ops.data[o]!);
      assert.ok(codes.has(0xab) && codes.has(0x28) && codes.has(0x2a));
      assert.deepEqual(senseOf(await exec(d, cdb.readTocPmaAtip({ alloc: 64 }), 'in', 64)), [5, 0x20, 0], 'no READ TOC on an MO drive');
    });
  });

  describe('CD-ROM drive', () => {
    let d: EmulatedDrive;
    beforeEach(async () => { d = await openEmulator(`emu:${cdPath}`); });
    afterEach(() => d.close());
    it('is type 05h with 2048-byte blocks; READ works; WRITE refused with DATA PROTECT 27/00', async () => {
      assert.equal((await exec(d, cdb.inquiry({ alloc: 36 }), 'in', 36)).data[0], 0x05);
      assert.equal((await exec(d, cdb.readCapacity10(), 'in', 8)).data.toString('hex'), '0000003f00000800');
      assert.equal((await exec(d, cdb.read10(7, 1), 'in', 2048)).data.readUInt32BE(0), 7);
      assert.deepEqual(senseOf(await exec(d, cdb.write10(0, 1), 'out', 0, Buffer.alloc(2048))), [7, 0x27, 0]);
    });
    it('READ TOC: one data track and the lead-out; no READ MEDIA SERIAL NUMBER (20/00)', async () => {
      const toc = await exec(d, cdb.readTocPmaAtip({ alloc: 64 }), 'in', 64);
      assert.equal(toc.data.readUInt16BE(0), 18);
      assert.equal(toc.data[6], 1);
      assert.equal(toc.data[14], 0xaa);
      assert.equal(toc.data.readUInt32BE(16), 64);
      assert.deepEqual(senseOf(await exec(d, cdb.readMediaSerialNumber(16), 'in', 16)), [5, 0x20, 0]);
    });
  });

  it('the speed model paces transfers (bytes / MB/s)', async () => {
    const d = await openEmulator(`emu:${moPath}`, { speed: { latencyMs: 0, readMBps: 10, writeMBps: 10 } });
    // 1 MiB at 10 MB/s = ~105 ms modelled; assert only that pacing happened (no upper bound on a busy machine).
    const t0 = performance.now();
    await exec(d, cdb.read10(0, 512), 'in', 512 * 2048);
    assert.ok(performance.now() - t0 >= 90, 'modelled time was waited');
    await d.close();
  });

  it('random and mutated CDBs always settle with a well-formed result (property)', async () => {
    const d = await openEmulator(`emu:${moPath}`);
    const seeds = [cdb.read10(0, 1), cdb.inquiry({ alloc: 36 }), cdb.modeSense10({ page: 0x3f }), cdb.readMediaSerialNumber(8), cdb.write10(0, 1), cdb.reportSupportedOperationCodes({ alloc: 64 })];
    await fc.assert(fc.asyncProperty(
      fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.tuple(fc.constantFrom(...seeds), fc.nat(15), fc.integer({ min: 0, max: 255 })).map(([c, i, v]) => { const m = Uint8Array.from(c); m[i % m.length] = v; return m; })),
      fc.constantFrom<DataDirection>('none', 'in', 'out'), fc.integer({ min: 1, max: 8192 }),
      async (c, dir, len) => {
        const r = await d.execute({ cdb: c, direction: dir, ...(dir === 'none' ? {} : { data: Buffer.alloc(len) }), timeoutMs: 1000 });
        assert.ok(r.hostStatus === 0 || r.hostStatus === HostStatus.ERROR || r.hostStatus === HostStatus.NO_CONNECT);
        if (r.status === 2) assert.ok(parseSense(r.sense), 'CHECK CONDITION carries valid sense');
        else assert.equal(r.status, 0);
        assert.ok(r.residual >= 0);
      }), { numRuns: 1500 });
    await d.close();
  });
  describe('per-command fast path (issue 12): same answers', () => {
    let d: EmulatedDrive;
    beforeEach(async () => { d = await openEmulator(`emu:${moPath}`, { maxTransferBytes: 2 << 20 }); });
    afterEach(async () => { await d.close(); });
    it('decodes READ(6)/(12)/(16) LBAs and lengths by hand as before: 21-bit READ(6), 64-bit READ(16) out of range', async () => {
      const data = Buffer.alloc(3 * 2048);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
      assert.equal((await exec(d, cdb.write10(5, 3), 'out', 0, data)).status, 0);
      // READ(6): LBA in bytes 1-3, the top 3 bits of byte 1 ignored (21-bit LBA).
      const r6 = await exec(d, Buffer.from([0x08, 0xe0, 0x00, 0x05, 3, 0]), 'in', 3 * 2048);
      assert.equal(r6.status, 0);
      assert.ok(r6.data.equals(data));
      const r12 = await exec(d, Buffer.from([0xa8, 0, 0, 0, 0, 6, 0, 0, 0, 2, 0, 0]), 'in', 2 * 2048);
      assert.ok(r12.data.equals(data.subarray(2048)));
      const r16 = await exec(d, Buffer.from([0x88, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0]), 'in', 2048);
      assert.ok(r16.data.equals(data.subarray(4096)));
      for (const hi of [[0, 0, 0, 1], [0, 0x1f, 0xff, 0xff], [0, 0x20, 0, 0], [0xff, 0xff, 0xff, 0xff]]) {
        const c = Buffer.from([0x88, 0, ...hi, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert.deepEqual(senseOf(await exec(d, c, 'in', 2048)), [5, 0x21, 0], `LBA high word ${Buffer.from(hi).toString('hex')}`);
      }
    });
    it('takes a CDB and a data buffer that are plain Uint8Arrays, not Buffers', async () => {
      const c = Uint8Array.from(cdb.read10(5, 1));
      const buf = new Uint8Array(2048);
      const r = await d.execute({ cdb: c, direction: 'in', data: buf as Buffer, timeoutMs: 1000 });
      assert.equal(r.status, 0);
      assert.equal(r.residual, 0);
    });
    it('reads see the write cache on the synchronous path (up to 1 MiB) and the asynchronous one (larger)', async () => {
      const one = Buffer.alloc(2048, 0x5c);
      await exec(d, cdb.write10(3, 1), 'out', 0, one);
      await exec(d, cdb.write10(700, 1), 'out', 0, one);
      const small = await exec(d, cdb.read10(0, 8), 'in', 8 * 2048);
      assert.ok(small.data.subarray(3 * 2048, 4 * 2048).equals(one));
      assert.equal(small.data[0], 0);
      const big = await exec(d, cdb.read10(0, 1024), 'in', 1024 * 2048); // 2 MiB: past the synchronous read
      assert.equal(big.status, 0);
      assert.ok(big.data.subarray(3 * 2048, 4 * 2048).equals(one));
      assert.ok(big.data.subarray(700 * 2048, 701 * 2048).equals(one));
      assert.equal(big.data[2 * 2048], 0);
    });
    it('a GOOD answer carries an empty sense; faults expire by count and time without a command changing', async () => {
      const r = await exec(d, cdb.testUnitReady());
      assert.equal(r.status, 0);
      assert.equal(r.sense.length, 0);
      d.faults.add({ kind: 'not-ready', ms: 40 });
      assert.deepEqual(senseOf(await exec(d, cdb.testUnitReady())), [2, 0x04, 0x01]);
      await new Promise((res) => setTimeout(res, 60));
      assert.equal((await exec(d, cdb.testUnitReady())).status, 0);
      assert.equal(d.faults.count, 0, 'the spent spell is dropped');
      d.faults.add({ kind: 'short-read', residual: 100, count: 1 });
      const short = await d.execute({ cdb: cdb.read10(0, 1), direction: 'in', data: Buffer.alloc(2048), timeoutMs: 1000 });
      assert.equal(short.residual, 100);
      const full = await d.execute({ cdb: cdb.read10(0, 1), direction: 'in', data: Buffer.alloc(2048), timeoutMs: 1000 });
      assert.equal(full.residual, 0);
    });
  });
});
