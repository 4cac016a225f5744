import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sinon from 'sinon';
import { executeUnbound, loadNativeBinding, type NativeBinding } from '../lib/scsi/native-binding.js';
import { hintForErrno, openNative } from '../lib/scsi/native-transport.js';
import { TransportError } from '../lib/scsi/scsi-errors.js';
import * as cdb from '../lib/scsi/cdb.js';
import { tempDir } from './helpers/fixtures.js';

function fakeBinding(): NativeBinding & { [k: string]: sinon.SinonStub | unknown } {
  return {
    open: sinon.stub().returns(7),
    execute: sinon.stub().resolves({ status: 0, hostStatus: 0, driverStatus: 0, sense: Buffer.alloc(0), residual: 0, durationUs: 12 }),
    close: sinon.stub(),
    limits: sinon.stub().returns({ maxTransferBytes: 524288, alignment: 512, reservedSize: 524288, maxSectors: 1024 }),
    openHandles: sinon.stub().returns(0),
    nop: sinon.stub(),
    nopAsync: sinon.stub().resolves(),
    platform: 'linux',
  };
}
function errno(code: string, n: number): Error {
  return Object.assign(new Error(`ioctl(SG_IO) x: ${code}`), { code, errno: n, syscall: 'ioctl(SG_IO)' });
}

describe('NativeTransport marshalling (fake binding)', () => {
  it('opens read-write, reads the OS limits, and passes the very same buffer to the addon', async () => {
    const b = fakeBinding();
    const tr = await openNative('/dev/sg9', { binding: b, sysRoot: '/nonexistent' });
    assert.deepEqual((b.open as sinon.SinonStub).firstCall.args, ['/dev/sg9', { write: true }]);
    assert.deepEqual(tr.limits, { maxTransferBytes: 524288, alignment: 512 });
    const data = Buffer.alloc(2048);
    const c = cdb.read10(5, 1);
    const r = await tr.execute({ cdb: c, direction: 'in', data, timeoutMs: 1500 });
    assert.equal(r.durationUs, 12);
    const args = (b.execute as sinon.SinonStub).firstCall.args;
    assert.equal(args[0], 7);
    assert.ok(Buffer.from(args[1]).equals(c));
    assert.equal(args[2], 1);
    assert.equal(args[3], data, 'same Buffer object: no copy');
    assert.equal(args[4], 1500);
    await tr.execute({ cdb: cdb.write10(0, 1), direction: 'out', data, timeoutMs: 10 });
    assert.equal((b.execute as sinon.SinonStub).secondCall.args[2], 2);
    await tr.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 10 });
    assert.equal((b.execute as sinon.SinonStub).thirdCall.args[3], undefined);
    await tr.close();
    assert.equal((b.close as sinon.SinonStub).callCount, 1);
  });
  it('rejects bad arguments with TypeError before any addon call', async () => {
    const b = fakeBinding();
    const tr = await openNative('/dev/sg9', { binding: b, sysRoot: '/nonexistent' });
    const bad = [
      { cdb: Buffer.alloc(0), direction: 'none', timeoutMs: 10 },
      { cdb: Buffer.alloc(17), direction: 'none', timeoutMs: 10 },
      { cdb: cdb.read10(0, 1), direction: 'in', timeoutMs: 10 },
      { cdb: cdb.testUnitReady(), direction: 'none', data: Buffer.alloc(4), timeoutMs: 10 },
      { cdb: cdb.testUnitReady(), direction: 'sideways', timeoutMs: 10 },
      { cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: -1 },
      { cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: Number.NaN },
      { cdb: cdb.read10(0, 1), direction: 'in', data: Buffer.alloc(1 << 20), timeoutMs: 10 },
    ];
    for (const c of bad) await assert.rejects(tr.execute(c as never), TypeError, JSON.stringify(c));
    assert.equal((b.execute as sinon.SinonStub).callCount, 0);
  });
  it('maps errno failures to TransportError with a hint naming the right node', async () => {
    const b = fakeBinding();
    (b.open as sinon.SinonStub).throws(errno('EACCES', 13));
    await assert.rejects(openNative('/dev/sg3', { binding: b }), (e: TransportError) => e instanceof TransportError && e.code === 'EACCES' && /group/.test(e.hint!));
    const b2 = fakeBinding();
    (b2.execute as sinon.SinonStub).rejects(errno('EPERM', 1));
    const tr = await openNative('/dev/sdb', { binding: b2, sysRoot: '/nonexistent' });
    await assert.rejects(tr.execute({ cdb: cdb.readMediaSerialNumber(4), direction: 'in', data: Buffer.alloc(4), timeoutMs: 10 }),
      (e: TransportError) => e.code === 'EPERM' && /READ MEDIA SERIAL NUMBER/.test(e.hint!) && /\/dev\/sgN/.test(e.hint!));
    assert.match(hintForErrno('ENOMEDIUM', '/dev/sdc', 'open')!, /\/dev\/sgN/);
    assert.match(hintForErrno('ENODEV', '/dev/sg3', 'execute')!, /went away/);
    assert.match(hintForErrno('ECANCELED', '/dev/sg3', 'execute')!, /closed while the command was in flight/);
    assert.match(hintForErrno('ENOTTY', '/tmp/x', 'open')!, /not a SCSI device/);
  });
});

