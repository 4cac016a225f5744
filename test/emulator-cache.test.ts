/**
 * The emulated drive's write cache (lib/emulator/medium.ts), driven through real CDBs: cached WRITE(10),
 * WRITE(10) with FUA, READ(10), SYNCHRONIZE CACHE(10), a clean close + reopen, and a power cut.
 *
 * The model is a write-back cache as SBC describes it, not a copy of the implementation:
 *  - `latest`: what a READ must return (the last write to each block);
 *  - `durable`: what is on the medium for certain (FUA writes, SYNCHRONIZE CACHE, clean close);
 *  - `pending`: per block, the values cached writes gave it since it was last durable. The drive may
 *    write any of them back on its own (cache overflow, a write larger than the cache), so after a
 *    power cut a block must hold its durable value or one of those, and nothing else.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { createMoImage, EmulatedDrive, MO_HEADER_SIZE } from '../lib/emulator/index.js';
import * as cdb from '../lib/scsi/cdb.js';
import { parseSense } from '../lib/scsi/sense.js';
import { HostStatus, type DataDirection, type ScsiResult } from '../lib/scsi/transport.js';
import { tempDir } from './helpers/fixtures.js';

const MEDIUM_ID = Buffer.from('c0ffee0123456789', 'hex');

async function exec(d: EmulatedDrive, c: Buffer, direction: DataDirection = 'none', data?: Buffer): Promise<ScsiResult> {
  return d.execute({ cdb: c, direction, ...(data ? { data } : {}), timeoutMs: 5000 });
}

/** Runs a command that must succeed (GOOD, no host error, everything moved). */
async function ok(d: EmulatedDrive, c: Buffer, direction: DataDirection = 'none', data?: Buffer): Promise<void> {
  const r = await exec(d, c, direction, data);
  const what = cdb.opcodeName(c);
  assert.equal(r.hostStatus, HostStatus.OK, `${what}: host status ${r.hostStatus}`);
  assert.equal(r.status, 0, `${what}: status ${r.status}, sense ${r.sense.toString('hex')}`);
  assert.equal(r.residual, 0, `${what}: residual ${r.residual}`);
}

async function write(d: EmulatedDrive, lba: number, data: Buffer, fua: boolean): Promise<void> {
  const bs = d.mediumInfo!.blockSize;
  await ok(d, cdb.write10(lba, data.length / bs, { fua }), 'out', data);
}

async function read(d: EmulatedDrive, lba: number, blocks: number): Promise<Buffer> {
  const out = Buffer.alloc(blocks * d.mediumInfo!.blockSize);
  await ok(d, cdb.read10(lba, blocks), 'in', out);
  return out;
}

/** Block contents no other write reproduces: the write's serial number, the LBA, then a byte pattern. */
function blockData(serial: number, lba: number, bs: number): Buffer {
  const b = Buffer.alloc(bs, (serial * 31 + lba * 7 + 1) & 0xff);
  b.writeUInt32BE(serial, 0);
  b.writeUInt32BE(lba, 4);
  return b;
}

function imageBlock(image: Buffer, lba: number, bs: number): Buffer {
  return image.subarray(MO_HEADER_SIZE + lba * bs, MO_HEADER_SIZE + (lba + 1) * bs);
}

type Op =
  | { kind: 'write'; lba: number; blocks: number; fua: boolean }
  | { kind: 'read'; lba: number; blocks: number }
  | { kind: 'flush' }
  /** Clean close (writes the cache back), then a new drive on the same image. */
  | { kind: 'reopen' }
  /** Power cut, then power on: the same drive and medium carry on with an empty cache. */
  | { kind: 'power-cycle' }
  /** Power cut, close (nothing written back), then a new drive on the same image. */
  | { kind: 'power-cut-reopen' };

function showOp(o: Op): string {
  if (o.kind === 'write') return `${o.fua ? 'fua-write' : 'write'}(${o.lba},${o.blocks})`;
  if (o.kind === 'read') return `read(${o.lba},${o.blocks})`;
  return o.kind;
}

