/**
 * A loaded disc: the image file behind an emulated drive, with the drive's write cache.
 * Writes land in the cache and reach the image only on SYNCHRONIZE CACHE, FUA, a cache
 * overflow (write-back, like a real drive) or a clean close; a power cut drops them. That
 * is what gives the crash-consistency tests above this layer their meaning.
 */
import { promises as fsp, statSync, openSync, readSync, closeSync } from 'node:fs';
import { FormatError, UsageError } from '../errors.js';
import { decodeMoHeader, isMoHeader, MO_HEADER_SIZE } from './mo-image.js';

/** Reads up to this size go through readSync (see Medium.read). */
const SYNC_READ_MAX = 1 << 20;

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
  /** Dirty bytes the drive holds before it writes back on its own (default 8 MiB; at least one block). */
  maxDirtyBytes?: number;
}

export class Medium {
  readonly info: MediumInfo;
  private fh: fsp.FileHandle | undefined;
  // The write cache. Invariant, kept by every path below (cached write, FUA, write-back, power cut):
  //   every dirty block owns exactly one one-block slot of the slab, and
  //   dirty.size + free.length === slotsUsed <= cacheBlocks.
  // So a cached write never needs more slots than `cacheBlocks - dirty.size`, and the slab never overflows.
  /** Dirty blocks by LBA, oldest first: each is its own slot (a one-block view) of the cache slab. */
  private dirty = new Map<number, Buffer>();
  /** The drive's cache RAM, `cacheBlocks` slots; allocated on the first cached write. */
  private slab: Buffer | undefined;
  /** Slots handed out so far (bump pointer, in blocks); each is dirty or in `free`. */
  private slotsUsed = 0;
  /** Slots released by a FUA write over dirty blocks, reused before the bump pointer moves. */
  private free: Buffer[] = [];
  private readonly cacheBlocks: number;
  /** Data written straight to the image (a write larger than the cache) and not yet datasync'd. */
  private unsynced = false;
  /** Bumped by every power cut: a write-back under way when the power goes stops there. */
  private generation = 0;

  private constructor(info: MediumInfo, fh: fsp.FileHandle, cache: CacheOptions) {
    this.info = info;
    this.fh = fh;
    const max = cache.maxDirtyBytes ?? 8 << 20;
    if (typeof max !== 'number' || !Number.isFinite(max)) throw new UsageError(`cache.maxDirtyBytes must be a finite number of bytes, not ${max}`);
    this.cacheBlocks = Math.max(1, Math.floor(max / info.blockSize));
  }

  static async load(path: string, forced?: MediumKind, cache: CacheOptions = {}): Promise<Medium> {
    const info = probeImage(path, forced);
    const fh = await fsp.open(path, info.kind === 'mo' ? 'r+' : 'r');
    try {
      return new Medium(info, fh, cache);
    } catch (err) {
      await fh.close();
      throw err;
    }
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
    if (this.readNow(lba, blocks, target, offset)) return;
    const bs = this.info.blockSize;
    const len = blocks * bs;
    let done = 0;
    while (done < len) {
      const at = this.info.dataOffset + lba * bs + done;
      const { bytesRead } = await this.handle().read(target, offset + done, len - done, at);
      if (bytesRead === 0) {
        target.fill(0, offset + done, offset + len); // sparse tail of an image read as zeros
        break;
      }
      done += bytesRead;
    }
    this.overlay(lba, blocks, target, offset);
  }

  /**
   * The same, synchronously, for reads up to SYNC_READ_MAX (1 MiB): from the page cache that takes
   * microseconds, far less than the thread-pool round trip of an async read, which dominated the
   * emulator's per-command cost; and the drive answers without a promise hop. False (nothing read) for a
   * larger read: use `read`.
   */
  readNow(lba: number, blocks: number, target: Uint8Array, offset = 0): boolean {
    const bs = this.info.blockSize;
    const len = blocks * bs;
    if (len > SYNC_READ_MAX) return false;
    const fd = this.handle().fd;
    let done = 0;
    while (done < len) {
      const bytesRead = readSync(fd, target, offset + done, len - done, this.info.dataOffset + lba * bs + done);
      if (bytesRead === 0) {
        target.fill(0, offset + done, offset + len); // sparse tail of an image read as zeros
        break;
      }
      done += bytesRead;
    }
    this.overlay(lba, blocks, target, offset);
    return true;
  }

  /** The write cache's newer blocks over what the image gave. */
  private overlay(lba: number, blocks: number, target: Uint8Array, offset: number): void {
    if (this.dirty.size === 0) return;
    const bs = this.info.blockSize;
    for (let i = 0; i < blocks; i++) {
      const d = this.dirty.get(lba + i);
      if (d) target.set(d, offset + i * bs);
    }
  }

