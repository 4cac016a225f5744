/**
 * Hostile masters (issue 17): an ISO 9660 image crafted to exhaust the station's memory or time
 * while it reads the catalog. The reader's limits (docs/master.md) must turn each one into a
 * FormatError (exit code 6) after reading a bounded number of sectors.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { FormatError } from '../lib/errors.js';
import { encodeCatalog, CATALOG_FORMAT, MAX_CATALOG_BYTES } from '../lib/formats/catalog.js';
import * as iso from '../lib/formats/iso9660.js';
import { openMaster } from '../lib/master/index.js';
import type { BlockDevice } from '../lib/scsi/device-api.js';
import { makeWorld, type World } from './helpers/fixtures.js';

const ROOT = resolve(import.meta.dirname, '..');
const SECTOR = 2048;
const PVD = 16 * SECTOR;

// ---------------------------------------------------------------------------- building records by hand
function both32(b: Buffer, off: number, v: number): void {
  b.writeUInt32LE(v, off);
  b.writeUInt32BE(v, off + 4);
}

/** One directory record (ECMA-119 9.1). `name` '\0' is '.', '\x01' is '..'. */
function rec(name: string, lba: number, size: number, flags = 0): Buffer {
  const n = Buffer.from(name, 'latin1');
  const len = 33 + n.length + (n.length % 2 === 0 ? 1 : 0);
  const r = Buffer.alloc(len);
  r[0] = len;
  both32(r, 2, lba);
  both32(r, 10, size);
  r[25] = flags;
  r.writeUInt16LE(1, 28);
  r.writeUInt16BE(1, 30);
  r[32] = n.length;
  n.copy(r, 33);
  return r;
}
const DIR = 0x02;
const MULTI = 0x80;

/** Packs records into whole sectors (the writer's own packing, so a record never crosses a sector boundary). */
function pack(records: Buffer[]): Buffer {
  return Buffer.concat(iso.packRecords(records));
}

/** A sparse volume in memory: sectors not written read as zeros. Counts what is read. */
class SparseVolume {
  readonly sectors = new Map<number, Buffer>();
  reads: Array<{ lba: number; count: number }> = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(public totalSectors: number) {}
  put(lba: number, bytes: Buffer): void {
    for (let i = 0; i * SECTOR < bytes.length; i++) {
      const s = Buffer.alloc(SECTOR);
      bytes.copy(s, 0, i * SECTOR, Math.min(bytes.length, (i + 1) * SECTOR));
      this.sectors.set(lba + i, s);
    }
  }
  /** A directory at `lba` with '.', '..' and the given records; returns its record for the parent. */
  dir(name: string, lba: number, records: Buffer[], size?: number): Buffer {
    const bytes = pack([rec('\0', lba, 0, DIR), rec('\x01', lba, 0, DIR), ...records]);
    const dirSize = size ?? bytes.length;
    both32(bytes, 10, dirSize); // '.' carries the directory's own size
    this.put(lba, bytes);
    return rec(name, lba, dirSize, DIR);
  }
  /** The Primary Volume Descriptor and terminator, with the given root record. */
  pvd(root: Buffer, opts: { pathTableBytes?: number; pathTableLba?: number } = {}): void {
    const p = Buffer.alloc(SECTOR);
    p[0] = 1;
    p.write('CD001', 1, 'latin1');
    p[6] = 1;
    p.write('SYNTHETIC'.padEnd(32), 40, 'latin1');
    both32(p, 80, this.totalSectors);
    p.writeUInt16LE(SECTOR, 128);
    p.writeUInt16BE(SECTOR, 130);
    both32(p, 132, opts.pathTableBytes ?? 10);
    p.writeUInt32LE(opts.pathTableLba ?? 18, 140);
    p.writeUInt32BE(opts.pathTableLba ?? 19, 148);
    const r = Buffer.alloc(34);
    root.copy(r, 0, 0, 34);
    r[0] = 34;
    r[32] = 1;
    r[33] = 0;
    r.copy(p, 156);
    this.put(16, p);
    const t = Buffer.alloc(SECTOR);
    t[0] = 255;
    t.write('CD001', 1, 'latin1');
    t[6] = 1;
    this.put(17, t);
  }
  read: iso.ReadSectors = async (lba, count) => {
    this.reads.push({ lba, count });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setImmediate(r));
      const out = Buffer.alloc(count * SECTOR);
      for (let i = 0; i < count; i++) this.sectors.get(lba + i)?.copy(out, i * SECTOR);
      return out;
    } finally {
      this.inFlight--;
    }
  };
  sectorsRead(): number {
    return this.reads.reduce((n, r) => n + r.count, 0);
  }
  /** Just enough of a BlockDevice for openMaster. */
  device(): BlockDevice {
    return {
      spec: 'fake:hostile',
      capacity: async () => ({ blockSize: SECTOR, blockCount: this.totalSectors, bytes: this.totalSectors * SECTOR }),
      read: (lba: number, count: number) => this.read(lba, count),
    } as unknown as BlockDevice;
  }
}

