/**
 * Hostile input from drives (issue 17): a Transport that wraps the emulator and lies, under the package's
 * public ScsiDevice, and the same lies as device-spec faults through the CLI.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import {
  createMoImage, DeviceAnswerError, Ledger, ScsiError, MAX_MEDIA_SERIAL_BYTES, openDevice, openEmulator, ScsiDevice,
  SHORT_TRANSFER_ATTEMPTS, ShortTransferError, TransportError, type ScsiCommand, type ScsiResult, type Transport,
} from '../lib/index.js';
import { mocopy } from './helpers/cli.js';
import { makeWorld, tempDir, type World, ledgerReport } from './helpers/fixtures.js';

/** Forwards to a real (emulated) drive and rewrites its answers; records every data buffer it was handed. */
class LyingTransport implements Transport {
  readonly buffers: number[] = [];
  readonly commands: number[] = [];
  constructor(private readonly inner: Transport, private readonly lie: (cmd: ScsiCommand, r: ScsiResult) => ScsiResult) {}
  get path() { return `lying:${this.inner.path}`; }
  get limits() { return this.inner.limits; }
  async execute(cmd: ScsiCommand): Promise<ScsiResult> {
    this.buffers.push(cmd.data?.length ?? 0);
    this.commands.push(cmd.cdb[0]!);
    return this.lie(cmd, await this.inner.execute(cmd));
  }
  close() { return this.inner.close(); }
}

const isRead = (c: ScsiCommand) => c.cdb[0] === 0x28 || c.cdb[0] === 0xa8 || c.cdb[0] === 0x88;

describe('hostile input: lying drives', function () {
  this.timeout(60_000);
  const t = tempDir();
  const disc = join(t.dir, 'disc.mo');
  before(() => {
    createMoImage(disc, { mediumId: Buffer.from('0102030405', 'hex'), capacityBytes: 4 << 20, blockSize: 2048 });
  });
  after(() => t.cleanup());

  async function lying(lie: (cmd: ScsiCommand, r: ScsiResult) => ScsiResult) {
    const tr = new LyingTransport(await openEmulator(`emu:${disc}`), lie);
    return { tr, dev: new ScsiDevice('lying-drive', tr) };
  }

  it('READ MEDIA SERIAL NUMBER claiming 0x7FFFFFFC bytes: a typed error naming drive and command, no large buffer', async () => {
    const { tr, dev } = await lying((cmd, r) => {
      if (cmd.cdb[0] === 0xab && cmd.data) cmd.data.writeUInt32BE(0x7ffffffc, 0);
      return r;
    });
    await assert.rejects(dev.mediumId(), (e: unknown) => e instanceof DeviceAnswerError && e instanceof TransportError &&
      /lying-drive: READ MEDIA SERIAL NUMBER .*2147483644-byte/.test(e.message) && e.code === 'E_BAD_ANSWER' && e.exitCode === 3);
    assert.ok(Math.max(...tr.buffers) <= 4096, `largest buffer handed to the drive: ${Math.max(...tr.buffers)} bytes`);
    // Just over the documented bound is refused too; at the bound it is asked for.
    const { dev: over } = await lying((cmd, r) => { if (cmd.cdb[0] === 0xab && cmd.data) cmd.data.writeUInt32BE(MAX_MEDIA_SERIAL_BYTES + 1, 0); return r; });
    await assert.rejects(over.mediumId(), DeviceAnswerError);
    await dev.close();
    await over.close();
  });

  it('READ answering GOOD with a residual: retried, then ShortTransferError carrying the residual; never stale bytes', async () => {
    const { tr, dev } = await lying((cmd, r) => (isRead(cmd) ? { ...r, residual: 512 } : r));
    const before = tr.commands.length;
    await assert.rejects(dev.read(10, 4), (e: unknown) => e instanceof ShortTransferError && e.residual === 512 && e.requested === 8192 && e.code === 'E_SHORT_TRANSFER');
    assert.equal(tr.commands.slice(before).filter((o) => o === 0x28).length, SHORT_TRANSFER_ATTEMPTS, 'bounded retries');
    // Through a stream as well (the copy path): the first short chunk fails the stream.
    await assert.rejects((async () => { for await (const _ of dev.readStream(0, 64, { inFlight: 4 })) { /* drain */ } })(), ShortTransferError);
    await dev.close();
  });

  it('a READ short once, then whole, delivers exactly the medium\'s bytes', async () => {
    const truth = await (await openDevice(`emu:${disc}`)).read(20, 2);
    let lies = 1;
    const { dev } = await lying((cmd, r) => {
      if (isRead(cmd) && lies-- > 0) { cmd.data!.fill(0xee, cmd.data!.length - 100); return { ...r, residual: 100 }; }
      return r;
    });
    assert.deepEqual(await dev.read(20, 2), truth);
    await dev.close();
  });

  it('impossible answers: a residual beyond the buffer, a block size of 777, zero blocks, oversized sense', async () => {
    const { dev: residual } = await lying((cmd, r) => (cmd.cdb[0] === 0x12 ? { ...r, residual: 1 << 20 } : r));
    await assert.rejects(residual.inquiry(), (e: unknown) => e instanceof DeviceAnswerError && /residual 1048576 is outside 0\.\.96/.test((e as Error).message));
    const { dev: blockSize } = await lying((cmd, r) => { if (cmd.cdb[0] === 0x25) cmd.data!.writeUInt32BE(777, 4); return r; });
    await assert.rejects(blockSize.capacity(), (e: unknown) => e instanceof DeviceAnswerError && /block size 777/.test((e as Error).message));
    const { dev: huge } = await lying((cmd, r) => {
      if (cmd.cdb[0] !== 0x00) return r;
      return { ...r, status: 0x02, sense: Buffer.concat([Buffer.from([0x70, 0, 0x03, 0, 0, 0, 0, 0xf4, 0, 0, 0, 0, 0x11, 0]), Buffer.alloc(1 << 16, 0x41)]) };
    });
    await assert.rejects(huge.testUnitReady(), (e: unknown) => e instanceof ScsiError && e.senseKey === 3 && e.asc === 0x11 && /UNRECOVERED READ ERROR/.test(e.message));
    for (const d of [residual, blockSize, huge]) await d.close();
  });

  it('READ CAPACITY saturated then (16) lying: a typed error, not a RangeError', async () => {
    const { dev } = await lying((cmd, r) => {
      if (cmd.cdb[0] === 0x25) cmd.data!.writeUInt32BE(0xffffffff, 0);
      if (cmd.cdb[0] === 0x9e && cmd.data) { cmd.data.writeBigUInt64BE(0x7fffffffffffffffn, 0); }
      return r;
    });
    await assert.rejects(dev.capacity(), DeviceAnswerError);
    await dev.close();
  });
});