  /** Writes into the cache; `fua` writes through to the image at once (and drops any cached copy). */
  async write(lba: number, data: Uint8Array, blocks: number, fua: boolean): Promise<void> {
    const bs = this.info.blockSize;
    const bytes = blocks * bs;
    const src = Buffer.from(data.buffer, data.byteOffset, bytes);
    if (fua) {
      await this.writeThrough(lba, src);
      // The image now holds the newest data: a cached copy of these blocks is stale and must never be
      // written back over it. Its slot goes back to the cache.
      this.discard(lba, blocks);
      await this.handle().datasync();
      this.unsynced = false;
      return;
    }
    if (blocks > this.cacheBlocks) {
      // Larger than the whole cache: write back what is there, then write through.
      await this.flush();
      await this.writeThrough(lba, src);
      return;
    }
    let fresh = 0;
    for (let i = 0; i < blocks; i++) if (!this.dirty.has(lba + i)) fresh++;
    if (this.dirty.size + fresh > this.cacheBlocks) {
      // Cache full: the drive writes back on its own.
      const gen = this.generation;
      await this.flush();
      if (gen !== this.generation) return; // the power went during the write-back: this write is lost with it
      fresh = blocks;
    }
    const slab = (this.slab ??= Buffer.allocUnsafe(this.cacheBlocks * bs));
    if (fresh === blocks && this.free.length === 0) {
      // The common case, all new blocks: one copy into consecutive slots.
      const at = this.slotsUsed * bs;
      slab.set(src, at);
      this.slotsUsed += blocks;
      for (let i = 0; i < blocks; i++) this.dirty.set(lba + i, slab.subarray(at + i * bs, at + (i + 1) * bs));
      return;
    }
    for (let i = 0; i < blocks; i++) {
      const l = lba + i;
      let slot = this.dirty.get(l);
      if (slot) this.dirty.delete(l); // rewritten in its own slot; re-inserted: insertion order stays "oldest first"
      else slot = this.takeSlot(slab);
      slot.set(src.subarray(i * bs, (i + 1) * bs));
      this.dirty.set(l, slot);
    }
  }

  private takeSlot(slab: Buffer): Buffer {
    const reused = this.free.pop();
    if (reused) return reused;
    const bs = this.info.blockSize;
    if (this.slotsUsed >= this.cacheBlocks) throw new Error('emulator write cache: no free slot (cache accounting is broken)');
    const at = this.slotsUsed * bs;
    this.slotsUsed++;
    return slab.subarray(at, at + bs);
  }

  /** Drops the cached copies of [lba, lba+blocks), giving their slots back. */
  private discard(lba: number, blocks: number): void {
    if (this.dirty.size === 0) return;
    for (let i = 0; i < blocks; i++) {
      const slot = this.dirty.get(lba + i);
      if (!slot) continue;
      this.dirty.delete(lba + i);
      this.free.push(slot);
    }
    if (this.dirty.size === 0) this.emptyCache();
  }

  /** Nothing is dirty: every slot is free again. */
  private emptyCache(): void {
    this.dirty.clear();
    this.free = [];
    this.slotsUsed = 0;
  }

  private async writeThrough(lba: number, data: Buffer): Promise<void> {
    this.unsynced = true;
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle().write(data, done, data.length - done, this.info.dataOffset + lba * this.info.blockSize + done);
      done += bytesWritten;
    }
  }

  /** Writes every dirty block to the image (coalescing runs, no copies: writev), empties the cache and makes it durable. */
  async flush(): Promise<void> {
    if (this.dirty.size === 0) {
      this.emptyCache(); // whatever the slot accounting says, an empty cache has every slot free
      if (!this.unsynced) return;
      this.unsynced = false;
      await this.handle().datasync();
      return;
    }
    const gen = this.generation;
    const bs = this.info.blockSize;
    // Take the runs before the first await: a power cut during the write-back empties `dirty` under us.
    const lbas = [...this.dirty.keys()].sort((a, b) => a - b);
    const runs: Array<{ pos: number; bufs: Buffer[] }> = [];
    let i = 0;
    while (i < lbas.length) {
      let j = i;
      while (j + 1 < lbas.length && lbas[j + 1] === lbas[j]! + 1 && j - i < 1023) j++;
      runs.push({ pos: this.info.dataOffset + lbas[i]! * bs, bufs: lbas.slice(i, j + 1).map((l) => this.dirty.get(l)!) });
      i = j + 1;
    }
    for (const run of runs) {
      let { pos, bufs } = run;
      while (bufs.length) {
        if (gen !== this.generation) return; // power cut: the rest of the cache never reaches the medium
        const { bytesWritten } = await this.handle().writev(bufs, pos);
        pos += bytesWritten;
        let skip = bytesWritten;
        while (bufs.length && skip >= bufs[0]!.length) { skip -= bufs[0]!.length; bufs = bufs.slice(1); }
        if (skip > 0) bufs = [bufs[0]!.subarray(skip), ...bufs.slice(1)];
      }
    }
    if (gen !== this.generation) return;
    this.emptyCache();
    this.unsynced = false;
    await this.handle().datasync();
  }

  /** Power lost: whatever was only in the cache is gone. */
  dropCache(): void {
    this.generation++;
    this.emptyCache();
    this.unsynced = false; // the image file keeps what reached it; there is no host crash to model
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