/** The IsoEntry a directory's record in its parent describes. */
function entryOf(r: Buffer, name: string): iso.IsoEntry {
  const lba = r.readUInt32LE(2);
  const size = r.readUInt32LE(10);
  return { name, isDir: !!(r[25]! & DIR), extents: [{ lba, size }], size };
}

const isFormatError = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof FormatError, `expected FormatError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
  assert.match(e.message, re);
  return true;
};

// ---------------------------------------------------------------------------- the crafted master of issue 17
/**
 * Rewrites a valid master so that its root directory holds `chain` zero-length multi-extent records named
 * MOCOPY.CAT;1 before the real catalog record. The new root directory (about 16 MB for 360,000 records)
 * is appended at the end of the image; the PVD's root record, volume size and path tables point to it.
 */
function craftChainedCatalog(good: Buffer, chain: number): Buffer {
  const rootLba = good.readUInt32LE(PVD + 156 + 2);
  const rootSize = good.readUInt32LE(PVD + 156 + 10);
  const old = good.subarray(rootLba * SECTOR, rootLba * SECTOR + rootSize);
  const kept: Buffer[] = [];
  let cat: Buffer | undefined;
  for (let off = 0; off < old.length;) {
    const len = old[off]!;
    if (len === 0) { off = (Math.floor(off / SECTOR) + 1) * SECTOR; continue; }
    const r = Buffer.from(old.subarray(off, off + len));
    off += len;
    const name = r.toString('latin1', 33, 33 + r[32]!);
    if (name === 'MOCOPY.CAT;1') cat = r;
    else if (r[32] === 1 && (r[33] === 0 || r[33] === 1)) continue; // '.' and '..' are rewritten below
    else kept.push(r);
  }
  assert.ok(cat, 'the master has a MOCOPY.CAT;1 record');
  const zero = Buffer.from(cat);
  both32(zero, 10, 0);
  zero[25] = zero[25]! | MULTI;
  const newLba = Math.ceil(good.length / SECTOR);
  const recordsLen = (dirSize: number) => {
    const self = rec('\0', newLba, dirSize, DIR);
    return pack([self, rec('\x01', newLba, dirSize, DIR), ...kept, ...new Array<Buffer>(chain).fill(zero), cat]);
  };
  const size = recordsLen(0).length;
  const dir = recordsLen(size);
  assert.ok(dir.length <= 16 << 20, 'the crafted directory fits the 16 MiB directory size limit');
  const out = Buffer.concat([good, Buffer.alloc(newLba * SECTOR - good.length), dir]);
  const total = newLba + dir.length / SECTOR;
  both32(out, PVD + 80, total);
  both32(out, PVD + 156 + 2, newLba);
  both32(out, PVD + 156 + 10, dir.length);
  // The root's entry is first in both path tables.
  out.writeUInt32LE(newLba, out.readUInt32LE(PVD + 140) * SECTOR + 2);
  out.writeUInt32BE(newLba, out.readUInt32BE(PVD + 148) * SECTOR + 2);
  return out;
}

/** Peak RSS in KiB and exit code of `mocopy catalog emu-cd:PATH --json`, run from source. */
function runCatalog(path: string): { code: number; seconds: number; maxRssKiB: number; stdout: string; stderr: string } {
  const args = ['--import', 'tsx', 'cli/main.ts', 'catalog', `emu-cd:${path}`, '--json'];
  const env = { ...process.env, MOCOPY_CONFIG: '/nonexistent/mocopy.json' };
  const t0 = process.hrtime.bigint();
  if (existsSync('/usr/bin/time')) {
    const r = spawnSync('/usr/bin/time', ['-v', process.execPath, ...args], { cwd: ROOT, encoding: 'utf8', env, timeout: 170_000, maxBuffer: 64 << 20 });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
    assert.ok(m, `no RSS figure from /usr/bin/time -v (status ${r.status}, signal ${r.signal}): ${r.stderr.slice(-2000)}`);
    return { code: r.status ?? -1, seconds, maxRssKiB: Number(m[1]), stdout: r.stdout, stderr: r.stderr };
  }
  // No GNU time: run the CLI's main() in a node process that reports its own peak RSS (maxRSS is in KiB).
  const script = `import { main } from './cli/main.ts';