describe('NativeTransport queue mode and safety timer (fake binding)', () => {
  it('reports the addon\'s mode and fallback reason; async: false and MOCOPY_SG_ASYNC=0 ask the addon for the worker mode', async () => {
    const b = fakeBinding();
    b.handleInfo = sinon.stub().returns({ mode: 'sg-async', inFlight: 0 });
    const tr = await openNative('/dev/sg9', { binding: b, sysRoot: '/nonexistent' });
    assert.equal(tr.mode, 'sg-async');
    assert.equal(tr.fallbackReason, undefined);
    const w = fakeBinding();
    w.handleInfo = sinon.stub().returns({ mode: 'worker', fallbackReason: 'a block node', inFlight: 0 });
    const tw = await openNative('/dev/sdb', { binding: w, sysRoot: '/nonexistent', async: false });
    assert.deepEqual((w.open as sinon.SinonStub).firstCall.args, ['/dev/sdb', { write: true, async: false }]);
    assert.equal(tw.mode, 'worker');
    assert.equal(tw.fallbackReason, 'a block node');
    const old = fakeBinding(); // an addon without handleInfo: the worker mode, said so
    assert.match((await openNative('/dev/sg1', { binding: old, sysRoot: '/nonexistent' })).fallbackReason!, /no queue mode/);
    const saved = process.env.MOCOPY_SG_ASYNC;
    process.env.MOCOPY_SG_ASYNC = '0';
    try {
      const e = fakeBinding();
      await openNative('/dev/sg2', { binding: e, sysRoot: '/nonexistent' });
      assert.deepEqual((e.open as sinon.SinonStub).firstCall.args[1], { write: true, async: false });
    } finally {
      if (saved === undefined) delete process.env.MOCOPY_SG_ASYNC; else process.env.MOCOPY_SG_ASYNC = saved;
    }
  });
  it('a command the kernel never answers rejects with TransportError ETIMEDOUT after its timeout + grace, and the handle is closed', async () => {
    const b = fakeBinding();
    (b.execute as sinon.SinonStub).returns(new Promise(() => undefined));
    const tr = await openNative('/dev/sg9', { binding: b, sysRoot: '/nonexistent', safetyGraceMs: 40 });
    const t0 = Date.now();
    await assert.rejects(tr.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 20 }),
      (e: TransportError) => e instanceof TransportError && e.code === 'ETIMEDOUT' && !e.timedOut && /no answer from the kernel within 20 ms \+ 40 ms/.test(e.message));
    assert.ok(Date.now() - t0 >= 55);
    assert.equal((b.close as sinon.SinonStub).callCount, 1, 'the handle was closed (the kernel may still hold the buffer)');
    await assert.rejects(tr.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 20 }), (e: TransportError) => e.code === 'ETIMEDOUT' && /refused/.test(e.message));
    await tr.close();
    assert.equal((b.close as sinon.SinonStub).callCount, 1);
  });
  it('sg-async: when the addon says a command is past its timeout + grace, the handle is closed and every outstanding command rejects with ETIMEDOUT', async () => {
    const b = fakeBinding();
    const rejects: Array<(e: Error) => void> = [];
    (b.execute as sinon.SinonStub).callsFake(() => new Promise((_, reject) => rejects.push(reject)));
    (b.close as sinon.SinonStub).callsFake(() => { for (const r of rejects) r(Object.assign(new Error('closed'), { code: 'ECANCELED' })); });
    let overdueMs = -1;
    b.handleInfo = sinon.stub().callsFake(() => ({ mode: 'sg-async', inFlight: rejects.length, overdueMs }));
    const tr = await openNative('/dev/sg9', { binding: b, sysRoot: '/nonexistent', safetyGraceMs: 40 });
    assert.equal(tr.mode, 'sg-async');
    const ps = [0, 1].map(() => tr.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 20 }).then(() => 'ok', (e: TransportError) => e.code));
    await new Promise((r) => setTimeout(r, 60));
    assert.equal((b.close as sinon.SinonStub).callCount, 0, 'not overdue yet: nothing happens');
    overdueMs = 41;
    assert.deepEqual(await Promise.all(ps), ['ETIMEDOUT', 'ETIMEDOUT']);
    assert.equal((b.close as sinon.SinonStub).callCount, 1);
    await assert.rejects(tr.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 20 }), (e: TransportError) => e.code === 'ETIMEDOUT');
  });
  it('sg-async: an answer the addon had inside execute() comes from the bound result slab, sense copied out, and a failure thrown there is a TransportError', async () => {
    const b = fakeBinding();
    b.handleInfo = sinon.stub().returns({ mode: 'sg-async', inFlight: 0 });
    let meta: Float64Array | undefined;
    let sense: Uint8Array | undefined;
    b.bindResultSlab = sinon.stub().callsFake((h: number, m: Float64Array, s: Uint8Array) => { assert.equal(h, 7); meta = m; sense = s; return true; });
    const answers: Array<() => Promise<unknown> | 0> = [
      () => { meta!.set([0, 0, 0, 0, 512, 33]); return 0; },
      () => { meta!.set([2, 0, 0, 18, 0, 40]); sense!.set([0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x28, 0]); return 0; },
      () => { throw errno('ENODEV', 19); },
      () => Promise.resolve({ status: 0, hostStatus: 0, driverStatus: 0, sense: Buffer.alloc(0), residual: 0, durationUs: 7 }),
    ];
    (b.execute as sinon.SinonStub).callsFake(() => answers.shift()!());
    const tr = await openNative('/dev/sg9', { binding: b, sysRoot: '/nonexistent' });
    assert.equal((b.bindResultSlab as sinon.SinonStub).callCount, 1);
    assert.ok(meta!.length >= 6 && sense!.length >= 96);
    const r1 = await tr.execute({ cdb: cdb.read10(0, 1), direction: 'in', data: Buffer.alloc(2048), timeoutMs: 10 });
    assert.deepEqual({ ...r1, sense: [...r1.sense] }, { status: 0, hostStatus: 0, driverStatus: 0, sense: [], residual: 512, durationUs: 33 });
    const r2 = await tr.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 10 });
    assert.equal(r2.status, 2);
    assert.equal(r2.sense.length, 18);
    assert.equal(r2.sense[12], 0x28);
    sense!.fill(0); // the next answer overwrites the slab: the result kept its own copy
    assert.equal(r2.sense[12], 0x28);
    await assert.rejects(tr.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 10 }), (e: TransportError) => e instanceof TransportError && e.code === 'ENODEV' && /went away/.test(e.hint!));
    assert.equal((await tr.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 10 })).durationUs, 7, 'a promise still works');
    await tr.close();
    // Worker mode, or an addon that says no: no slab, every answer a promise.
    const w = fakeBinding();
    w.handleInfo = sinon.stub().returns({ mode: 'worker', fallbackReason: 'x', inFlight: 0 });
    w.bindResultSlab = sinon.stub().returns(false);
    await openNative('/dev/sdb', { binding: w, sysRoot: '/nonexistent' });
    assert.equal((w.bindResultSlab as sinon.SinonStub).callCount, 0);
  });
  it('sg-async executeBatch: one addon call per 16 commands, answers from slab rows, promises and errors each in their place; a malformed command is refused without being sent', async () => {
    const b = fakeBinding();
    b.handleInfo = sinon.stub().returns({ mode: 'sg-async', inFlight: 0 });
    let meta: Float64Array | undefined;
    b.bindResultSlab = sinon.stub().callsFake((_h: number, m: Float64Array, sense: Uint8Array) => { meta = m; assert.ok(m.length >= 6 * 16 && sense.length >= 96 * 16); return true; });
    const calls: number[] = [];
    let allInPlace = false;
    b.executeBatch = sinon.stub().callsFake((_h: number, cdbs: Buffer, params: Float64Array, datas: Array<Uint8Array | undefined>) => {
      calls.push(datas.length);
      // Each command answered by its LBA: even ones in place (residual = LBA in their own row), LBA 3 fails, the rest later.
      const answers = datas.map((d, i) => {
        assert.deepEqual([...params.subarray(3 * i, 3 * i + 3)], [10, 1, 10], 'CDB length, direction in, timeout');
        assert.equal(d!.length, 2048);
        const lba = cdbs.readUInt32BE(16 * i + 2);
        if (lba === 3) return Object.assign(new Error('write(sg) handle 7: No such device'), { code: 'ENODEV', errno: 19 });
        if (allInPlace || lba % 2 === 0) { meta!.set([0, 0, 0, 0, lba, 5], i * 6); return 0 as const; }
        return Promise.resolve({ status: 0, hostStatus: 0, driverStatus: 0, sense: Buffer.alloc(0), residual: lba, durationUs: 9 });
      });
      return allInPlace ? datas.length : answers;
    });
    const tr = await openNative('/dev/sg9', { binding: b, sysRoot: '/nonexistent' });
    const cmds = Array.from({ length: 20 }, (_, lba) => ({ cdb: cdb.read10(lba, 1), direction: 'in' as const, data: Buffer.alloc(2048), timeoutMs: 10 }));
    cmds[5] = { cdb: cdb.read10(5, 1), direction: 'in', timeoutMs: 10 } as never; // no data buffer: a TypeError, never sent
    const got = await Promise.all(tr.executeBatch(cmds).map((p) => p.then((r) => r.residual, (e) => `${e.constructor.name}:${e.code ?? ''}`)));
    assert.deepEqual(calls, [15, 4], '16 + 4 commands, less the malformed one');
    assert.deepEqual(got, Array.from({ length: 20 }, (_, lba) => (lba === 3 ? 'TransportError:ENODEV' : lba === 5 ? 'TypeError:' : lba)));
    assert.equal((b.execute as sinon.SinonStub).callCount, 0);
    // Every one answered in place: the addon says so with the count, and each answer comes from its own row.
    allInPlace = true;
    const rows = await Promise.all(tr.executeBatch([6, 8, 10].map((lba) => ({ cdb: cdb.read10(lba, 1), direction: 'in' as const, data: Buffer.alloc(2048), timeoutMs: 10 }))));
    assert.deepEqual(rows.map((r) => r.residual), [6, 8, 10]);
    await tr.close();
    assert.equal(await Promise.all(tr.executeBatch([cmds[0]!]).map((p) => p.then(() => 'ok', (e: TransportError) => e.code))).then((x) => x[0]), 'EBADF');
    // Worker mode: one execute() per command.
    const w = fakeBinding();
    w.handleInfo = sinon.stub().returns({ mode: 'worker', fallbackReason: 'x', inFlight: 0 });
    w.executeBatch = sinon.stub();
    const tw = await openNative('/dev/sdb', { binding: w, sysRoot: '/nonexistent' });
    await Promise.all(tw.executeBatch(cmds.slice(0, 3)));
    assert.equal((w.execute as sinon.SinonStub).callCount, 3);
    assert.equal((w.executeBatch as sinon.SinonStub).callCount, 0);
    await tw.close();
  });
  it('sg-async: a full kernel queue is said once while it happens and in totals at close (the CLI\'s -v), and not at all without a listener', async () => {
    for (const listening of [true, false]) {
      const b = fakeBinding();
      (b.execute as sinon.SinonStub).returns(new Promise(() => undefined));
      let queueFull = 0;
      b.handleInfo = sinon.stub().callsFake(() => ({ mode: 'sg-async', inFlight: 16, maxQueue: 16, queueFull, submitted: 20, maxWaiting: 4, overdueMs: -1 }));
      const notes: string[] = [];
      const tr = await openNative('/dev/sg9', { binding: b, sysRoot: '/nonexistent', safetyGraceMs: 400, ...(listening ? { onQueueNote: (m: string) => notes.push(m) } : {}) });
      void tr.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 10 });
      await new Promise((r) => setTimeout(r, 150)); // a sweep (every 100 ms) with nothing refused yet
      assert.deepEqual(notes, []);
      queueFull = 4;
      await new Promise((r) => setTimeout(r, 250)); // two sweeps: said once
      await tr.close();
      if (!listening) {
        assert.deepEqual(notes, []);
        continue;
      }
      assert.equal(notes.length, 2, notes.join('\n'));
      assert.match(notes[0]!, /^\/dev\/sg9: the sg driver's queue is full \(it holds 16 commands per descriptor\)/);
      assert.match(notes[1]!, /refused 4 of 20 commands for a full queue \(16 per descriptor\); each waited in mocopy's queue \(at most 4 at once\)/);
    }
  });
  it('an answer in time clears the safety timer: nothing fires later', async () => {
    const b = fakeBinding();
    const tr = await openNative('/dev/sg9', { binding: b, sysRoot: '/nonexistent', safetyGraceMs: 20 });
    for (let i = 0; i < 5; i++) await tr.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 10 });
    await new Promise((r) => setTimeout(r, 80));
    assert.equal((b.close as sinon.SinonStub).callCount, 0);
    await tr.close();
  });
});