function opArb(blockCount: number, maxBlocks: number): fc.Arbitrary<Op> {
  // Most I/O in a small window so writes overlap each other and the dirty blocks; some anywhere.
  const lba = fc.oneof({ arbitrary: fc.integer({ min: 0, max: 23 }), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: blockCount - 1 }), weight: 1 });
  const blocks = fc.oneof({ arbitrary: fc.integer({ min: 1, max: 4 }), weight: 3 }, { arbitrary: fc.integer({ min: 1, max: maxBlocks }), weight: 1 });
  const clip = (l: number, n: number) => Math.min(n, blockCount - l);
  return fc.oneof(
    { arbitrary: fc.record({ lba, blocks }).map(({ lba: l, blocks: n }): Op => ({ kind: 'write', lba: l, blocks: clip(l, n), fua: false })), weight: 8 },
    { arbitrary: fc.record({ lba, blocks }).map(({ lba: l, blocks: n }): Op => ({ kind: 'write', lba: l, blocks: clip(l, n), fua: true })), weight: 3 },
    { arbitrary: fc.record({ lba, blocks }).map(({ lba: l, blocks: n }): Op => ({ kind: 'read', lba: l, blocks: clip(l, n) })), weight: 4 },
    { arbitrary: fc.constant<Op>({ kind: 'flush' }), weight: 1 },
    { arbitrary: fc.constant<Op>({ kind: 'reopen' }), weight: 1 },
    { arbitrary: fc.constant<Op>({ kind: 'power-cycle' }), weight: 1 },
    { arbitrary: fc.constant<Op>({ kind: 'power-cut-reopen' }), weight: 1 },
  );
}

class Model {
  readonly latest = new Map<number, Buffer>();
  readonly durable = new Map<number, Buffer>();
  readonly pending = new Map<number, Buffer[]>();
  constructor(private readonly bs: number) {}

  private zero(): Buffer {
    return Buffer.alloc(this.bs);
  }
  get(lba: number): Buffer {
    return this.latest.get(lba) ?? this.zero();
  }
  getDurable(lba: number): Buffer {
    return this.durable.get(lba) ?? this.zero();
  }
  range(lba: number, blocks: number): Buffer {
    return Buffer.concat(Array.from({ length: blocks }, (_, i) => this.get(lba + i)));
  }
  write(lba: number, data: Buffer, fua: boolean): void {
    for (let i = 0; i < data.length / this.bs; i++) {
      const b = Buffer.from(data.subarray(i * this.bs, (i + 1) * this.bs));
      this.latest.set(lba + i, b);
      if (fua) {
        this.durable.set(lba + i, b);
        this.pending.delete(lba + i);
      } else {
        const p = this.pending.get(lba + i) ?? [];
        p.push(b);
        this.pending.set(lba + i, p);
      }
    }
  }
  /** SYNCHRONIZE CACHE or a clean close: everything written is durable. */
  flush(): void {
    for (const [lba, b] of this.latest) this.durable.set(lba, b);
    this.pending.clear();
  }
  /**
   * A power cut: checks the image against what may have survived, then adopts it. A block with no
   * cached write since it was last durable must hold exactly its durable value.
   */
  powerCut(image: Buffer, blockCount: number): void {
    for (let lba = 0; lba < blockCount; lba++) {
      const got = imageBlock(image, lba, this.bs);
      const allowed = [this.getDurable(lba), ...(this.pending.get(lba) ?? [])];
      if (!allowed.some((a) => a.equals(got))) {
        assert.fail(`after a power cut LBA ${lba} holds write #${got.readUInt32BE(0)}, allowed: ${allowed.map((a) => `#${a.readUInt32BE(0)}`).join(', ')}`);
      }
      const keep = Buffer.from(got);
      if (keep.equals(this.zero()) && !this.durable.has(lba)) this.latest.delete(lba);
      else {
        this.latest.set(lba, keep);
        this.durable.set(lba, keep);
      }
    }
    this.pending.clear();
  }
  /** The image after a clean close holds exactly the latest data. */
  checkImage(image: Buffer, blockCount: number, when: string): void {
    for (let lba = 0; lba < blockCount; lba++) {
      const got = imageBlock(image, lba, this.bs);
      const want = this.get(lba);
      if (!got.equals(want)) assert.fail(`${when}: LBA ${lba} holds write #${got.readUInt32BE(0)}, expected #${want.readUInt32BE(0)}`);
    }
  }
}

function senseOf(r: ScsiResult): [number, number, number] {
  assert.equal(r.status, 0x02, 'expected CHECK CONDITION');
  const s = parseSense(r.sense)!;
  return [s.senseKey, s.asc, s.ascq];
}

describe('emulator write cache', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => { t = tempDir('mocopy-cache-'); });
  afterEach(() => t.cleanup());