const code = await main(['node', 'mocopy', 'catalog', ${JSON.stringify(`emu-cd:${path}`)}, '--json']);
process.stderr.write('maxRSS ' + process.resourceUsage().maxRSS + '\\n');
process.exit(code);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env, timeout: 170_000, maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = /maxRSS (\d+)/.exec(r.stderr);
  assert.ok(m, `no RSS figure (status ${r.status}, signal ${r.signal}): ${r.stderr.slice(-2000)}`);
  return { code: r.status ?? -1, seconds, maxRssKiB: Number(m[1]), stdout: r.stdout, stderr: r.stderr };
}

describe('hostile master (issue 17)', () => {
  let w: World;
  before(async () => { w = await makeWorld({ programs: { 'APP-1': { size: 10_000 } } }); });
  after(() => w.cleanup());

  it('a catalog chained over 360,000 zero-length extents: `mocopy catalog` exits 6 with bounded memory', function () {
    this.timeout(180_000);
    const crafted = join(w.dir, 'chained-catalog.iso');
    const img = craftChainedCatalog(readFileSync(w.masterIso), 360_000);
    writeFileSync(crafted, img);
    const r = runCatalog(crafted);
    console.log(`      crafted master: ${(img.length / 1e6).toFixed(1)} MB; exit code ${r.code}, ${r.seconds.toFixed(2)} s, peak RSS ${(r.maxRssKiB / 1024).toFixed(0)} MiB`);
    console.log(`      ${r.stderr.split('\n')[0]}`);
    assert.equal(r.code, 6, `exit code (stderr: ${r.stderr.slice(0, 1000)})`);
    assert.match(r.stderr, /MOCOPY\.CAT.*more than \d+ extents/);
    assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).error.code, 'E_FORMAT');
    assert.ok(r.maxRssKiB < 256 * 1024, `peak RSS ${r.maxRssKiB} KiB is over 256 MiB`);
  });

  it('the crafted root directory itself is sound: a short chain still reads as one catalog', async () => {
    // Same construction with a chain under the limit: the station reads the master and skips the zero-length extents.
    const crafted = join(w.dir, 'short-chain.iso');
    writeFileSync(crafted, craftChainedCatalog(readFileSync(w.masterIso), iso.MAX_EXTENTS_PER_FILE - 1));
    const { openDevice } = await import('../lib/drives/open.js');
    const dev = await openDevice(`emu-cd:${crafted}`);
    try {
      const m = await openMaster(dev);
      assert.deepEqual(m.catalog.contents.map((c) => c.contentId), ['APP-1']);
    } finally {
      await dev.close();
    }
  });
});

