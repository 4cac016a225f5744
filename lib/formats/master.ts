/**
 * The master CD-ROM [patent: CD-ROM 11 holds SIDi and EKd(DATA); CD-ROM 60 holds DID and EKa(Data)]:
 * an ISO 9660 volume with a catalog file and the encrypted programs. The publisher builds it;
 * the copying station reads it only through the CD-ROM drive's SCSI READ (a BlockDevice).
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp, statSync } from 'node:fs';
import { FormatError, UsageError } from '../errors.js';
import { createStreamHeader, decryptStream, encryptedSize, encryptStream, Purpose, streamIdFor } from '../crypto/stream-aead.js';
import type { BlockDevice, StreamOptions } from '../scsi/device-api.js';
import type { Scheme } from '../center/types.js';
import { layoutIso, lookupPath, readVolume, SECTOR, type IsoVolume, type ReadSectors } from './iso9660.js';

export const CATALOG_PATH = '/MOCOPY.CAT';
export const CATALOG_FORMAT = 'mocopy-master-catalog';
const MAX_CATALOG_BYTES = 4 << 20;

export interface CatalogEntry {
  contentId: string;
  name: string;
  /** Plaintext size of the program. */
  size: number;
  /** Size of the encrypted program file. */
  encryptedSize: number;
  schemes: Scheme[];
  /** SHA-256 of the encrypted program file, hex. */
  sha256: string;
  /** ISO path of the encrypted program. */
  path: string;
}

export interface MasterCatalog {
  format: typeof CATALOG_FORMAT;
  version: 1;
  title: string;
  created: string;
  contents: CatalogEntry[];
}

const CONTENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function validateContentId(id: string): string {
  if (typeof id !== 'string' || !CONTENT_ID.test(id)) {
    throw new UsageError(`content ID "${id}" is not valid: use 1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit`);
  }
  return id;
}

export interface MasterContentSpec {
  contentId: string;
  name: string;
  sourcePath: string;
  /** Ka (= Kd): the key the program is encrypted with on the master. */
  key: Uint8Array;
  schemes: Scheme[];
}

export interface BuildMasterResult {
  catalog: MasterCatalog;
  totalSectors: number;
}

