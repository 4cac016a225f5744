import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sinon from 'sinon';
import { createMoImage, openEmulator } from '../lib/emulator/index.js';
import { RefusedError } from '../lib/errors.js';
import * as cdb from '../lib/scsi/cdb.js';
import { BufferPool } from '../lib/scsi/buffer-pool.js';
import { ScsiDevice, MediumChangedError } from '../lib/scsi/device.js';
import { listDevices } from '../lib/scsi/list-devices.js';
import { NoMediumIdError, probeMediumId } from '../lib/scsi/medium-id.js';
import { openDevice } from '../lib/drives/open.js';
import { loadQuirks } from '../lib/scsi/quirks.js';
import { withRetry, type RetryPolicy } from '../lib/scsi/retry.js';
import { ScsiError, TransportError } from '../lib/scsi/scsi-errors.js';
import { buildFixedSense } from '../lib/scsi/sense.js';
import type { ScsiCommand, ScsiResult, Transport } from '../lib/scsi/transport.js';
import { tempDir } from './helpers/fixtures.js';

/** Wraps a transport to shrink its max transfer and record every CDB. */
function limited(inner: Transport, maxTransferBytes: number): Transport & { execute: sinon.SinonSpy } {
  const t = { path: inner.path, limits: { maxTransferBytes, alignment: 1 }, execute: sinon.spy((c: ScsiCommand) => inner.execute(c)), close: () => inner.close() };
  return t as Transport & { execute: sinon.SinonSpy };
}

const good = (over: Partial<ScsiResult> = {}): ScsiResult => ({ status: 0, hostStatus: 0, driverStatus: 0, sense: Buffer.alloc(0), residual: 0, durationUs: 1, ...over });
const check = (k: number, asc: number, ascq: number): ScsiResult => good({ status: 2, sense: buildFixedSense(k, asc, ascq) });
const noSleep: Partial<RetryPolicy> = { sleep: async () => undefined };

