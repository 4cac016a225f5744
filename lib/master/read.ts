/**
 * Reading a master at the copying station: only through the CD-ROM drive's SCSI READ (a BlockDevice),
 * never by mounting it. The ISO volume and the catalog are parsed by lib/formats; this module does the
 * I/O and checks the program against the catalog's hash and the stream format's sizes.
 */
import { createHash } from 'node:crypto';
import { FormatError, UsageError } from '../errors.js';
import { decryptStream, encryptedSize, Purpose, streamIdFor } from '../crypto/stream-aead.js';
import { CATALOG_PATH, decodeCatalog, findCatalogEntry, MAX_CATALOG_BYTES, type CatalogEntry, type MasterCatalog } from '../formats/catalog.js';
import { IsoNotFoundError, lookupPath, readVolume, SECTOR, type IsoEntry, type IsoVolume, type ReadSectors } from '../formats/iso9660.js';
import type { BlockDevice, StreamOptions } from '../scsi/device-api.js';

export interface OpenedMaster {
  device: BlockDevice;
  volume: IsoVolume;
  catalog: MasterCatalog;
}

function sectorReader(device: BlockDevice): ReadSectors {
  return (lba, count) => device.read(lba, count);
}

/**
 * Reads the catalog file's extents one at a time, in order: zero-length extents are not read, and the
 * running size is checked against MAX_CATALOG_BYTES before each read, so a hostile chain of extents
 * costs neither memory nor a flood of commands in flight.
 */
async function readCatalogBytes(device: BlockDevice, entry: IsoEntry): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for (const x of entry.extents) {
    if (x.size === 0) continue;
    total += x.size;
    if (total > MAX_CATALOG_BYTES) throw new FormatError(`${device.spec}: the catalog ${CATALOG_PATH.slice(1)} runs past ${MAX_CATALOG_BYTES} bytes (MAX_CATALOG_BYTES)`);
    const b = await device.read(x.lba, Math.ceil(x.size / SECTOR));
    if (b.length < x.size) throw new FormatError(`${device.spec}: short read of the catalog at sector ${x.lba}`);
    parts.push(b.subarray(0, x.size));
  }
  return Buffer.concat(parts, total);
}

/** Reads the ISO volume and the catalog through the drive. */
export async function openMaster(device: BlockDevice): Promise<OpenedMaster> {
  const cap = await device.capacity();
  if (cap.blockSize !== SECTOR) throw new FormatError(`${device.spec}: a master is read in 2048-byte sectors; this medium has ${cap.blockSize}-byte blocks`);
  const read = sectorReader(device);
  const volume = await readVolume(read, cap.blockCount);
  const entry = await lookupPath(read, volume, CATALOG_PATH).catch((e) => {
    // A volume that breaks one of the reader's limits is reported as such (docs/master.md), not as "no catalog".
    if (e instanceof FormatError && !(e instanceof IsoNotFoundError)) throw new FormatError(`${device.spec}: ${e.message}`, { cause: e });
    throw new FormatError(`${device.spec}: this disc is not a mocopy master (no ${CATALOG_PATH.slice(1)} catalog)`, { cause: e });
  });
  if (entry.isDir) throw new FormatError(`${device.spec}: bad catalog file (${CATALOG_PATH.slice(1)} is a directory)`);
  // Refused on the size the directory records claim, before any of the catalog is read.
  if (entry.size > MAX_CATALOG_BYTES) {
    throw new FormatError(`${device.spec}: the catalog ${CATALOG_PATH.slice(1)} is ${entry.size} bytes in ${entry.extents.length} extent${entry.extents.length === 1 ? '' : 's'}; a catalog is at most ${MAX_CATALOG_BYTES} bytes (MAX_CATALOG_BYTES)`);
  }
  const buf = await readCatalogBytes(device, entry);
  const catalog = decodeCatalog(buf, device.spec);
  for (const [i, e] of catalog.contents.entries()) {
    // The stream format fixes the encrypted size; a catalog that disagrees was not made by `master build`.
    if (e.encryptedSize !== encryptedSize(e.size)) throw new FormatError(`${device.spec}: catalog entry ${i}: bad encryptedSize`);
  }
  return { device, volume, catalog };
}

export function findContent(master: OpenedMaster, contentId: string): CatalogEntry {
  const e = findCatalogEntry(master.catalog, contentId);
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