describe('ISO 9660 reader limits', () => {
  it('exports its limits as named constants', () => {
    assert.equal(iso.MAX_DEPTH, 16);
    assert.equal(iso.MAX_DIR_BYTES, 16 << 20);
    assert.equal(iso.MAX_DIR_RECORDS, 16_384);
    assert.equal(iso.MAX_EXTENTS_PER_FILE, 64);
    assert.equal(iso.MAX_LOOKUP_RECORDS, 32_768);
    assert.equal(iso.MAX_LOOKUP_DIR_BYTES, 32 << 20);
    assert.equal(iso.MAX_PATH_TABLE_BYTES, 1 << 20);
  });

  it('a master at its largest (9999 programs) is well within every limit', async function () {
    this.timeout(60_000); // layoutIso of 9999 files takes a few seconds
    const files = [{ path: '/MOCOPY.CAT', size: 3 << 20 }, ...Array.from({ length: 9999 }, (_, i) => ({ path: `/PROGRAMS/P${String(i + 1).padStart(4, '0')}.ENC`, size: 100 }))];
    const layout = iso.layoutIso(files, { volumeId: 'BIG_MASTER' });
    const v = new SparseVolume(layout.totalSectors);
    for (const m of layout.metadata) v.put(m.lba, m.bytes);
    const vol = await iso.readVolume(v.read, v.totalSectors);
    const programs = (await iso.readDirectory(v.read, vol.root, v.totalSectors)).find((e) => e.name === 'PROGRAMS')!;
    assert.ok(programs.size < iso.MAX_DIR_BYTES / 16, `/PROGRAMS is ${programs.size} bytes`);
    v.reads = [];
    assert.equal((await iso.lookupPath(v.read, vol, '/PROGRAMS/P9999.ENC')).size, 100);
    assert.ok(v.sectorsRead() * SECTOR < iso.MAX_LOOKUP_DIR_BYTES / 16);
    console.log(`      /PROGRAMS with 9999 programs: ${programs.size} bytes (${(programs.size / 1024).toFixed(0)} KiB)`);
  });

  describe('records per directory (MAX_DIR_RECORDS)', () => {
    const files = (n: number) => Array.from({ length: n }, (_, i) => rec(`F${String(i).padStart(5, '0')}.BIN;1`, 30, 0));
    it('reads a directory of exactly MAX_DIR_RECORDS records', async () => {
      const v = new SparseVolume(100_000);
      const d = v.dir('BIG', 40, files(iso.MAX_DIR_RECORDS - 2)); // '.' and '..' count too
      const entries = await iso.readDirectory(v.read, entryOf(d, 'BIG'), v.totalSectors);
      assert.equal(entries.length, iso.MAX_DIR_RECORDS - 2);
    });
    it('refuses one record more, naming the directory and the limit', async () => {
      const v = new SparseVolume(100_000);
      const d = v.dir('BIG', 40, files(iso.MAX_DIR_RECORDS - 1));
      await assert.rejects(iso.readDirectory(v.read, entryOf(d, 'BIG'), v.totalSectors),
        isFormatError(/directory BIG has more than 16384 records \(MAX_DIR_RECORDS\)/));
    });
  });

  describe('extents per file (MAX_EXTENTS_PER_FILE)', () => {
    /** CHAIN.BIN as `zeros` zero-length extents then one of 100 bytes, behind many sectors of padding records. */
    const chained = (zeros: number) => {
      const v = new SparseVolume(100_000);
      const chain = [...Array.from({ length: zeros }, () => rec('CHAIN.BIN;1', 50, 0, MULTI)), rec('CHAIN.BIN;1', 50, 100)];
      const filler = Array.from({ length: 4000 }, (_, i) => rec(`Z${String(i).padStart(5, '0')}.BIN;1`, 51, 0));
      const d = v.dir('D', 40, [...chain, ...filler]);
      return { v, d: entryOf(d, 'D') };
    };
    it('merges a chain of MAX_EXTENTS_PER_FILE extents, zero-length ones included', async () => {
      const { v, d } = chained(iso.MAX_EXTENTS_PER_FILE - 1);
      const e = (await iso.readDirectory(v.read, d, v.totalSectors)).find((x) => x.name === 'CHAIN.BIN;1')!;
      assert.equal(e.extents.length, iso.MAX_EXTENTS_PER_FILE);
      assert.equal(e.size, 100);
    });
    it('refuses a chain of one more zero-length extent, before reading the rest of the directory', async () => {
      const { v, d } = chained(iso.MAX_EXTENTS_PER_FILE);
      await assert.rejects(iso.readDirectory(v.read, d, v.totalSectors), isFormatError(/file D\/CHAIN\.BIN has more than 64 extents \(MAX_EXTENTS_PER_FILE, zero-length extents included\)/));
      assert.ok(v.sectorsRead() < d.size / SECTOR, `read ${v.sectorsRead()} of ${d.size / SECTOR} directory sectors`);
    });
    it('refuses a chain that never ends (last record still flagged multi-extent)', async () => {
      const v = new SparseVolume(1000);
      const d = v.dir('D', 40, [rec('A.BIN;1', 50, 2048, MULTI), rec('B.BIN;1', 51, 10)]);
      await assert.rejects(iso.readDirectory(v.read, entryOf(d, 'D'), v.totalSectors), isFormatError(/A\.BIN.*multi-extent/));
    });
  });

  describe('directory size (MAX_DIR_BYTES)', () => {
    it('refuses a directory claiming more than MAX_DIR_BYTES without reading it', async () => {
      const v = new SparseVolume(100_000);
      const d: iso.IsoEntry = { name: 'HUGE', isDir: true, extents: [{ lba: 40, size: iso.MAX_DIR_BYTES + SECTOR }], size: iso.MAX_DIR_BYTES + SECTOR };
      await assert.rejects(iso.readDirectory(v.read, d, v.totalSectors), isFormatError(/directory HUGE claims \d+ bytes.*MAX_DIR_BYTES/));
      assert.equal(v.reads.length, 0);
    });
  });

  describe('path table size (MAX_PATH_TABLE_BYTES)', () => {
    const volume = (pathTableBytes: number) => {
      const v = new SparseVolume(2000);
      v.pvd(v.dir('', 20, []), { pathTableBytes, pathTableLba: 18 });
      return v;
    };
    it('accepts a path table of MAX_PATH_TABLE_BYTES', async () => {
      const v = volume(iso.MAX_PATH_TABLE_BYTES);
      assert.equal((await iso.readVolume(v.read, v.totalSectors)).volumeId, 'SYNTHETIC');
    });
    it('refuses a PVD whose path table is larger', async () => {
      const v = volume(iso.MAX_PATH_TABLE_BYTES + 1);
      await assert.rejects(iso.readVolume(v.read, v.totalSectors), isFormatError(/path table of 1048577 bytes.*MAX_PATH_TABLE_BYTES/));
    });
    it('refuses a path table that lies past the end of the volume', async () => {
      const v = new SparseVolume(2000);
      v.pvd(v.dir('', 20, []), { pathTableBytes: 10, pathTableLba: 5000 });
      await assert.rejects(iso.readVolume(v.read, v.totalSectors), isFormatError(/path table lies past the end/));
    });
  });

  describe('path depth (MAX_DEPTH)', () => {
    /** /D1/D2/.../Dn, each directory one sector, with F.BIN in the deepest. */
    const nested = (n: number) => {
      const v = new SparseVolume(1000);
      let child = [rec('F.BIN;1', 900, 5)];
      for (let i = n; i >= 1; i--) child = [v.dir(`D${i}`, 100 + i, child)];
      v.pvd(v.dir('', 100, child));
      return v;
    };
    it('finds a file at depth MAX_DEPTH', async () => {
      const v = nested(iso.MAX_DEPTH - 1);
      const vol = await iso.readVolume(v.read, v.totalSectors);
      const path = Array.from({ length: iso.MAX_DEPTH - 1 }, (_, i) => `D${i + 1}`).join('/') + '/F.BIN';
      assert.equal((await iso.lookupPath(v.read, vol, `/${path}`)).size, 5);
    });
    it('refuses a path one level deeper', async () => {
      const v = nested(iso.MAX_DEPTH);
      const vol = await iso.readVolume(v.read, v.totalSectors);
      const path = Array.from({ length: iso.MAX_DEPTH }, (_, i) => `D${i + 1}`).join('/') + '/F.BIN';
      v.reads = [];
      await assert.rejects(iso.lookupPath(v.read, vol, `/${path}`), isFormatError(/is deeper than 16 levels \(MAX_DEPTH\)/));
      assert.equal(v.reads.length, 0, 'refused before any directory is read');
    });
  });

  describe('records and directory bytes per lookup (MAX_LOOKUP_RECORDS, MAX_LOOKUP_DIR_BYTES)', () => {
    it('refuses a lookup that walks more than MAX_LOOKUP_RECORDS records in all', async () => {
      const v = new SparseVolume(100_000);
      const many = (tag: string) => Array.from({ length: 12_000 }, (_, i) => rec(`${tag}${String(i).padStart(5, '0')}.BIN;1`, 30, 0));
      const c = v.dir('C', 20_000, many('C'));
      const b = v.dir('B', 10_000, [...many('B'), c]);
      v.pvd(v.dir('', 100, [...many('A'), b]));
      const vol = await iso.readVolume(v.read, v.totalSectors);
      // Each directory alone is within MAX_DIR_RECORDS.
      for (const d of [vol.root, entryOf(b, 'B'), entryOf(c, 'C')]) assert.ok((await iso.readDirectory(v.read, d, v.totalSectors)).length >= 12_000);
      await assert.rejects(iso.lookupPath(v.read, vol, '/B/C/C00001.BIN'), isFormatError(/\/B\/C\/C00001\.BIN: the lookup read more than 32768 directory records \(MAX_LOOKUP_RECORDS\)/));
      await assert.doesNotReject(iso.lookupPath(v.read, vol, '/B/B00001.BIN'));
    });
    it('refuses a lookup that reads more than MAX_LOOKUP_DIR_BYTES of directories', async () => {
      // Directories of MAX_DIR_BYTES that are all padding after their first sector.
      const v = new SparseVolume(100_000);
      const big = iso.MAX_DIR_BYTES;
      const c = v.dir('C', 20_000, [rec('X.BIN;1', 30, 1)], big);
      const b = v.dir('B', 10_000, [c], big);
      v.pvd(v.dir('', 100, [b]));
      const vol = await iso.readVolume(v.read, v.totalSectors);
      await assert.rejects(iso.lookupPath(v.read, vol, '/B/C/X.BIN'), isFormatError(/\/B\/C\/X\.BIN: the lookup read more than 33554432 bytes of directories \(MAX_LOOKUP_DIR_BYTES\)/));
    });
  });

  describe('openMaster reads the catalog extents lazily', () => {
    const catalog = encodeCatalog({ format: CATALOG_FORMAT, version: 1, title: 'T', created: '2024-01-01T00:00:00.000Z', contents: [] });
    it('skips zero-length extents and reads one extent at a time', async () => {
      const v = new SparseVolume(1000);
      // The catalog in three pieces (2048 + 2048 + rest), with zero-length extents pointing at sector 7 in between.
      const a = Buffer.concat([catalog, Buffer.alloc(Math.max(0, 4097 - catalog.length), ' ')]);
      v.put(200, a.subarray(0, 2048));
      v.put(210, a.subarray(2048, 4096));
      v.put(220, a.subarray(4096));
      const recs = [
        rec('MOCOPY.CAT;1', 7, 0, MULTI), rec('MOCOPY.CAT;1', 200, 2048, MULTI), rec('MOCOPY.CAT;1', 7, 0, MULTI),
        rec('MOCOPY.CAT;1', 210, 2048, MULTI), rec('MOCOPY.CAT;1', 7, 0, MULTI), rec('MOCOPY.CAT;1', 220, a.length - 4096),
      ];
      v.pvd(v.dir('', 100, recs));
      const m = await openMaster(v.device());
      assert.equal(m.catalog.title, 'T');
      assert.ok(!v.reads.some((r) => r.lba === 7), 'no zero-length extent was read');
      assert.deepEqual(v.reads.filter((r) => r.lba >= 200).map((r) => r.lba), [200, 210, 220]);
      assert.equal(v.maxInFlight, 1);
    });
    it('refuses a multi-extent catalog larger than MAX_CATALOG_BYTES before reading any of it', async () => {
      const v = new SparseVolume(10_000);
      const part = 3 << 20;
      v.pvd(v.dir('', 100, [rec('MOCOPY.CAT;1', 1000, part, MULTI), rec('MOCOPY.CAT;1', 1000 + part / SECTOR, part)]));
      await assert.rejects(openMaster(v.device()), isFormatError(/fake:hostile: the catalog MOCOPY\.CAT is 6291456 bytes in 2 extents; a catalog is at most 4194304 bytes \(MAX_CATALOG_BYTES\)/));
      assert.ok(!v.reads.some((r) => r.lba >= 1000), 'no catalog extent was read');
      assert.equal(MAX_CATALOG_BYTES, 4 << 20);
    });
    it('reports a limit hit while looking the catalog up as such, not as "not a master"', async () => {
      const v = new SparseVolume(1000);
      v.pvd(v.dir('', 100, Array.from({ length: iso.MAX_EXTENTS_PER_FILE + 1 }, () => rec('MOCOPY.CAT;1', 7, 0, MULTI)).concat(rec('MOCOPY.CAT;1', 200, 10))));
      await assert.rejects(openMaster(v.device()), isFormatError(/^fake:hostile: ISO 9660: file \/MOCOPY\.CAT has more than 64 extents/));
    });
  });
});

