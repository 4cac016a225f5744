/**
 * A loaded disc: the image file behind an emulated drive, with the drive's write cache.
 * Writes land in the cache and reach the image only on SYNCHRONIZE CACHE, FUA, a cache
 * overflow (write-back, like a real drive) or a clean close; a power cut drops them. That
 * is what gives the crash-consistency tests above this layer their meaning.
 */
import { promises as fsp, statSync, openSync, readSync, closeSync } from 'node:fs';
import { FormatError } from '../errors.js';
import { decodeMoHeader, isMoHeader, MO_HEADER_SIZE } from './mo-image.js';

export type MediumKind = 'mo' | 'cd';

export interface MediumInfo {
  kind: MediumKind;
  path: string;
  blockSize: number;
  blockCount: number;
  writeProtected: boolean;
  /** MO only: the factory-written medium ID. */
  mediumId?: Buffer;
  /** Byte offset of LBA 0 in the file. */
  dataOffset: number;
}

/** Reads the image's header (if any) and decides what kind of disc it is. */
export function probeImage(path: string, forced?: MediumKind): MediumInfo {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    throw new FormatError(`cannot open image ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { hint: 'create an MO image with `mocopy emu create-mo FILE --medium-id HEX --capacity 640M`' });
  }
  const head = Buffer.alloc(MO_HEADER_SIZE);
  const fd = openSync(path, 'r');
  let n = 0;
  try {
    n = readSync(fd, head, 0, MO_HEADER_SIZE, 0);
  } finally {
    closeSync(fd);
  }
  const looksMo = isMoHeader(head.subarray(0, n));
  if (forced === 'mo' || (forced === undefined && looksMo)) {
    const h = decodeMoHeader(head.subarray(0, n), path);
    const expected = MO_HEADER_SIZE + h.blockCount * h.blockSize;
    if (size < expected) throw new FormatError(`${path}: MO image is truncated (${size} bytes, header says ${expected})`);
    return { kind: 'mo', path, blockSize: h.blockSize, blockCount: h.blockCount, writeProtected: h.writeProtected, mediumId: h.mediumId, dataOffset: MO_HEADER_SIZE };
  }
  if (looksMo) throw new FormatError(`${path} is an MO image, not a CD image`);
  if (size === 0 || size % 2048 !== 0) throw new FormatError(`${path}: a CD image must be a non-empty multiple of 2048 bytes (it is ${size})`);
  return { kind: 'cd', path, blockSize: 2048, blockCount: size / 2048, writeProtected: true, dataOffset: 0 };
}

export interface CacheOptions {
  /** Dirty bytes the drive holds before it writes back on its own (default 8 MiB). */
  maxDirtyBytes?: number;
}

export class Medium {
  readonly info: MediumInfo;
  private fh: fsp.FileHandle | undefined;
  /** Dirty blocks by LBA: views into the cache slab. */
  private dirty = new Map<number, Buffer>();
  /** The drive's cache RAM: written by a bump pointer, emptied by every write-back (no allocation per write). */
  private slab: Buffer | undefined;
  private slabUsed = 0;
  private readonly cacheBytes: number;

  private constructor(info: MediumInfo, fh: fsp.FileHandle, cache: CacheOptions) {
    this.info = info;
    this.fh = fh;
    this.cacheBytes = Math.max(info.blockSize, Math.floor((cache.maxDirtyBytes ?? 8 << 20) / info.blockSize) * info.blockSize);
  }

  static async load(path: string, forced?: MediumKind, cache: CacheOptions = {}): Promise<Medium> {
    const info = probeImage(path, forced);
    const fh = await fsp.open(path, info.kind === 'mo' ? 'r+' : 'r');
    return new Medium(info, fh, cache);
  }

  get dirtyBlocks(): number {
    return this.dirty.size;
  }

  private handle(): fsp.FileHandle {
    if (!this.fh) throw new Error('medium is closed');
    return this.fh;
  }

  /** Reads `blocks` blocks at `lba` into `target` at `offset`, the cache overlaid on the image. */
  async read(lba: number, blocks: number, target: Uint8Array, offset = 0): Promise<void> {
    const bs = this.info.blockSize;
    const len = blocks * bs;
    let done = 0;
    while (done < len) {
      const { bytesRead } = await this.handle().read(target, offset + done, len - done, this.info.dataOffset + lba * bs + done);
      if (bytesRead === 0) {
        target.fill(0, offset + done, offset + len); // sparse tail of an image read as zeros
        break;
      }
      done += bytesRead;
    }
    if (this.dirty.size > 0) {
      for (let i = 0; i < blocks; i++) {
        const d = this.dirty.get(lba + i);
        if (d) target.set(d, offset + i * bs);
      }
    }
  }

  /** Writes into the cache; `fua` writes through to the image at once. */
  async write(lba: number, data: Uint8Array, blocks: number, fua: boolean): Promise<void> {
    const bs = this.info.blockSize;
    if (fua) {
      for (let i = 0; i < blocks; i++) this.dirty.delete(lba + i);
      await this.writeThrough(lba, Buffer.from(data.buffer, data.byteOffset, blocks * bs));
      return;
    }
    const bytes = blocks * bs;
    if (bytes > this.cacheBytes) {
      // Larger than the whole cache: write back what is there, then write through.
      await this.flush();
      await this.writeThrough(lba, Buffer.from(data.buffer, data.byteOffset, bytes));
      return;
    }
    if (this.slabUsed + bytes > this.cacheBytes) await this.flush(); // cache full: the drive writes back on its own
    this.slab ??= Buffer.allocUnsafe(this.cacheBytes);
    const at = this.slabUsed;
    this.slab.set(data.subarray(0, bytes), at);
    this.slabUsed += bytes;
    for (let i = 0; i < blocks; i++) {
      this.dirty.delete(lba + i); // re-inserted: insertion order stays "oldest first"
      this.dirty.set(lba + i, this.slab.subarray(at + i * bs, at + (i + 1) * bs));
    }
  }

  private async writeThrough(lba: number, data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle().write(data, done, data.length - done, this.info.dataOffset + lba * this.info.blockSize + done);
      done += bytesWritten;
    }
  }

  /** Writes every dirty block to the image (coalescing runs, no copies: writev) and makes it durable. */
  async flush(): Promise<void> {
    if (this.dirty.size === 0) return;
    const lbas = [...this.dirty.keys()].sort((a, b) => a - b);
    let i = 0;
    while (i < lbas.length) {
      let j = i;
      while (j + 1 < lbas.length && lbas[j + 1] === lbas[j]! + 1 && j - i < 1023) j++;
      const run = lbas.slice(i, j + 1).map((l) => this.dirty.get(l)!);
      let pos = this.info.dataOffset + lbas[i]! * this.info.blockSize;
      let bufs = run;
      while (bufs.length) {
        const { bytesWritten } = await this.handle().writev(bufs, pos);
        pos += bytesWritten;
        let skip = bytesWritten;
        while (bufs.length && skip >= bufs[0]!.length) { skip -= bufs[0]!.length; bufs = bufs.slice(1); }
        if (skip > 0) bufs = [bufs[0]!.subarray(skip), ...bufs.slice(1)];
      }
      i = j + 1;
    }
    this.dirty.clear();
    this.slabUsed = 0;
    await this.handle().datasync();
  }

  /** Power lost: whatever was only in the cache is gone. */
  dropCache(): void {
    this.dirty.clear();
    this.slabUsed = 0;
  }

  async close(flush: boolean): Promise<void> {
    if (!this.fh) return;
    try {
      if (flush) await this.flush();
      else this.dropCache();
    } finally {
      const fh = this.fh;
      this.fh = undefined;
      await fh.close();
    }
  }
}