describe('device API', () => {
  let t: ReturnType<typeof tempDir>;
  let mo: string;
  beforeEach(() => {
    t = tempDir();
    mo = join(t.dir, 'disc.mo');
    createMoImage(mo, { mediumId: Buffer.from('cafebabe00000001', 'hex'), capacityBytes: 72 << 20, blockSize: 2048 });
  });
  afterEach(() => t.cleanup());

  it('inquiry, capacity, write protect, medium ID (not the unit serial) on the emulator', async () => {
    const dev = await openDevice(`emu:${mo}`);
    const inq = await dev.inquiry();
    assert.equal(inq.peripheralType, 7);
    assert.deepEqual(await dev.capacity(), { blockSize: 2048, blockCount: 36864, bytes: 72 << 20 });
    assert.equal(await dev.isWriteProtected(), false);
    const id = await dev.mediumId();
    assert.equal(id.id.toString('hex'), 'cafebabe00000001');
    assert.equal(id.method, 'read-media-serial-number');
    assert.equal(id.standIn, false);
    const serial = await dev.unitSerial();
    assert.ok(serial);
    assert.notEqual(Buffer.from(serial!, 'latin1').toString('hex'), id.id.toString('hex'));
    await dev.close();
  });

  it('streams a whole 64 MiB image out and back with 4 commands in flight', async function () {
    this.timeout(120_000);
    const dev = await openDevice(`emu:${mo}`);
    const blocks = (64 << 20) / 2048;
    const h1 = createHash('sha256');
    let seed = randomBytes(1 << 20);
    async function* source() {
      for (let i = 0; i < 64; i++) {
        seed = Buffer.from(seed); // a fresh buffer each time: the writer may still hold the last one
        seed.writeUInt32BE(i, 0);
        h1.update(seed);
        yield seed;
      }
    }
    const written = await dev.writeStream(0, source(), { inFlight: 4 });
    assert.equal(written, blocks);
    await dev.sync();
    const h2 = createHash('sha256');
    let n = 0;
    for await (const b of dev.readStream(0, blocks, { inFlight: 4 })) { h2.update(b); n += b.length; }
    assert.equal(n, 64 << 20);
    assert.equal(h2.digest('hex'), h1.digest('hex'));
    await dev.close();
  });

  it('a shared BufferPool: read buffers written as they are come back once on the disc, and the copy is exact', async function () {
    this.timeout(60_000);
    const src = await openDevice(`emu:${mo}`);
    const other = join(t.dir, 'other.mo');
    createMoImage(other, { mediumId: Buffer.from('cafebabe00000002', 'hex'), capacityBytes: 72 << 20, blockSize: 2048 });
    const dst = await openDevice(`emu:${other}`);
    const blocks = (24 << 20) / 2048;
    const data = randomBytes(24 << 20);
    await src.write(0, data);
    const io = { inFlight: 4, chunkBytes: 1 << 20 };
    const pool = new BufferPool(await src.streamChunkBytes(io), 10);
    assert.equal(pool.size, await dst.streamChunkBytes(io));
    // Pass every read buffer on as it is (as scheme A does), hashing it on the way.
    const seen = createHash('sha256');
    async function* passOn() { for await (const b of src.readStream(0, blocks, { ...io, pool })) { seen.update(b); yield b; } }
    assert.equal(await dst.writeStream(0, passOn(), { ...io, pool }), blocks);
    await dst.sync();
    // 24 commands, but only as many buffers as were ever in flight at once (reads ahead + writes pending).
    assert.ok(pool.created <= 2 * io.inFlight + 2, `the pool made ${pool.created} buffers for 24 commands`);
    assert.ok(pool.idle > 0);
    const back = await dst.read(0, blocks);
    assert.ok(back.equals(data), 'what the target holds is what the source held');
    assert.equal(seen.digest('hex'), createHash('sha256').update(data).digest('hex'));
    await src.close();
    await dst.close();
  });

  it('BufferPool takes back only its own whole buffers, and keeps at most `keep`', () => {
    const pool = new BufferPool(4096, 2);
    const a = pool.take();
    const b = pool.take();
    const c = pool.take();
    assert.equal(pool.created, 3);
    pool.give(Buffer.alloc(4096)); // not the pool's
    pool.give(a.subarray(0, 2048)); // a part of one: another view of it may still be in use
    assert.equal(pool.idle, 0);
    pool.give(a);
    pool.give(a); // twice: ignored the second time
    pool.give(b);
    pool.give(c); // over `keep`: left to the garbage collector
    assert.equal(pool.idle, 2);
    const d = pool.take();
    assert.ok(d === b || d === a);
    assert.equal(pool.created, 3);
    assert.throws(() => new BufferPool(0), RangeError);
  });

  it('splits reads and writes by the transport max transfer', async () => {
    const inner = await openEmulator(`emu:${mo}`);
    const tr = limited(inner, 8192);
    const dev = new ScsiDevice('x', tr);
    const data = randomBytes(10 * 2048);
    await dev.write(100, data);
    const writes = tr.execute.getCalls().filter((c) => (c.args[0] as ScsiCommand).cdb[0] === 0x2a).map((c) => (c.args[0] as ScsiCommand).data!.length);
    assert.deepEqual(writes, [8192, 8192, 4096]);
    assert.ok((await dev.read(100, 10)).equals(data));
    const reads = tr.execute.getCalls().filter((c) => (c.args[0] as ScsiCommand).cdb[0] === 0x28);
    assert.equal(reads.length, 3);
    await dev.close();
  });

  it('switches to READ CAPACITY(16) when (10) saturates', async () => {
    const execute = sinon.stub<[ScsiCommand], Promise<ScsiResult>>().callsFake(async (c) => {
      if (c.cdb[0] === 0x25) { c.data!.set(Buffer.from('ffffffff00000200', 'hex')); return good(); }
      if (c.cdb[0] === 0x9e) { const b = Buffer.alloc(32); b.writeBigUInt64BE(0x2_0000_0000n, 0); b.writeUInt32BE(512, 8); c.data!.set(b); return good({ residual: c.data!.length - 32 }); }
      return good();
    });
    const dev = new ScsiDevice('fake', { path: 'fake', limits: { maxTransferBytes: 65536, alignment: 1 }, execute, close: async () => undefined });
    const cap = await dev.capacity();
    assert.equal(cap.blockCount, 0x2_0000_0001);
    assert.deepEqual(execute.getCalls().map((c) => c.args[0].cdb[0]), [0x25, 0x9e]);
    // LBAs past 2^32 use READ(16)
    await dev.read(0x1_0000_0000, 1);
    assert.equal(execute.lastCall.args[0].cdb[0], 0x88);
  });

  describe('retry policy', () => {
    it('retries UNIT ATTENTION once and reports it; a second one surfaces', async () => {
      const seen: ScsiError[] = [];
      const attempt = sinon.stub().onFirstCall().rejects(new ScsiError('d', cdb.testUnitReady(), 2, undefined)).resolves('ok');
      const ua = () => new ScsiError('d', cdb.testUnitReady(), 2, { responseCode: 0x70, descriptorFormat: false, deferred: false, senseKey: 6, asc: 0x28, ascq: 0, filemark: false, eom: false, ili: false, descriptors: [], truncated: false, raw: Buffer.alloc(0) });
      attempt.onFirstCall().rejects(ua());
      assert.equal(await withRetry(attempt, { maxBecomingReadyMs: 10, initialBackoffMs: 1, maxBackoffMs: 1, sleep: async () => undefined }, (e) => seen.push(e)), 'ok');
      assert.equal(seen.length, 1);
      const twice = sinon.stub().rejects(ua());
      await assert.rejects(withRetry(twice, { maxBecomingReadyMs: 10, initialBackoffMs: 1, maxBackoffMs: 1, sleep: async () => undefined }, () => undefined), ScsiError);
      assert.equal(twice.callCount, 2);
    });
    it('waits out "becoming ready" with bounded exponential backoff', async () => {
      const execute = sinon.stub<[ScsiCommand], Promise<ScsiResult>>();
      execute.onCall(0).resolves(check(2, 4, 1));
      execute.onCall(1).resolves(check(2, 4, 1));
      execute.onCall(2).resolves(good());
      const sleeps: number[] = [];
      const dev = new ScsiDevice('fake', { path: 'fake', limits: { maxTransferBytes: 65536, alignment: 1 }, execute, close: async () => undefined },
        { retry: { initialBackoffMs: 100, maxBackoffMs: 150, maxBecomingReadyMs: 1000, sleep: async (ms) => { sleeps.push(ms); } } });
      await dev.testUnitReady();
      assert.deepEqual(sleeps, [100, 150]);
      execute.reset();
      execute.resolves(check(2, 4, 1));
      sleeps.length = 0;
      await assert.rejects(dev.testUnitReady(), (e: ScsiError) => e.asc === 4);
      assert.ok(sleeps.reduce((a, b) => a + b, 0) <= 1000);
    });
    it('never retries a MEDIUM ERROR on write; a timeout is a TransportError', async () => {
      const execute = sinon.stub<[ScsiCommand], Promise<ScsiResult>>().callsFake(async (c) => {
        if (c.cdb[0] === 0x25) { c.data!.set(Buffer.from('000000ff00000800', 'hex')); return good(); }
        if (c.cdb[0] === 0x2a) return check(3, 0x0c, 0);
        return good({ hostStatus: 0x03 });
      });
      const dev = new ScsiDevice('fake', { path: 'fake', limits: { maxTransferBytes: 65536, alignment: 1 }, execute, close: async () => undefined }, { retry: noSleep });
      await assert.rejects(dev.write(0, Buffer.alloc(2048)), (e: ScsiError) => e.senseKey === 3 && /WRITE ERROR \(0C\/00\)/.test(e.message));
      assert.equal(execute.getCalls().filter((c) => c.args[0].cdb[0] === 0x2a).length, 1);
      await assert.rejects(dev.testUnitReady(), (e: TransportError) => e.timedOut && e.code === 'E_TIMEOUT');
    });
    it('writeStream reports the failing WRITE of the lowest LBA, whichever of those in flight failed first', async () => {
      // 4 WRITEs of 16 blocks in flight; the disc fails from LBA 16 on. The one at 32 answers at once, the one at 16
      // later (a kernel or an initiator may complete them out of order): the error is still the one at 16.
      const execute = sinon.stub<[ScsiCommand], Promise<ScsiResult>>().callsFake(async (c) => {
        if (c.cdb[0] === 0x25) { c.data!.set(Buffer.from('000000ff00000800', 'hex')); return good(); }
        if (c.cdb[0] !== 0x2a) return good();
        const lba = Buffer.from(c.cdb).readUInt32BE(2);
        if (lba < 16) return good();
        if (lba === 16) await new Promise((r) => setTimeout(r, 20));
        return good({ status: 2, sense: buildFixedSense(3, 0x0c, 0, { information: lba }) });
      });
      const dev = new ScsiDevice('fake', { path: 'fake', limits: { maxTransferBytes: 16 * 2048, alignment: 1 }, execute, close: async () => undefined }, { retry: noSleep });
      async function* chunks() { for (let i = 0; i < 8; i++) yield Buffer.alloc(16 * 2048, i); }
      await assert.rejects(dev.writeStream(0, chunks(), { inFlight: 4 }), (e: ScsiError) => e.senseKey === 3 && Number(e.sense?.information) === 16);
      const lbas = execute.getCalls().filter((c) => c.args[0].cdb[0] === 0x2a).map((c) => Buffer.from(c.args[0].cdb).readUInt32BE(2));
      assert.deepEqual(lbas.slice(0, 3), [0, 16, 32], 'the WRITEs went out in order');
    });
    it('runBatch hands the commands to the transport in one executeBatch call, then checks and retries each as run() does; readStream opens with one batch', async () => {
      const em = await openEmulator(`emu:${mo}`);
      await new ScsiDevice(`emu:${mo}`, em).write(0, Buffer.alloc(8 * 2048, 0x5c));
      const batches: number[] = [];
      let attentionFor = 2; // the third command of the first batch meets a UNIT ATTENTION once
      const tr: Transport = {
        path: em.path, limits: { maxTransferBytes: 65536, alignment: 1 },
        execute: (c) => em.execute(c),
        executeBatch: (cmds) => {
          batches.push(cmds.length);
          return cmds.map((c, i) => (i === attentionFor ? (attentionFor = -1, Promise.resolve(check(6, 0x29, 0))) : em.execute(c)));
        },
        close: () => em.close(),
      };
      const dev = new ScsiDevice(`emu:${mo}`, tr, { retry: noSleep });
      await dev.capacity();
      const bufs = [0, 1, 2, 3].map(() => Buffer.alloc(2048));
      const answers = await Promise.all(dev.runBatch(bufs.map((data, i) => ({ cdb: cdb.read10(i, 1), direction: 'in', data, timeoutMs: 1000 }))));
      assert.deepEqual(batches, [4]);
      assert.ok(answers.every((r) => r.status === 0));
      assert.ok(bufs.every((b) => b.equals(Buffer.alloc(2048, 0x5c))), 'the command that met the UNIT ATTENTION was sent again');
      assert.equal(dev.unitAttentionCount, 1);
      // A CHECK CONDITION that is not retried surfaces as that command's ScsiError alone.
      const [ok, bad] = await Promise.allSettled(dev.runBatch([{ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 1000 }, { cdb: cdb.read10(1 << 30, 1), direction: 'in', data: Buffer.alloc(2048), timeoutMs: 1000 }]));
      assert.equal(ok.status, 'fulfilled');
      assert.ok(bad.status === 'rejected' && bad.reason instanceof ScsiError && bad.reason.asc === 0x21);
      batches.length = 0;
      const chunks: Buffer[] = [];
      for await (const c of dev.readStream(0, 8, { chunkBytes: 2048, inFlight: 4 })) chunks.push(Buffer.from(c));
      assert.deepEqual(batches, [4], 'the first 4 READs in one batch, the next 4 one by one');
      assert.ok(Buffer.concat(chunks).equals(Buffer.alloc(8 * 2048, 0x5c)));
      await dev.close();
    });
    it('with the medium guard on, a medium change fails the command instead of retrying it', async () => {
      const em = await openEmulator(`emu:${mo}`);
      const dev = new ScsiDevice(`emu:${mo}`, em);
      await dev.testUnitReady();
      dev.setMediumGuard(true);
      const other = join(t.dir, 'other.mo');
      createMoImage(other, { mediumId: Buffer.from('01', 'hex'), capacityBytes: 1 << 20 });
      await em.insert(other);
      await assert.rejects(dev.write(0, Buffer.alloc(2048)), MediumChangedError);
      assert.equal(em.stats.writes, 0, 'nothing was written to the new disc');
      assert.equal(dev.unitAttentionCount, 1);
      await dev.close();
    });
  });

  describe('medium ID methods and quirks', () => {
    it('a drive without READ MEDIA SERIAL NUMBER gives E_NO_MEDIUM_ID with the probe hint', async () => {
      const iso = join(t.dir, 'cd.iso');
      writeFileSync(iso, Buffer.alloc(2048 * 20));
      const dev = await openDevice(`emu:${iso}`);
      await assert.rejects(dev.mediumId(), (e: NoMediumIdError) => e.code === 'E_NO_MEDIUM_ID' && /READ MEDIA SERIAL NUMBER/.test(e.message) && /probe-id/.test(e.hint!));
      await dev.close();
    });
    it('a quirk maps a drive model to the unit-serial stand-in, labelled as such', async () => {
      const em = await openEmulator(`emu:${mo}`, { vendor: 'QEMU', product: 'QEMU HARDDISK', driveSerial: 'MO-TEST-0001' });
      const dev = new ScsiDevice('q', em, { quirks: loadQuirks() });
      const id = await dev.mediumId();
      assert.equal(id.id.toString('latin1'), 'MO-TEST-0001');
      assert.equal(id.standIn, true);
      assert.match(id.method, /LAB STAND-IN/);
      await dev.close();
    });
    it('vendor VPD, READ DISC STRUCTURE and vendor-CDB methods cut the ID out of what the drive answers', async () => {
      const execute = sinon.stub<[ScsiCommand], Promise<ScsiResult>>().callsFake(async (c) => {
        const op = c.cdb[0];
        let answer: Buffer;
        if (op === 0x12 && c.cdb[1] === 1 && c.cdb[2] === 0xc1) answer = Buffer.from('07c10008' + 'a1a2a3a4a5a6a7a8', 'hex');
        else if (op === 0xad && c.cdb[7] === 0x0f) answer = Buffer.from('000a0000' + 'b1b2b3b4b5b6b7b8', 'hex');
        else if (op === 0xc7) answer = Buffer.from('0000c1c2c3c4c5c6', 'hex');
        else if (op === 0x12) { answer = Buffer.alloc(36); answer[0] = 7; answer.write('ACME    MO-9', 8, 'latin1'); }
        else return check(5, 0x20, 0);
        answer.copy(c.data!);
        return good({ residual: c.data!.length - Math.min(answer.length, c.data!.length) });
      });
      const tr = { path: 'fake', limits: { maxTransferBytes: 65536, alignment: 1 }, execute, close: async () => undefined };
      const { readMediumId } = await import('../lib/scsi/medium-id.js');
      const dev = new ScsiDevice('fake', tr);
      assert.equal((await readMediumId(dev, { type: 'vpd', page: 0xc1, offset: 2, length: 4 })).id.toString('hex'), 'a3a4a5a6');
      assert.equal((await readMediumId(dev, { type: 'read-disc-structure', format: 0x0f })).id.toString('hex'), 'b1b2b3b4b5b6b7b8');
      assert.equal((await readMediumId(dev, { type: 'vendor-cdb', cdb: 'c7 00 00 00 00 00', alloc: 8, offset: 2 })).id.toString('hex'), 'c1c2c3c4c5c6');
      const quirked = new ScsiDevice('fake', tr, { quirks: [{ vendor: 'ACME', product: 'MO-9', method: { type: 'vpd', page: 0xc1 } }] });
      assert.equal((await quirked.mediumId()).method, 'vpd:0xc1');
    });

    it('quirks files are validated and take precedence', () => {
      const f = join(t.dir, 'q.json');
      writeFileSync(f, JSON.stringify([{ vendor: 'ACME', product: 'MO-9', method: { type: 'vpd', page: 0xc1 } }]));
      assert.equal(loadQuirks(f)[0]!.vendor, 'ACME');
      writeFileSync(f, JSON.stringify([{ vendor: 'ACME', product: 'MO-9', method: { type: 'teleport' } }]));
      assert.throws(() => loadQuirks(f), /unknown method type/);
    });
    it('probe-id reports every method and a quirk entry ready to paste', async () => {
      const dev = await openDevice(`emu:${mo}`);
      const r = await probeMediumId(dev, await dev.inquiry());
      assert.ok(r.attempts.find((a) => a.method.startsWith('READ MEDIA SERIAL NUMBER'))!.ok);
      assert.ok(r.attempts.find((a) => a.method.startsWith('GET CONFIGURATION'))!.ok);
      assert.deepEqual(r.quirk!.method, { type: 'read-media-serial-number' });
      await dev.close();
    });
  });

  it('lists SCSI generic devices from a sysfs tree', () => {
    const sys = join(t.dir, 'sys');
    const mk = (p: string, v: string) => { mkdirSync(join(sys, p, '..'), { recursive: true }); writeFileSync(join(sys, p), v + '\n'); };
    mk('class/scsi_generic/sg0/device/type', '5');
    mk('class/scsi_generic/sg0/device/vendor', 'QEMU');
    mk('class/scsi_generic/sg0/device/model', 'QEMU CD-ROM');
    mk('class/scsi_generic/sg0/device/rev', '2.5+');
    mkdirSync(join(sys, 'class/scsi_generic/sg0/device/block/sr0'), { recursive: true });
    mk('class/scsi_generic/sg1/device/type', '7');
    mk('class/scsi_generic/sg1/device/vendor', 'FUJITSU');
    mk('class/scsi_generic/sg1/device/model', 'MCJ3230AP');
    mk('class/scsi_generic/sg1/device/rev', '0040');
    const list = listDevices(sys, '/dev');
    assert.deepEqual(list.map((d) => [d.sg, d.block, d.typeName, d.vendor]), [
      ['/dev/sg0', '/dev/sr0', 'CD/DVD device', 'QEMU'], ['/dev/sg1', undefined, 'optical memory device', 'FUJITSU']]);
  });

  it('refuses an unknown device spec with the accepted forms', async () => {
    await assert.rejects(openDevice('floppy:a'), (e: RefusedError) => /emu:IMAGE/.test(e.hint ?? ''));
  });
});