describe('hostile master: a catalog whose file is sound but whose content is malformed', function () {
  this.timeout(120_000);
  let w: World;
  before(async () => { w = await makeWorld(); });
  after(() => w.cleanup());

  /** Rewrites the catalog file in place on a copy of the master, same length (JSON allows trailing blanks). */
  function withCatalog(name: string, edit: (cat: Record<string, unknown>) => unknown): string {
    const img = readFileSync(w.masterIso);
    const start = img.indexOf(Buffer.from(`{\n "format": "${CATALOG_FORMAT}"`));
    assert.ok(start > 0, 'catalog found in the image');
    const end = img.indexOf(0, start);
    const cat = JSON.parse(img.subarray(start, end).toString('utf8'));
    const text = Buffer.from(JSON.stringify(edit(cat)));
    assert.ok(text.length <= end - start, 'the crafted catalog fits');
    img.fill(0x20, start, end);
    text.copy(img, start);
    const out = join(w.dir, name);
    writeFileSync(out, img);
    return out;
  }
  const cases: Array<[string, (c: Record<string, unknown>) => unknown]> = [
    ['contents: [null]', (c) => ({ ...c, contents: [null] })],
    ['a size that is a string', (c) => ({ ...c, contents: (c.contents as Array<Record<string, unknown>>).map((e) => ({ ...e, size: 'x' })) })],
    ['a content ID twice', (c) => ({ ...c, contents: [(c.contents as unknown[])[0], (c.contents as unknown[])[0]] })],
    ['a path outside ISO names', (c) => ({ ...c, contents: (c.contents as Array<Record<string, unknown>>).map((e) => ({ ...e, path: '../../etc' })) })],
  ];
  for (const [what, edit] of cases) {
    it(`${what}: catalog exits 6, copy exits 6 before anything is billed`, () => {
      const master = withCatalog(`cat-${what.length}.iso`, edit);
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'catalog', `emu-cd:${master}`], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, MOCOPY_CONFIG: '/nonexistent' } });
      assert.equal(r.status, 6, r.stderr);
      assert.match(r.stderr, /catalog/);
      const disc = w.newDisc(`cat-${what.length}.mo`, 'c0ffee' + what.length.toString(16).padStart(2, '0'));
      const c = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'copy', `emu-cd:${master}`, `emu:${disc}`, '--content', 'APP-1', '--center-db', w.ledger, '--station-key', w.stationKeyPath], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, MOCOPY_CONFIG: '/nonexistent' } });
      assert.equal(c.status, 6, c.stderr);
      const rep = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'center', 'report', '--db', w.ledger, '--json'], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(JSON.parse(rep.stdout).billing.length, 0);
    });
  }
});