export async function buildMaster(o: { out: string; title?: string; contents: MasterContentSpec[]; onProgress?: (bytes: number, total: number) => void }): Promise<BuildMasterResult> {
  if (o.contents.length === 0) throw new UsageError('a master needs at least one --content');
  if (o.contents.length > 9999) throw new UsageError('a master holds at most 9999 contents');
  const ids = new Set<string>();
  const planned = o.contents.map((c, i) => {
    validateContentId(c.contentId);
    if (ids.has(c.contentId)) throw new UsageError(`content ID ${c.contentId} appears twice`);
    ids.add(c.contentId);
    if (c.schemes.length === 0) throw new UsageError(`content ${c.contentId}: no scheme allowed`);
    let size: number;
    try {
      size = statSync(c.sourcePath).size;
    } catch (e) {
      throw new UsageError(`content ${c.contentId}: cannot read ${c.sourcePath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return { ...c, size, encSize: encryptedSize(size), path: `/PROGRAMS/P${String(i + 1).padStart(4, '0')}.ENC` };
  });
  // The catalog's size must be known for the layout; the hashes are filled in after encryption,
  // with fixed-width fields so its length does not change.
  const entries: CatalogEntry[] = planned.map((p) => ({
    contentId: p.contentId, name: p.name, size: p.size, encryptedSize: p.encSize, schemes: [...p.schemes].sort(),
    sha256: '0'.repeat(64), path: p.path,
  }));
  const catalog: MasterCatalog = { format: CATALOG_FORMAT, version: 1, title: o.title ?? 'MOCOPY MASTER', created: new Date().toISOString(), contents: entries };
  const catalogSize = Buffer.byteLength(JSON.stringify(catalog, null, 1));
  const layout = layoutIso([{ path: CATALOG_PATH, size: catalogSize }, ...planned.map((p) => ({ path: p.path, size: p.encSize }))], { volumeId: o.title ?? 'MOCOPY_MASTER', application: 'MOCOPY' });
  const tmp = `${o.out}.partial`;
  const fh = await fsp.open(tmp, 'w', 0o644);
  const total = planned.reduce((n, p) => n + p.size, 0);
  let done = 0;
  try {
    await fh.truncate(layout.totalSectors * SECTOR);
    for (const m of layout.metadata) await fh.write(m.bytes, 0, m.bytes.length, m.lba * SECTOR);
    for (const [i, p] of planned.entries()) {
      const file = layout.files.find((f) => f.path === p.path)!;
      const header = createStreamHeader({ purpose: Purpose.MASTER, plainLength: p.size, streamId: streamIdFor(p.contentId) });
      const hash = createHash('sha256');
      let pos = file.lba * SECTOR;
      const src = createReadStream(p.sourcePath, { highWaterMark: 1 << 20 });
      async function* counted() {
        for await (const b of src as AsyncIterable<Buffer>) {
          done += b.length;
          o.onProgress?.(done, total);
          yield b;
        }
      }
      for await (const chunk of encryptStream(p.key, header, counted())) {
        hash.update(chunk);
        await fh.write(chunk, 0, chunk.length, pos);
        pos += chunk.length;
      }
      if (pos - file.lba * SECTOR !== p.encSize) throw new FormatError(`content ${p.contentId}: ${p.sourcePath} changed size while it was being read`);
      entries[i]!.sha256 = hash.digest('hex');
    }
    const catBytes = Buffer.from(JSON.stringify(catalog, null, 1));
    if (catBytes.length !== catalogSize) throw new Error('catalog size changed during the build');
    await fh.write(catBytes, 0, catBytes.length, layout.files[0]!.lba * SECTOR);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await fsp.rename(tmp, o.out);
  return { catalog, totalSectors: layout.totalSectors };
}

// ---------------------------------------------------------------------------- reading through a drive

function sectorReader(device: BlockDevice): ReadSectors {
  return (lba, count) => device.read(lba, count);
}

export interface OpenedMaster {
  device: BlockDevice;
  volume: IsoVolume;
  catalog: MasterCatalog;
}

function parseCatalog(bytes: Buffer, where: string): MasterCatalog {
  let c: unknown;
  try {
    c = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new FormatError(`${where}: the master catalog is not valid JSON (${(e as Error).message})`);
  }
  const cat = c as MasterCatalog;
  if (!cat || cat.format !== CATALOG_FORMAT || cat.version !== 1 || !Array.isArray(cat.contents)) {
    throw new FormatError(`${where}: not a mocopy master catalog (format/version)`);
  }
  for (const [i, e] of cat.contents.entries()) {
    const bad = (f: string) => new FormatError(`${where}: catalog entry ${i}: bad ${f}`);
    if (typeof e.contentId !== 'string' || !CONTENT_ID.test(e.contentId)) throw bad('contentId');
    if (typeof e.name !== 'string') throw bad('name');
    if (!Number.isSafeInteger(e.size) || e.size < 0) throw bad('size');
    if (e.encryptedSize !== encryptedSize(e.size)) throw bad('encryptedSize');
    if (!Array.isArray(e.schemes) || e.schemes.length === 0 || !e.schemes.every((s) => s === 'a' || s === 'b')) throw bad('schemes');
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) throw bad('sha256');
    if (typeof e.path !== 'string' || !e.path.startsWith('/')) throw bad('path');
  }
  return cat;
}

/** Reads the ISO volume and the catalog through the drive. */
export async function openMaster(device: BlockDevice): Promise<OpenedMaster> {
  const cap = await device.capacity();
  if (cap.blockSize !== SECTOR) throw new FormatError(`${device.spec}: a master is read in 2048-byte sectors; this medium has ${cap.blockSize}-byte blocks`);
  const read = sectorReader(device);
  const volume = await readVolume(read, cap.blockCount);
  const entry = await lookupPath(read, volume, CATALOG_PATH).catch((e) => {
    throw new FormatError(`${device.spec}: this disc is not a mocopy master (no ${CATALOG_PATH.slice(1)} catalog)`, { cause: e });
  });
  if (entry.isDir || entry.size > MAX_CATALOG_BYTES) throw new FormatError(`${device.spec}: bad catalog file`);
  const buf = Buffer.concat(await Promise.all(entry.extents.map((x) => device.read(x.lba, Math.max(1, Math.ceil(x.size / SECTOR))).then((b) => b.subarray(0, x.size)))));
  return { device, volume, catalog: parseCatalog(buf, device.spec) };
}

export function findContent(master: OpenedMaster, contentId: string): CatalogEntry {
  const e = master.catalog.contents.find((c) => c.contentId === contentId);
  if (!e) {
    const known = master.catalog.contents.map((c) => c.contentId).join(', ');
    throw new UsageError(`content ${contentId} is not on the master ${master.device.spec} (it holds: ${known || 'nothing'})`);
  }
  return e;
}

/**
 * Streams the encrypted program EK(Data) from the master drive, verifying its SHA-256 against the catalog
 * at the end (a damaged master is reported as such, before anything is committed).
 */
export async function* readMasterProgram(master: OpenedMaster, entry: CatalogEntry, opts: StreamOptions = {}): AsyncGenerator<Buffer> {
  const read = sectorReader(master.device);
  const file = await lookupPath(read, master.volume, entry.path);
  if (file.size !== entry.encryptedSize) throw new FormatError(`${master.device.spec}: ${entry.path} is ${file.size} bytes, the catalog says ${entry.encryptedSize}`);
  const hash = createHash('sha256');
  for (const x of file.extents) {
    let left = x.size;
    const sectors = Math.ceil(x.size / SECTOR);
    for await (const b of master.device.readStream(x.lba, sectors, opts)) {
      const piece = b.length > left ? b.subarray(0, left) : b;
      left -= piece.length;
      hash.update(piece);
      yield piece;
      if (left <= 0) break;
    }
  }
  if (hash.digest('hex') !== entry.sha256) {
    throw new FormatError(`${master.device.spec}: the program ${entry.contentId} on the master does not match its catalog hash (damaged master or read error)`);
  }
}

/** Decrypts the master's program with Ka (= Kd). */
export function decryptMasterProgram(key: Uint8Array, master: OpenedMaster, entry: CatalogEntry, opts: StreamOptions = {}): AsyncGenerator<Buffer> {
  return decryptStream(key, readMasterProgram(master, entry, opts), { streamId: streamIdFor(entry.contentId), purpose: Purpose.MASTER });
}
