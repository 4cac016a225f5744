/**
 * I/O for the licensed-copy disc layout (lib/formats/disc-layout.ts) over a BlockDevice:
 * label, license slots, the two directory copies and data extents, in bytes mapped to blocks.
 */
import { RefusedError } from '../errors.js';
import type { BlockDevice, Capacity } from '../scsi/device-api.js';
import {
  chooseDirectory, DATA_OFFSET, decodeDirectory, decodeLabel, decodeLicenseRecord, DIRECTORY_BYTES, DIRECTORY_OFFSETS,
  encodeDirectory, encodeLabel, encodeLicenseRecord, LABEL_BYTES, nextDirectoryCopy, SLOT_BYTES, slotOffset,
  type Directory, type LabelState, type LicenseRecord, validateDirectory,
} from '../formats/disc-layout.js';

export class TargetDisc {
  private constructor(
    readonly device: BlockDevice,
    readonly capacity: Capacity,
    public label: LabelState,
    public directory: Directory,
    public directoryCopy: number | undefined,
  ) {}

  static async open(device: BlockDevice): Promise<TargetDisc> {
    const capacity = await device.capacity();
    if (capacity.bytes < DATA_OFFSET + 65536) {
      throw new RefusedError('E_TARGET_TOO_SMALL', `${device.spec}: the disc holds ${capacity.bytes} bytes, too small for a licensed copy`);
    }
    const disc = new TargetDisc(device, capacity, { kind: 'blank' }, { generation: 0, entries: [] }, undefined);
    disc.label = decodeLabel(await disc.readBytes(0, LABEL_BYTES));
    if (disc.label.kind === 'ours') {
      const copies = await Promise.all(DIRECTORY_OFFSETS.map(async (o) => decodeDirectory(await disc.readBytes(o, DIRECTORY_BYTES))));
      const chosen = chooseDirectory(copies);
      disc.directory = validateDirectory(chosen.directory, capacity.bytes);
      disc.directoryCopy = chosen.copy;
    }
    return disc;
  }

  get blockSize(): number {
    return this.capacity.blockSize;
  }

  lbaOf(offset: number): number {
    if (offset % this.blockSize !== 0) throw new RangeError(`offset ${offset} is not block aligned`);
    return offset / this.blockSize;
  }

  async readBytes(offset: number, length: number): Promise<Buffer> {
    const bs = this.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.ceil((offset + length) / bs);
    const b = await this.device.read(first, last - first);
    return b.subarray(offset - first * bs, offset - first * bs + length);
  }

  /** Writes whole blocks (offset and length block aligned; callers pad). */
  async writeBytes(offset: number, data: Buffer, fua = false): Promise<void> {
    if (data.length % this.blockSize !== 0) throw new RangeError('write length is not a whole number of blocks');
    await this.device.write(this.lbaOf(offset), data, { fua });
  }

  async readSlotBytes(slot: number): Promise<Buffer> {
    return this.readBytes(slotOffset(slot), SLOT_BYTES);
  }

  async readSlot(slot: number): Promise<LicenseRecord | undefined> {
    return decodeLicenseRecord(await this.readSlotBytes(slot), slot);
  }

  async writeSlotBytes(slot: number, bytes: Buffer): Promise<void> {
    await this.writeBytes(slotOffset(slot), bytes, true);
  }

  async writeSlot(slot: number, record: LicenseRecord): Promise<void> {
    await this.writeSlotBytes(slot, encodeLicenseRecord(record));
  }

  /** Data extents: readable up to the end of the medium. */
  get dataBytesFree(): number {
    return this.capacity.bytes;
  }

  /**
   * Commits a new directory: after the data is synced, the directory goes to the copy not holding the
   * current generation (FUA), then — on a blank disc — the label, then a SYNCHRONIZE CACHE.
   */
  async commit(next: Directory): Promise<void> {
    const copy = nextDirectoryCopy(this.directoryCopy);
    await this.writeBytes(DIRECTORY_OFFSETS[copy]!, encodeDirectory(next), true);
    if (this.label.kind === 'blank') {
      const label = { version: 1 as const, blockSize: this.blockSize, created: new Date().toISOString() };
      await this.writeBytes(0, encodeLabel(label), true);
      this.label = { kind: 'ours', label };
    }
    await this.device.sync();
    this.directory = next;
    this.directoryCopy = copy;
  }
}