  function newImage(name: string, bs: 512 | 2048, blocks: number): string {
    const p = join(t.dir, name);
    createMoImage(p, { mediumId: MEDIUM_ID, capacityBytes: blocks * bs, blockSize: bs, overwrite: true });
    return p;
  }

  describe('examples', () => {
    it('issue 17: a FUA write over dirty blocks, then cached writes past the cache size, do not throw RangeError', async () => {
      const bs = 2048;
      const path = newImage('fua.mo', bs, 64);
      const d = await EmulatedDrive.open(path, { cache: { maxDirtyBytes: 4 * bs } });
      try {
        const a = Buffer.concat([blockData(1, 0, bs), blockData(1, 1, bs)]);
        const b = Buffer.concat([blockData(2, 0, bs), blockData(2, 1, bs)]);
        await write(d, 0, a, false); // two dirty blocks in the cache
        await write(d, 0, b, true); // FUA over both: nothing is dirty any more
        assert.equal(d.dirtyBlocks, 0);
        const c = Buffer.concat([10, 11, 12].map((l) => blockData(3, l, bs)));
        await write(d, 10, c, false); // three blocks: with the old accounting 2 + 3 > 4 and the slab overflowed
        const e = Buffer.concat([20, 21, 22, 23].map((l) => blockData(4, l, bs)));
        await write(d, 20, e, false);
        assert.ok((await read(d, 0, 2)).equals(b), 'the FUA data');
        assert.ok((await read(d, 10, 3)).equals(c));
        assert.ok((await read(d, 20, 4)).equals(e));
        await ok(d, cdb.synchronizeCache10());
        assert.equal(d.dirtyBlocks, 0);
        const image = readFileSync(path);
        assert.ok(imageBlock(image, 0, bs).equals(b.subarray(0, bs)), 'no stale cached copy overwrote the FUA write');
        assert.ok(imageBlock(image, 12, bs).equals(c.subarray(2 * bs)));
        assert.ok(imageBlock(image, 23, bs).equals(e.subarray(3 * bs)));
      } finally {
        await d.close();
      }
    });

    it('rewriting dirty blocks over and over neither overflows the cache nor writes back early', async () => {
      const bs = 512;
      const path = newImage('rewrite.mo', bs, 64);
      const d = await EmulatedDrive.open(path, { cache: { maxDirtyBytes: 4 * bs } });
      try {
        for (let serial = 1; serial <= 20; serial++) {
          await write(d, 5, Buffer.concat([blockData(serial, 5, bs), blockData(serial, 6, bs), blockData(serial, 7, bs)]), false);
        }
        assert.equal(d.dirtyBlocks, 3);
        assert.ok(imageBlock(readFileSync(path), 5, bs).equals(Buffer.alloc(bs)), 'three dirty blocks fit a four-block cache: nothing written back');
        assert.ok((await read(d, 5, 1)).equals(blockData(20, 5, bs)));
        d.powerCut();
        d.powerOn();
        assert.deepEqual(senseOf(await exec(d, cdb.testUnitReady())), [6, 0x29, 0x01]);
        assert.equal(d.dirtyBlocks, 0);
        assert.ok((await read(d, 5, 3)).equals(Buffer.alloc(3 * bs)), 'the power cut lost the cached writes');
      } finally {
        await d.close();
      }
    });

    it('a write larger than the cache goes through, after what was dirty, and later writes are cached again', async () => {
      const bs = 2048;
      const path = newImage('big.mo', bs, 64);
      const d = await EmulatedDrive.open(path, { cache: { maxDirtyBytes: 2 * bs } });
      try {
        await write(d, 3, blockData(1, 3, bs), false);
        const big = Buffer.concat(Array.from({ length: 6 }, (_, i) => blockData(2, i, bs)));
        await write(d, 0, big, false); // 6 blocks > a 2-block cache, overlapping the dirty block
        assert.ok((await read(d, 0, 6)).equals(big));
        await write(d, 8, blockData(3, 8, bs), false);
        assert.equal(d.dirtyBlocks, 1);
        d.powerCut();
        await d.close();
        const image = readFileSync(path);
        for (let i = 0; i < 6; i++) assert.ok(imageBlock(image, i, bs).equals(big.subarray(i * bs, (i + 1) * bs)), `block ${i}`);
        assert.ok(imageBlock(image, 8, bs).equals(Buffer.alloc(bs)), 'the small write stayed in the cache and was lost');
      } finally {
        await d.close();
      }
    });

    it('a power cut in the middle of a write-back neither throws nor leaves the cache behind', async () => {
      const bs = 512;
      const path = newImage('midflush.mo', bs, 256);
      for (const ticks of [0, 1, 2, 3, 5, 8]) {
        const d = await EmulatedDrive.open(path, { cache: { maxDirtyBytes: 128 * bs } });
        try {
          const before = readFileSync(path);
          // 100 dirty blocks in separate runs: the write-back is 100 writev calls, each one an await.
          const written = new Map<number, Buffer>();
          for (let k = 0; k < 100; k++) {
            const lba = 2 * k;
            const data = blockData(1000 + ticks * 100 + k, lba, bs);
            written.set(lba, data);
            await write(d, lba, data, false);
          }
          const sync = exec(d, cdb.synchronizeCache10());
          for (let k = 0; k < ticks; k++) await new Promise((r) => setImmediate(r));
          d.powerCut();
          const r = await sync; // resolves (GOOD, or NO_CONNECT if it never started): it does not reject
          assert.ok(r.hostStatus === HostStatus.OK || r.hostStatus === HostStatus.NO_CONNECT, `host status ${r.hostStatus}`);
          d.powerOn();
          assert.deepEqual(senseOf(await exec(d, cdb.testUnitReady())), [6, 0x29, 0x01]);
          assert.equal(d.dirtyBlocks, 0);
          const after = await read(d, 0, 256);
          const image = readFileSync(path);
          for (const [lba, data] of written) {
            const got = after.subarray(lba * bs, (lba + 1) * bs);
            assert.ok(got.equals(data) || got.equals(imageBlock(before, lba, bs)), `LBA ${lba}: old or new data`);
            assert.ok(got.equals(imageBlock(image, lba, bs)), `LBA ${lba}: the drive reads the image, nothing cached`);
          }
          // The drive carries on: cached writes and a write-back work after the cut.
          await write(d, 1, blockData(9, 1, bs), false);
          await ok(d, cdb.synchronizeCache10());
          assert.ok(imageBlock(readFileSync(path), 1, bs).equals(blockData(9, 1, bs)));
        } finally {
          await d.close();
        }
      }
    });
  });

