/**
 * Authoring a master [patent: CD-ROM 11 holds SIDi and EKd(DATA); CD-ROM 60 holds DID and EKa(Data)]:
 * the publisher encrypts each program under its content key and lays the ISO 9660 image out with
 * the catalog. Written to `OUT.partial`, synced, then renamed, so a failed build leaves no half image.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp, statSync } from 'node:fs';
import { FormatError, UsageError } from '../errors.js';
import { validateContentId, type Scheme } from '../domain/index.js';
import { createStreamHeader, encryptedSize, encryptStream, Purpose, streamIdFor } from '../crypto/stream-aead.js';
import { CATALOG_FORMAT, CATALOG_PATH, encodeCatalog, type CatalogEntry, type MasterCatalog } from '../formats/catalog.js';
import { layoutIso, SECTOR } from '../formats/iso9660.js';

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
  const catalogSize = encodeCatalog(catalog).length;
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
    const catBytes = encodeCatalog(catalog);
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