describe('hostile input: lying drives as device-spec faults, through the CLI', function () {
  this.timeout(120_000);
  let w: World;
  before(async () => { w = await makeWorld(); });
  after(() => w.cleanup());
  const billed = async () => (await ledgerReport(w.ledger)).billing.length;

  it('?fault=rmsn-length:2147483644 → medium-id exits 3 with the drive and command named', async () => {
    const d = w.newDisc('rmsn.mo', 'aabbccdd');
    const r = mocopy(['medium-id', `emu:${d}?fault=rmsn-length:2147483644`]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /READ MEDIA SERIAL NUMBER .*2147483644-byte media serial number/);
  });

  it('?fault=short-read:N on the master → copy exits 3 and nothing is billed', async () => {
    const d = w.newDisc('short.mo', 'aabbccee');
    const r = mocopy(['copy', `emu-cd:${w.masterIso}?fault=short-read:2048`, `emu:${d}`, '--content', 'APP-1', '--center-db', w.ledger, '--station-key', w.stationKeyPath]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /returned GOOD with 2048 of \d+ bytes not transferred/);
    assert.equal((await billed()), 0);
  });

  it('?fault=short-read on the target → copy exits 3 before the center is asked; nothing billed', async () => {
    const d = w.newDisc('target-short.mo', 'aabbccff');
    const r = mocopy(['copy', `emu-cd:${w.masterIso}`, `emu:${d}?fault=short-read:512`, '--content', 'APP-2', '--center-db', w.ledger, '--station-key', w.stationKeyPath]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /E_SHORT_TRANSFER|not transferred/);
    assert.equal((await billed()), 0);
  });

  it('a malformed fault option is a usage error naming the grammar', async () => {
    const d = w.newDisc('bad.mo', 'aabbcc00');
    for (const opt of ['fault=short-read:x', 'fault=teleport:1', 'speed=warp', 'seed=-1']) {
      const r = mocopy(['info', `emu:${d}?${opt}`]);
      assert.equal(r.code, 2, `${opt}: ${r.stderr}`);
      assert.match(r.stderr, /grammar is emu:IMAGE\[\?fault=FAULT/);
    }
  });

});