  describe('random operation sequences against a model', () => {
    const configs: Array<{ bs: 512 | 2048; blockCount: number; cacheBlocks?: number; maxBlocks: number }> = [
      { bs: 512, blockCount: 256, cacheBlocks: 3, maxBlocks: 10 },
      { bs: 2048, blockCount: 192, cacheBlocks: 4, maxBlocks: 10 },
      { bs: 512, blockCount: 256, maxBlocks: 32 },
      { bs: 2048, blockCount: 192, maxBlocks: 32 },
    ];
    for (const cfg of configs) {
      const cacheName = cfg.cacheBlocks ? `a ${cfg.cacheBlocks}-block cache` : 'the default cache';
      it(`block size ${cfg.bs}, ${cacheName}: reads match the model, nothing throws, close and power cut keep what they must`, async () => {
        const cache = cfg.cacheBlocks ? { maxDirtyBytes: cfg.cacheBlocks * cfg.bs } : {};
        let run = 0;
        await fc.assert(
          fc.asyncProperty(fc.array(opArb(cfg.blockCount, cfg.maxBlocks), { minLength: 1, maxLength: 60, size: 'max' }), async (ops) => {
            const path = newImage(`prop-${run++}.mo`, cfg.bs, cfg.blockCount);
            const m = new Model(cfg.bs);
            let d = await EmulatedDrive.open(path, { cache });
            let serial = 0;
            try {
              for (const [i, op] of ops.entries()) {
                const where = `op ${i} ${showOp(op)}`;
                switch (op.kind) {
                  case 'write': {
                    serial++;
                    const data = Buffer.concat(Array.from({ length: op.blocks }, (_, j) => blockData(serial, op.lba + j, cfg.bs)));
                    await write(d, op.lba, data, op.fua);
                    m.write(op.lba, data, op.fua);
                    if (cfg.cacheBlocks) assert.ok(d.dirtyBlocks <= cfg.cacheBlocks, `${where}: ${d.dirtyBlocks} dirty blocks in a ${cfg.cacheBlocks}-block cache`);
                    if (op.fua) {
                      const image = readFileSync(path);
                      for (let j = 0; j < op.blocks; j++) {
                        assert.ok(imageBlock(image, op.lba + j, cfg.bs).equals(data.subarray(j * cfg.bs, (j + 1) * cfg.bs)), `${where}: FUA data is on the image`);
                      }
                    }
                    break;
                  }
                  case 'read': {
                    const got = await read(d, op.lba, op.blocks);
                    const want = m.range(op.lba, op.blocks);
                    for (let j = 0; j < op.blocks; j++) {
                      const g = got.subarray(j * cfg.bs, (j + 1) * cfg.bs);
                      const w = want.subarray(j * cfg.bs, (j + 1) * cfg.bs);
                      if (!g.equals(w)) assert.fail(`${where}: LBA ${op.lba + j} reads write #${g.readUInt32BE(0)}, expected #${w.readUInt32BE(0)}`);
                    }
                    break;
                  }
                  case 'flush': {
                    await ok(d, cdb.synchronizeCache10());
                    assert.equal(d.dirtyBlocks, 0, `${where}: nothing dirty after SYNCHRONIZE CACHE`);
                    m.flush();
                    m.checkImage(readFileSync(path), cfg.blockCount, where);
                    break;
                  }
                  case 'reopen': {
                    await d.close();
                    m.flush();
                    m.checkImage(readFileSync(path), cfg.blockCount, `${where} (image after a clean close)`);
                    d = await EmulatedDrive.open(path, { cache });
                    break;
                  }
                  case 'power-cycle': {
                    d.powerCut();
                    assert.equal((await exec(d, cdb.testUnitReady())).hostStatus, HostStatus.NO_CONNECT);
                    m.powerCut(readFileSync(path), cfg.blockCount);
                    d.powerOn();
                    assert.deepEqual(senseOf(await exec(d, cdb.testUnitReady())), [6, 0x29, 0x01], `${where}: POWER ON unit attention`);
                    assert.equal(d.dirtyBlocks, 0, `${where}: the cache is empty after the power cut`);
                    break;
                  }
                  case 'power-cut-reopen': {
                    d.powerCut();
                    await d.close();
                    m.powerCut(readFileSync(path), cfg.blockCount);
                    d = await EmulatedDrive.open(path, { cache });
                    break;
                  }
                }
              }
              // Every block, through the drive, then on the image after a clean close.
              const all = await read(d, 0, cfg.blockCount);
              for (let lba = 0; lba < cfg.blockCount; lba++) {
                const g = all.subarray(lba * cfg.bs, (lba + 1) * cfg.bs);
                if (!g.equals(m.get(lba))) assert.fail(`final read: LBA ${lba} reads write #${g.readUInt32BE(0)}, expected #${m.get(lba).readUInt32BE(0)}`);
              }
              await d.close();
              m.flush();
              m.checkImage(readFileSync(path), cfg.blockCount, 'image after the final clean close');
              d = await EmulatedDrive.open(path, { cache });
              const again = await read(d, 0, cfg.blockCount);
              assert.ok(again.equals(m.range(0, cfg.blockCount)), 'reopened drive reads the model');
            } finally {
              await d.close();
            }
          }),
          { numRuns: 40 },
        );
      });
    }
  });
});
