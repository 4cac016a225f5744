/**
 * The emulator's faults behind the iSCSI target (issue 10 item 4), seen by an initiator on the wire: a medium
 * error comes back as CHECK CONDITION with the drive's sense, NOT READY as NOT READY, a command the drive never
 * answers is never answered (ABORT TASK frees it), a power cut drops the connection and loses exactly the
 * unsynced writes; two sessions on one LUN see reservations and reset unit attentions as SPC says.
 */
import { strict as assert } from 'node:assert';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { createMoImage, MO_HEADER_SIZE, parseSense, serveEmulatedDrives, type ServedDrives } from '../lib/index.js';
import { tempDir } from './helpers/fixtures.js';
import { lun0, RawInitiator, rawPdu, RESERVED } from './helpers/iscsi-client.js';

const IQN = 'iqn.2026-11.org.mocopy:faults';
const BLOCK = 2048;

describe('iSCSI target: emulator faults over the wire', function () {
  this.timeout(30_000);
  const t = tempDir('mocopy-iscsi-faults-');
  let served: ServedDrives | undefined;
  const clients: RawInitiator[] = [];
  let n = 0;
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await served?.close();
    served = undefined;
  });
  after(() => t.cleanup());

  async function serve(options = '', opts: { idleTimeoutMs?: number; powerOnAttention?: boolean; image?: string } = {}): Promise<string> {
    const image = opts.image ?? join(t.dir, `disc${n++}.mo`);
    if (!opts.image) createMoImage(image, { mediumId: Buffer.from('feedface', 'hex'), capacityBytes: 4 << 20, blockSize: BLOCK });
    served = await serveEmulatedDrives({
      mo: [`${image}${options}`], iqn: IQN, port: 0, ...(opts.idleTimeoutMs ? { options: { idleTimeoutMs: opts.idleTimeoutMs } } : {}),
      ...(opts.powerOnAttention ? { powerOnAttention: true } : {}),
    });
    return image;
  }
  async function session(name = 'iqn.2026-11.test:one', isid = clients.length + 1): Promise<RawInitiator> {
    const c = await RawInitiator.connect(served!.target.port);
    clients.push(c);
    c.answerPings = true;
    const r = await c.login({ initiatorName: name, targetName: IQN, isid: Buffer.from([0x80, 0, 0, 0, 0, isid]) });
    assert.equal(r.word36 >>> 16, 0, 'login status');
    return c;
  }
  const senseOf = (r: { pdus: Array<{ opcode: number; data: Buffer }> }) => {
    const resp = r.pdus.find((p) => p.opcode === 0x21)!;
    return parseSense(resp.data.subarray(2, 2 + resp.data.readUInt16BE(0)))!;
  };
  const cdb6 = (op: number, b4 = 0) => Buffer.from([op, 0, 0, 0, b4, 0]);
  const imageBlock = (image: string, lba: number) => {
    const fd = openSync(image, 'r');
    try { const b = Buffer.alloc(BLOCK); readSync(fd, b, 0, BLOCK, MO_HEADER_SIZE + lba * BLOCK); return b; } finally { closeSync(fd); }
  };

  it('a medium error on LBA N: CHECK CONDITION 03/11/00 with the information field, as in-process', async () => {
    await serve('?fault=medium-error:read:100-110');
    const c = await session();
    const ok = await c.read10(90, 2, BLOCK);
    assert.equal(ok.status, 0);
    const bad = await c.read10(98, 4, BLOCK);
    assert.equal(bad.status, 2);
    const s = senseOf(bad);
    assert.deepEqual([s.senseKey, s.asc, s.ascq], [3, 0x11, 0]);
    assert.equal(Number(s.information), 100);
  });

  it('a write medium error: CHECK CONDITION 03/0C/00; the blocks before it landed', async () => {
    const image = await serve('?fault=medium-error:write:51-51');
    const c = await session();
    const data = Buffer.alloc(2 * BLOCK, 0x5a);
    const r = await c.write10(50, data, BLOCK);
    assert.equal(r.status, 2);
    const s = senseOf(r);
    assert.deepEqual([s.senseKey, s.asc], [3, 0x0c]);
    await served!.close();
    served = undefined;
    assert.ok(imageBlock(image, 50).every((b) => b === 0x5a));
    assert.ok(imageBlock(image, 51).every((b) => b === 0));
  });

  it('NOT READY for N commands: 02/04/01 three times, then GOOD', async () => {
    await serve('?fault=not-ready:3');
    const c = await session();
    for (let i = 0; i < 3; i++) {
      const r = await c.collect(c.sendCommand(cdb6(0x00), { edtl: 0 }));
      assert.equal(r.status, 2);
      const s = senseOf(r);
      assert.deepEqual([s.senseKey, s.asc, s.ascq], [2, 4, 1]);
    }
    assert.equal((await c.collect(c.sendCommand(cdb6(0x00), { edtl: 0 }))).status, 0);
  });

  it('a power cut after N writes drops the connection; unsynced writes are lost, synced ones kept', async () => {
    const image = await serve('?fault=power-cut-after-writes:2');
    const c = await session();
    assert.equal((await c.write10(10, Buffer.alloc(BLOCK, 0x11), BLOCK)).status, 0);
    assert.equal((await c.collect(c.sendCommand(Buffer.from([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]), { edtl: 0 }))).status, 0); // SYNCHRONIZE CACHE
    assert.equal((await c.write10(11, Buffer.alloc(BLOCK, 0x22), BLOCK)).status, 0); // the power goes after this one
    c.sendCommand(cdb6(0x00), { edtl: 0 });
    assert.ok(await c.closesWithin(5000), 'the connection drops when the drive stops answering');
    await served!.close();
    served = undefined;
    assert.ok(imageBlock(image, 10).every((b) => b === 0x11), 'synced before the cut');
    assert.ok(imageBlock(image, 11).every((b) => b === 0), 'cached, lost with the power');
  });

  it('served after a power cut with powerOnAttention: each initiator port\'s first command gets POWER ON OCCURRED (29/00), once; without it, none', async () => {
    const image = await serve('?fault=power-cut-after-writes:1');
    const c = await session('iqn.2026-11.test:station', 1);
    assert.equal((await c.write10(10, Buffer.alloc(BLOCK, 0x33), BLOCK)).status, 0); // cached; the power goes after it
    c.sendCommand(cdb6(0x00), { edtl: 0 });
    assert.ok(await c.closesWithin(5000));
    await served!.close();
    // The same image served again by a drive that just got power; the station logs in again with the same port.
    await serve('', { image, powerOnAttention: true });
    const again = await session('iqn.2026-11.test:station', 1);
    assert.equal((await again.inquiry()).status, 0, 'INQUIRY is not interrupted by a unit attention');
    const ua = await again.write10(10, Buffer.alloc(BLOCK, 0x44), BLOCK);
    assert.equal(ua.status, 2, 'the first command after the power-on is not carried out');
    assert.deepEqual([senseOf(ua).senseKey, senseOf(ua).asc, senseOf(ua).ascq], [6, 0x29, 0x00]);
    assert.equal((await again.collect(again.sendCommand(cdb6(0x00), { edtl: 0 }))).status, 0, 'reported once to that port');
    again.destroy();
    const relogin = await session('iqn.2026-11.test:station', 1);
    assert.equal((await relogin.collect(relogin.sendCommand(cdb6(0x00), { edtl: 0 }))).status, 0, 'not again when the same port logs in again');
    const other = await session('iqn.2026-11.test:other', 2);
    const ua2 = await other.collect(other.sendCommand(cdb6(0x00), { edtl: 0 }));
    assert.deepEqual([ua2.status, senseOf(ua2).asc, senseOf(ua2).ascq], [2, 0x29, 0x00], 'another port gets its own');
    await served!.close();
    await serve('', { image });
    const plain = await session('iqn.2026-11.test:station', 3);
    assert.equal((await plain.collect(plain.sendCommand(cdb6(0x00), { edtl: 0 }))).status, 0, 'served without the option: no unit attention');
  });

  it('a command the drive never answers is never answered; ABORT TASK frees it and the session goes on', async () => {
    await serve('?fault=timeout:28');
    const c = await session();
    const itt = c.sendCommand(Buffer.from([0x28, 0, 0, 0, 0, 5, 0, 0, 1, 0]), { read: true, edtl: BLOCK });
    assert.equal(await c.next(500), undefined, 'no answer to the hung READ');
    const tmf = c.itt();
    const refCmdSN = Buffer.alloc(16);
    refCmdSN.writeUInt32BE((c.cmdSN - 1) >>> 0, 0);
    c.send(rawPdu({ opcode: 0x02, immediate: true, flags: 0x80 | 1, bytes8: lun0(), itt: tmf, word20: itt, word24: c.cmdSN, word28: c.expStatSN, bytes32: refCmdSN }));
    const resp = await c.expect('the TMF response');
    assert.equal(resp.opcode, 0x22);
    assert.equal(resp.byte2, 0, 'function complete');
    assert.equal((await c.inquiry()).status, 0);
  });

  it('two sessions on one LUN: RESERVE(6) refuses the other; a LUN reset clears it and gives the other a unit attention', async () => {
    await serve();
    const a = await session('iqn.2026-11.test:a');
    const b = await session('iqn.2026-11.test:b');
    assert.equal((await a.collect(a.sendCommand(cdb6(0x16), { edtl: 0 }))).status, 0);
    assert.equal((await b.collect(b.sendCommand(cdb6(0x00), { edtl: 0 }))).status, 0x18, 'RESERVATION CONFLICT');
    assert.equal((await b.inquiry()).status, 0, 'INQUIRY is allowed');
    const tmf = b.itt();
    b.send(rawPdu({ opcode: 0x02, immediate: true, flags: 0x80 | 5, bytes8: lun0(), itt: tmf, word20: RESERVED, word24: b.cmdSN, word28: b.expStatSN }));
    assert.equal((await b.expect('the TMF response')).byte2, 0);
    assert.equal((await b.collect(b.sendCommand(cdb6(0x00), { edtl: 0 }))).status, 0, 'reservation gone');
    const ua = await a.collect(a.sendCommand(cdb6(0x00), { edtl: 0 }));
    assert.equal(ua.status, 2);
    const s = senseOf(ua);
    assert.deepEqual([s.senseKey, s.asc, s.ascq], [6, 0x29, 0x03], 'BUS DEVICE RESET FUNCTION OCCURRED for the other nexus');
    assert.equal((await a.collect(a.sendCommand(cdb6(0x00), { edtl: 0 }))).status, 0, 'reported once');
  });

  it('PREVENT held by one session keeps the disc in; the session ending releases it', async () => {
    await serve();
    const a = await session('iqn.2026-11.test:a');
    const b = await session('iqn.2026-11.test:b');
    assert.equal((await a.collect(a.sendCommand(cdb6(0x1e, 1), { edtl: 0 }))).status, 0);
    const eject = await b.collect(b.sendCommand(cdb6(0x1b, 0x02), { edtl: 0 }));
    assert.equal(eject.status, 2);
    assert.deepEqual([senseOf(eject).asc, senseOf(eject).ascq], [0x53, 0x02], 'MEDIUM REMOVAL PREVENTED');
    a.destroy();
    await a.closed;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await b.collect(b.sendCommand(cdb6(0x1b, 0x02), { edtl: 0 }))).status, 0, 'ejected once the preventing nexus is gone');
  });
});
