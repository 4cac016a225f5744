/**
 * The iSCSI target (lib/iscsi) against raw sockets: a valid login and INQUIRY written byte by byte, then
 * hostile initiators — truncated PDUs, oversized data segments, unknown opcodes, commands before login, random
 * garbage, CmdSNs outside the window, Data-Out out of sequence — each on its own connection, while a second,
 * well-behaved session stays logged in and must keep answering. The target runs in this process: a crash is an
 * uncaught exception that fails the test at hand.
 */
import { strict as assert } from 'node:assert';
import { closeSync, openSync, readSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import sinon from 'sinon';
import { serveEmulatedDrives, type ServedDrives } from '../lib/drives/serve.js';
import { createMoImage, MO_HEADER_SIZE } from '../lib/emulator/index.js';
import { tempDir } from './helpers/fixtures.js';
import { loginPdu, lun0, parseText, RawInitiator, rawPdu, RESERVED, type TargetPduView } from './helpers/iscsi-client.js';

const IQN = 'iqn.2026-11.org.example:hostile';
const GOOD_NAME = 'iqn.2026-01.test:good-session';
const HOSTILE_NAME = 'iqn.x';
const BLOCK = 2048;
const IDLE_MS = 500;
/** Well under the idle timeout: a close this fast was caused by what was sent, not by the keep-alive. */
const PROMPT_MS = 450;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('iSCSI target under hostile initiators (raw sockets)', function () {
  this.timeout(20_000);
  const t = tempDir('mocopy-iscsi-');
  const image = join(t.dir, 'disc.mo');
  const events: Array<Record<string, unknown>> = [];
  let served: ServedDrives;
  let servedClosed = false;
  let good: RawInitiator;
  const opened: RawInitiator[] = [];
  let nextIsid = 1;

  const pattern = Buffer.alloc(2 * BLOCK);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + 3) & 0xff;

  async function connect(): Promise<RawInitiator> {
    const c = await RawInitiator.connect(served.target.port);
    opened.push(c);
    return c;
  }

  function isid(): Buffer {
    const n = nextIsid++;
    return Buffer.from([0x80, 0x12, 0x34, 0, n >> 8, n & 0xff]);
  }

  /** A fresh connection logged in to a normal session (another initiator than the good one). */
  async function loggedIn(answerPings = true): Promise<RawInitiator> {
    const c = await connect();
    const r = await c.login({ initiatorName: HOSTILE_NAME, targetName: IQN, isid: isid() });
    assert.equal(r.word36 >>> 16, 0, 'login status');
    c.answerPings = answerPings;
    return c;
  }

  async function goodStillAnswers(): Promise<void> {
    assert.deepEqual(events.filter((e) => e.event === 'internal-error'), [], 'no handler threw');
    assert.equal(good.isClosed, false, 'the good session is still connected');
    const p = await good.ping(3000);
    assert.ok(p, 'the good session answers a NOP-Out');
    assert.equal(p.data.toString(), 'ping');
  }

  before(async () => {
    createMoImage(image, { mediumId: Buffer.from('0a0b0c0d0e0f', 'hex'), capacityBytes: 1 << 20, blockSize: BLOCK });
    served = await serveEmulatedDrives({ mo: [image], iqn: IQN, host: '127.0.0.1', port: 0, options: { idleTimeoutMs: IDLE_MS }, log: (e) => events.push(e) });
    assert.ok(served.target.port > 0);
    good = await RawInitiator.connect(served.target.port);
    const r = await good.login({ initiatorName: GOOD_NAME, targetName: IQN, isid: Buffer.from([0x80, 0, 0, 0, 0, 1]) });
    assert.equal(r.word36 >>> 16, 0, 'the good session logs in');
    good.answerPings = true;
  });

  afterEach(() => {
    for (const c of opened.splice(0)) c.destroy();
  });

  after(async () => {
    good?.destroy();
    if (served && !servedClosed) await served.close();
    t.cleanup();
  });

  it('a valid login written byte by byte gets status 0 and a TSIH; INQUIRY gets a Data-In with S bit, status 0, peripheral type 07h', async () => {
    const c = await connect();
    const isidBytes = Buffer.from([0x80, 0x12, 0x34, 0x56, 0x00, 0x99]);
    let text = Buffer.from(`InitiatorName=${HOSTILE_NAME}\0TargetName=${IQN}\0SessionType=Normal\0`, 'utf8');
    const dataLength = text.length;
    text = Buffer.concat([text, Buffer.alloc((4 - (dataLength % 4)) % 4)]);
    const h = Buffer.alloc(48);
    h[0] = 0x43; // immediate | Login Request
    h[1] = 0x87; // T=1, CSG=1 (operational), NSG=3 (full feature)
    h[2] = 0x00; // version max
    h[3] = 0x00; // version min
    h[4] = 0; // TotalAHSLength
    h.writeUIntBE(dataLength, 5, 3);
    isidBytes.copy(h, 8); // ISID; TSIH 0 at 14
    h.writeUInt32BE(0x0a0b0c0d, 16); // ITT
    h.writeUInt16BE(0, 20); // CID
    h.writeUInt32BE(1, 24); // CmdSN
    h.writeUInt32BE(0, 28); // ExpStatSN
    // Split over several TCP writes: the target must frame PDUs by their length fields, not by segments.
    const bytes = Buffer.concat([h, text]);
    for (const [a, b] of [[0, 10], [10, 47], [47, 60], [60, bytes.length]] as const) {
      c.send(bytes.subarray(a, b));
      await new Promise((r) => setTimeout(r, 15));
    }
    const r = await c.expect('a Login Response');
    assert.equal(r.opcode, 0x23, 'Login Response');
    assert.equal(r.flags, 0x87, 'T=1 CSG=1 NSG=3');
    assert.equal(r.header[36], 0, 'status class');
    assert.equal(r.header[37], 0, 'status detail');
    assert.deepEqual(r.bytes8.subarray(0, 6), isidBytes, 'ISID echoed');
    const tsih = r.bytes8.readUInt16BE(6);
    assert.notEqual(tsih, 0, 'a TSIH is assigned');
    assert.equal(r.itt, 0x0a0b0c0d);
    assert.equal(r.expCmdSN, 1);
    assert.ok(r.maxCmdSN >= 1);
    assert.equal(parseText(r.data).TargetPortalGroupTag, '1');

    const cmd = Buffer.alloc(48);
    cmd[0] = 0x01; // SCSI Command
    cmd[1] = 0xc0; // F | R
    cmd.writeUInt32BE(0x77, 16); // ITT
    cmd.writeUInt32BE(96, 20); // EDTL
    cmd.writeUInt32BE(1, 24); // CmdSN
    cmd.writeUInt32BE((r.statSN + 1) >>> 0, 28); // ExpStatSN
    Buffer.from([0x12, 0x00, 0x00, 0x00, 0x60, 0x00]).copy(cmd, 32);
    c.send(cmd);
    const d = await c.expect('a Data-In');
    assert.equal(d.opcode, 0x25, `Data-In, got opcode 0x${d.opcode.toString(16)}`);
    assert.equal(d.itt, 0x77);
    assert.ok(d.flags & 0x80, 'F bit');
    assert.ok(d.flags & 0x01, 'S bit: status in the Data-In');
    assert.equal(d.byte3, 0, 'status GOOD');
    assert.equal(d.word40, 0, 'buffer offset');
    assert.equal(d.word36, 0, 'DataSN');
    assert.equal(d.statSN, (r.statSN + 1) >>> 0, 'StatSN follows the login response');
    assert.equal(d.expCmdSN, 2, 'the command took CmdSN 1');
    assert.ok(d.data.length > 0 && d.data.length <= 96);
    if (d.data.length < 96) {
      assert.ok(d.flags & 0x02, 'underflow flagged');
      assert.equal(d.word44, 96 - d.data.length, 'residual count');
    } else {
      assert.equal(d.flags & 0x06, 0, 'no residual');
    }
    assert.equal(d.data[0], 0x07, 'peripheral qualifier 0, device type 07h (optical memory)');
    assert.equal(await c.next(100), undefined, 'nothing after the phase-collapsed status');
    await goodStillAnswers();
  });

  it('a truncated PDU, then silence: the target waits, then closes the connection after the idle timeout', async () => {
    const before = await connect();
    before.send(loginPdu({ isid: isid(), keys: [['InitiatorName', HOSTILE_NAME], ['TargetName', IQN]] }).subarray(0, 30));
    const after = await loggedIn(false);
    // A NOP-Out header announcing 100 data bytes, of which 20 come.
    after.send(rawPdu({ opcode: 0x00, flags: 0x80, bytes8: lun0(), itt: 5, word20: RESERVED, word24: after.cmdSN, dataLength: 100, data: Buffer.alloc(20, 1) }).subarray(0, 68));
    const t0 = Date.now();
    assert.equal(await before.closesWithin(250), false, 'a PDU split across segments is not an error: the target waits for the rest');
    assert.equal(after.isClosed, false);
    await goodStillAnswers();
    assert.equal(await before.closesWithin(3000), true, 'the connection before login is closed after the idle timeout');
    assert.equal(await after.closesWithin(3000), true, 'the logged-in connection with a stalled PDU is closed after the idle timeout');
    assert.ok(Date.now() - t0 >= IDLE_MS - 50, 'not before the idle timeout');
    assert.equal(await after.next(0), undefined, 'the partial NOP-Out was never answered');
    assert.ok(!before.received.some((p) => p.opcode === 0x23), 'no login response to a partial login');
    await goodStillAnswers();
  });

  it('a header claiming a 16 MiB data segment: Reject and the connection dropped at once, nothing of that size allocated', async () => {
    const pre = await connect();
    const post = await loggedIn();
    const huge = 0xffffff;
    const preHeader = loginPdu({ isid: isid(), keys: [] }).subarray(0, 48);
    preHeader.writeUIntBE(huge, 5, 3);
    const postHeader = rawPdu({ opcode: 0x01, flags: 0xa1, bytes8: lun0(), itt: 9, word20: huge, word24: post.cmdSN, dataLength: huge, bytes32: Buffer.from([0x2a, 0, 0, 0, 0, 0, 0, 0x1f, 0xff, 0]) });
    const follow = Buffer.alloc(64 * 1024, 0xee);
    const spies = [sinon.spy(Buffer, 'alloc'), sinon.spy(Buffer, 'allocUnsafe'), sinon.spy(Buffer, 'allocUnsafeSlow'), sinon.spy(Buffer, 'concat')];
    try {
      for (const [c, header] of [[pre, preHeader], [post, postHeader]] as const) {
        const t0 = Date.now();
        c.send(header);
        c.send(follow);
        assert.equal(await c.closesWithin(PROMPT_MS), true, 'dropped before the idle timeout, without waiting for the data');
        assert.ok(Date.now() - t0 < PROMPT_MS);
        const reject = c.received.find((p) => p.opcode === 0x3f);
        assert.ok(reject, 'a Reject came back');
        assert.equal(reject.byte2, 0x04, 'reason: protocol error');
        assert.deepEqual(reject.data.subarray(0, 48), Buffer.from(header), 'the Reject carries the offending header');
      }
    } finally {
      for (const s of spies) s.restore();
    }
    const big = (n: unknown) => typeof n === 'number' && n >= 1 << 20;
    for (const s of spies.slice(0, 3)) assert.ok(!s.getCalls().some((call) => big(call.args[0])), `no ${s.toString()} of 1 MiB or more`);
    assert.ok(!spies[3]!.getCalls().some((call) => big(call.args[1]) || (Buffer.isBuffer(call.returnValue) && call.returnValue.length >= 1 << 20)), 'no concat of 1 MiB or more');
    await goodStillAnswers();
  });

  it('after dropping a connection the target reads nothing more of it into memory', async () => {
    // A peer that ignores the target's FIN (allowHalfOpen) and keeps writing: the target must not keep what comes.
    const s = netConnect({ port: served.target.port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => undefined);
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    try {
      const ended = new Promise<boolean>((resolve) => { s.once('end', () => resolve(true)); setTimeout(() => resolve(false), PROMPT_MS).unref(); });
      const h = Buffer.alloc(48);
      h[0] = 0x01; // a SCSI command before login: dropped at once
      h[1] = 0x80;
      s.write(h);
      assert.equal(await ended, true, 'the target ended the connection');
      gc();
      const base = process.memoryUsage().arrayBuffers;
      const chunk = Buffer.alloc(1 << 20, 0x41);
      let sent = 0;
      const t0 = Date.now();
      while (sent < 48 << 20 && Date.now() - t0 < 300 && !s.destroyed) {
        sent += chunk.length;
        if (!s.write(chunk)) {
          await new Promise<void>((resolve) => { const t = setTimeout(resolve, 100); s.once('drain', () => { clearTimeout(t); resolve(); }); });
        }
      }
      // Garbage is freed by a collection (array buffers are swept concurrently: sample a few times); what the target
      // holds on to stays until it destroys the socket, a second after the drop.
      let grown = Infinity;
      for (let i = 0; i < 8 && grown >= 8 << 20; i++) {
        await new Promise((r) => setTimeout(r, 20));
        gc();
        grown = process.memoryUsage().arrayBuffers - base;
      }
      assert.ok(grown < 8 << 20, `the target kept ${(grown / 2 ** 20).toFixed(1)} MiB of the ${sent >> 20} MiB sent after it dropped the connection`);
    } finally {
      s.destroy();
    }
    await goodStillAnswers();
  });

  it('an unknown opcode (0x1f) in full feature phase: a Reject (0x3f, command not supported) and the session goes on', async () => {
    const c = await loggedIn();
    c.send(rawPdu({ opcode: 0x1f, flags: 0x80, bytes8: lun0(), itt: 0x1f1f, word24: c.cmdSN, word28: c.expStatSN }));
    const r = await c.expect('a Reject');
    assert.equal(r.opcode, 0x3f, `Reject, got opcode 0x${r.opcode.toString(16)}`);
    assert.equal(r.byte2, 0x05, 'reason: command not supported');
    assert.equal(r.itt, RESERVED);
    assert.equal(r.data.length, 48, 'the rejected header comes back');
    assert.equal(r.data[0]! & 0x3f, 0x1f);
    assert.equal(r.data.readUInt32BE(16), 0x1f1f);
    c.expStatSN = (r.statSN + 1) >>> 0;
    const p = await c.ping(2000);
    assert.ok(p, 'the connection still answers after the Reject');
    await goodStillAnswers();
  });

  it('a SCSI command before login: the connection is dropped at once and the command never runs', async () => {
    const c = await connect();
    const commands = served.drives[0]!.stats.commands;
    const t0 = Date.now();
    c.sendCommand(Buffer.from([0x12, 0, 0, 0, 0x60, 0]), { read: true, edtl: 96 });
    assert.equal(await c.closesWithin(PROMPT_MS), true, 'dropped before the login timeout');
    assert.ok(Date.now() - t0 < PROMPT_MS);
    assert.ok(!c.received.some((p) => p.opcode === 0x25 || p.opcode === 0x21), 'no Data-In or SCSI Response');
    assert.equal(served.drives[0]!.stats.commands, commands, 'the drive saw no command');
    await goodStillAnswers();
  });

  it('a login with keys named like Object.prototype members is answered (NotUnderstood), not an internal error', async () => {
    const c = await connect();
    const since = events.length;
    c.send(loginPdu({ isid: isid(), itt: 3, keys: [['InitiatorName', HOSTILE_NAME], ['TargetName', IQN], ['SessionType', 'Normal'], ['constructor', '1'], ['__proto__', 'x']] }));
    const r = await c.expect('a Login Response');
    assert.equal(r.opcode, 0x23);
    assert.equal(r.word36 >>> 16, 0, 'login status');
    assert.equal(parseText(r.data).constructor, 'NotUnderstood');
    assert.ok(!events.slice(since).some((e) => e.event === 'internal-error'), 'no internal error logged');
    await goodStillAnswers();
  });

  it('CmdSNs outside the window are dropped silently; the next in-window command still works', async () => {
    const c = await loggedIn();
    const exp = c.cmdSN;
    const login = c.received.find((p) => p.opcode === 0x23)!;
    const max = login.maxCmdSN;
    const commands = served.drives[0]!.stats.commands;
    const inq = Buffer.from([0x12, 0, 0, 0, 0x60, 0]);
    c.send(rawPdu({ opcode: 0x00, flags: 0x80, bytes8: lun0(), itt: 0x501, word20: RESERVED, word24: (exp + 0x40000000) >>> 0, word28: c.expStatSN }));
    c.sendCommand(inq, { read: true, edtl: 96, cmdSN: (exp + 0x7fffffff) >>> 0 });
    c.sendCommand(inq, { read: true, edtl: 96, cmdSN: (exp - 1) >>> 0 });
    c.sendCommand(inq, { read: true, edtl: 96, cmdSN: (exp - 0x40000000) >>> 0 });
    c.sendCommand(inq, { read: true, edtl: 96, cmdSN: (max + 1) >>> 0 });
    const answer: TargetPduView | undefined = await c.next(300);
    assert.equal(answer, undefined, `no answer to a command outside the window (got opcode 0x${answer?.opcode.toString(16)})`);
    assert.equal(c.isClosed, false, 'silently: the connection stays');
    assert.equal(served.drives[0]!.stats.commands, commands, 'none of them ran');
    const p = await c.ping(2000, exp);
    assert.ok(p, 'the next in-window command is answered');
    assert.equal(p.expCmdSN, (exp + 1) >>> 0, 'and it took the expected CmdSN');
    c.cmdSN = (exp + 1) >>> 0;
    const r = await c.inquiry();
    assert.equal(r.status, 0);
    assert.equal(served.drives[0]!.stats.commands, commands + 1, 'only the in-window INQUIRY ran');
    await goodStillAnswers();
  });

  it('random garbage to fresh connections never brings the target down (fast-check)', async () => {
    const login = loginPdu({ isid: Buffer.from([0x80, 0x55, 0, 0, 0, 7]), keys: [['InitiatorName', 'iqn.2026-01.test:h'], ['TargetName', IQN], ['SessionType', 'Normal']] });
    const inquiry = rawPdu({ opcode: 0x01, flags: 0xc1, bytes8: lun0(), itt: 1, word20: 96, word24: 1, bytes32: Buffer.from([0x12, 0, 0, 0, 0x60, 0]) });
    // A write to LBA 200 (the other tests look at LBA 10 and 20): its LBA bytes are restored after each mutation.
    const write = rawPdu({ opcode: 0x01, flags: 0xa1, bytes8: lun0(), itt: 2, word20: 2048, word24: 2, bytes32: Buffer.from([0x2a, 0, 0, 0, 0, 200, 0, 0, 1, 0]) });
    const dataOut = rawPdu({ opcode: 0x05, flags: 0x80, bytes8: lun0(), itt: 2, word20: 1, word36: 0, word40: 0, data: Buffer.alloc(2048, 0x99) });
    const valid = Buffer.concat([login, inquiry, write, dataOut]);
    const lbaAt = login.length + inquiry.length + 32 + 2;
    assert.equal(valid.readUInt32BE(lbaAt), 200);
    const mutated = fc.record({
      cut: fc.nat({ max: valid.length }),
      sets: fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 6 }),
    }).map(({ cut, sets }) => {
      const b = Buffer.from(valid);
      for (const [at, v] of sets) b[at] = v;
      valid.copy(b, lbaAt, lbaAt, lbaAt + 4);
      return b.subarray(0, Math.max(1, cut));
    });
    const garbage = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 400 }).map((a) => Buffer.from(a)), mutated);
    const since = events.length;
    let runs = 0;
    await fc.assert(fc.asyncProperty(garbage, async (bytes) => {
      runs++;
      const c = await RawInitiator.connect(served.target.port);
      try {
        c.send(bytes);
        await c.closesWithin(25);
      } finally {
        c.destroy();
      }
      await goodStillAnswers();
    }), { numRuns: 40 });
    assert.equal(runs, 40);
    assert.deepEqual(events.slice(since).filter((e) => e.event === 'internal-error'), [], 'no handler threw');
    // Still accepting and serving new initiators.
    const c = await loggedIn();
    const inq = await c.inquiry();
    assert.equal(inq.status, 0);
    assert.equal(inq.data[0], 0x07);
  });

  it('a Data-Out with a wrong DataSN for a WRITE(10): the connection is dropped and the blocks stay as they were', async () => {
    // Control: a well-formed write through the good session lands and reads back.
    const w = await good.write10(10, pattern, BLOCK);
    assert.equal(w.status, 0, 'the good write succeeds');
    assert.deepEqual((await good.read10(10, 2, BLOCK)).data, pattern, 'and reads back');

    const c = await loggedIn();
    const before = await good.read10(20, 2, BLOCK);
    assert.equal(before.status, 0);
    const cdb = Buffer.from([0x2a, 0, 0, 0, 0, 20, 0, 0, 2, 0]);
    const itt = c.sendCommand(cdb, { write: true, edtl: 2 * BLOCK });
    const r2t = await c.expect('an R2T');
    assert.equal(r2t.opcode, 0x31, `R2T, got opcode 0x${r2t.opcode.toString(16)}`);
    assert.equal(r2t.itt, itt);
    assert.equal(r2t.word40, 0, 'R2T buffer offset');
    assert.equal(r2t.word44, 2 * BLOCK, 'R2T desired length');
    const evil = Buffer.alloc(2 * BLOCK, 0xd5);
    c.dataOut({ itt, ttt: r2t.word20, dataSN: 0, offset: 0, data: evil.subarray(0, BLOCK), final: false });
    assert.equal(await c.closesWithin(100), false, 'an in-sequence Data-Out is fine');
    const t0 = Date.now();
    c.dataOut({ itt, ttt: r2t.word20, dataSN: 5, offset: BLOCK, data: evil.subarray(BLOCK), final: true });
    assert.equal(await c.closesWithin(PROMPT_MS), true, 'the out-of-sequence Data-Out drops the connection');
    assert.ok(Date.now() - t0 < PROMPT_MS);
    assert.ok(!c.received.some((p) => p.opcode === 0x21 && p.itt === itt && p.byte3 === 0), 'no GOOD status for the write');
    const after = await good.read10(20, 2, BLOCK);
    assert.equal(after.status, 0);
    assert.deepEqual(after.data, before.data, 'LBA 20-21 unchanged');
    assert.ok(after.data.every((b) => b === 0), 'still blank');
    await goodStillAnswers();
  });

  it('no hostile input caused an internal error; the hostile sessions are gone; closing the target writes the image back', async () => {
    assert.deepEqual(events.filter((e) => e.event === 'internal-error'), []);
    const deadline = Date.now() + 3000;
    while (served.target.sessionCount !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.equal(served.target.sessionCount, 1, 'only the good session is left');
    await goodStillAnswers();
    good.destroy();
    servedClosed = true;
    await served.close();
    const fd = openSync(image, 'r');
    try {
      const read = (lba: number) => {
        const b = Buffer.alloc(2 * BLOCK);
        assert.equal(readSync(fd, b, 0, b.length, MO_HEADER_SIZE + lba * BLOCK), b.length);
        return b;
      };
      assert.deepEqual(read(10), pattern, 'the good write is in the image file');
      assert.ok(read(20).every((b) => b === 0), 'the rejected write is not');
    } finally {
      closeSync(fd);
    }
  });
});