describe('the real addon (built by npm ci / node-gyp)', () => {
  let binding: NativeBinding;
  let t: ReturnType<typeof tempDir>;
  before(() => { binding = loadNativeBinding(); }); // fails with the build command if the addon is missing
  beforeEach(() => { t = tempDir(); });
  afterEach(() => t.cleanup());

  it('opening a missing path -> ENOENT with a hint', async () => {
    await assert.rejects(openNative(join(t.dir, 'nope')), (e: TransportError) => e.code === 'ENOENT' && /mocopy devices/.test(e.hint!));
  });
  it('a regular file is not a SCSI device: clean ENOTTY at open and at SG_IO', async () => {
    const f = join(t.dir, 'file.bin');
    writeFileSync(f, Buffer.alloc(4096));
    await assert.rejects(openNative(f), (e: TransportError) => e.code === 'ENOTTY' && /not a SCSI device/.test(e.message));
    const h = binding.open(f, { write: false });
    await assert.rejects(executeUnbound(binding, h, cdb.testUnitReady(), 0, undefined, 1000), (e: NodeJS.ErrnoException) => e.code === 'ENOTTY');
    binding.close(h);
  });
  it('handleInfo: a node without the sg asynchronous interface runs in the worker mode and says why', () => {
    const f = join(t.dir, 'file.bin');
    writeFileSync(f, Buffer.alloc(16));
    const h = binding.open(f, { write: false });
    let info;
    try {
      info = binding.handleInfo!(h);
    } finally {
      binding.close(h);
    }
    assert.equal(info.mode, 'worker');
    // Windows has no asynchronous pass-through path at all; on Linux a regular file is not an sg node.
    assert.match(info.fallbackReason!, process.platform === 'win32' ? /^Windows: .*thread pool/ : /not a character device/);
    if (process.platform === 'linux') {
      const n = binding.open('/dev/null', { write: false });
      assert.match(binding.handleInfo!(n).fallbackReason!, /not an sg node/);
      binding.close(n);
      const off = binding.open('/dev/null', { write: false, async: false });
      assert.match(binding.handleInfo!(off).fallbackReason!, /turned off/);
      binding.close(off);
    }
    assert.throws(() => binding.handleInfo!(h), /closed or was never opened/);
    assert.throws(() => binding.handleInfo!('x' as unknown as number), TypeError);
  });
  it('bad arguments throw TypeError in the addon too', () => {
    const f = join(t.dir, 'file.bin');
    writeFileSync(f, Buffer.alloc(16));
    const h = binding.open(f, { write: false });
    assert.throws(() => binding.execute(h, Buffer.alloc(0), 0, undefined, 10), TypeError);
    assert.throws(() => binding.execute(h, Buffer.alloc(20), 0, undefined, 10), TypeError);
    assert.throws(() => binding.execute(h, cdb.testUnitReady(), 1, undefined, 10), TypeError);
    assert.throws(() => binding.execute(h, cdb.testUnitReady(), 0, undefined, -5), TypeError);
    assert.throws(() => binding.execute(h, cdb.testUnitReady(), 7 as 0, undefined, 10), TypeError);
    assert.throws(() => binding.execute(999999, cdb.testUnitReady(), 0, undefined, 10), /closed or was never opened/);
    // Timeouts outside 1 ms..24 h never reach the OS (validated in TypeScript and again here).
    for (const t of [Number.NaN, Number.POSITIVE_INFINITY, 0, 0.5, 86_400_001, 1e12]) {
      assert.throws(() => binding.execute(h, cdb.testUnitReady(), 0, undefined, t), /timeoutMs must be a number from 1 to 86400000/, String(t));
    }
    binding.close(h);
  });
  it('executeBatch: packed commands checked before any is sent (a bad one named by its index); in the worker mode one promise each', async () => {
    const f = join(t.dir, 'file.bin');
    writeFileSync(f, Buffer.alloc(16));
    const h = binding.open(f, { write: false });
    try {
      const cdbs = Buffer.alloc(16 * 3);
      cdb.testUnitReady().copy(cdbs, 0);
      cdb.read10(0, 1).copy(cdbs, 16);
      cdb.testUnitReady().copy(cdbs, 32);
      const ok = new Float64Array([6, 0, 1000, 10, 1, 1000, 6, 0, 1000]);
      const datas = [undefined, Buffer.alloc(2048), undefined];
      for (const [params, d, msg] of [
        [new Float64Array([6, 0, 1000, 10, 1, 1000, 6, 0, 0]), datas, /command 2: timeoutMs/],
        [new Float64Array([6, 0, 1000, 10, 1, 1000, 6, 0, 1000]), [undefined, undefined, undefined], /command 1: direction and data buffer disagree/],
        [new Float64Array([6, 0, 1000, 17, 1, 1000, 6, 0, 1000]), datas, /command 1: cdb must be 1..16 bytes/],
        [new Float64Array([6, 3, 1000, 10, 1, 1000, 6, 0, 1000]), datas, /command 0: direction/],
        [ok, Array.from({ length: 17 }, () => undefined), /1 to 16 commands/],
        [ok.subarray(0, 6), datas, /3 parameters each/],
      ] as const) {
        assert.throws(() => binding.executeBatch!(h, cdbs, params as Float64Array, d as Array<Buffer | undefined>), (e: Error) => e instanceof TypeError && msg.test(e.message), String(msg));
      }
      const r = binding.executeBatch!(h, cdbs, ok, datas);
      assert.ok(Array.isArray(r) && r.length === 3);
      const codes = await Promise.all((r as Array<Promise<unknown>>).map((p) => p.then(() => 'ok', (e: NodeJS.ErrnoException) => e.code)));
      assert.deepEqual(codes, ['ENOTTY', 'ENOTTY', 'ENOTTY']);
    } finally {
      binding.close(h);
    }
  });
  it('a detached data buffer is refused at submit; one detached in flight fails the command (EDETACHED)', async () => {
    const f = join(t.dir, 'file.bin');
    writeFileSync(f, Buffer.alloc(16));
    const h = binding.open(f, { write: false });
    const gone = new Uint8Array(new ArrayBuffer(2048));
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    assert.throws(() => binding.execute(h, cdb.read10(0, 1), 1, gone as Buffer, 1000), /detached/);
    const buf = new Uint8Array(new ArrayBuffer(2048));
    const p = executeUnbound(binding, h, cdb.read10(0, 1), 1, buf as Buffer, 1000);
    structuredClone(buf.buffer, { transfer: [buf.buffer] }); // before the worker's completion runs on this thread
    await assert.rejects(p, (e: NodeJS.ErrnoException) => e.code === 'EDETACHED');
    binding.close(h);
  });
  it('many commands in flight and a close in the middle neither crash nor leak the handle', async () => {
    const f = join(t.dir, 'file.bin');
    writeFileSync(f, Buffer.alloc(16));
    const before = binding.openHandles();
    const h = binding.open(f, { write: false });
    const all = Array.from({ length: 64 }, () => executeUnbound(binding, h, cdb.read10(0, 1), 1, Buffer.alloc(2048), 1000).then(() => 'ok', (e) => e.code));
    binding.close(h);
    const codes = await Promise.all(all);
    assert.ok(codes.every((c) => c === 'ENOTTY'));
    assert.equal(binding.openHandles(), before, 'the deferred close happened after the last command');
    assert.throws(() => binding.execute(h, cdb.testUnitReady(), 0, undefined, 10), /closed/);
    await Promise.all(Array.from({ length: 100 }, () => binding.nopAsync()));
  });
});
