/**
 * One target drive through one licensed copy: the station's per-target phases (check the target,
 * read its medium ID, place the copy, write the license record, stream the program, verify and
 * commit), independent of the scheme and of where the program's bytes come from, so one master
 * stream can feed several of these.
 *
 * Safety: the medium ID is read from the drive's medium-ID zone (never from the data area); from then
 * on the disc is locked in (PREVENT MEDIUM REMOVAL) and guarded against a swap until the copy is
 * committed. Data is written first, synced, read back and checked, and only then committed in the
 * directory. A failure restores the license slot, so the disc's directory, records and committed
 * copies are as they were.
 */
import { ExitCode, MocopyError, RefusedError } from '../errors.js';
import { MEDIUM_ID_MAX_BYTES, type Scheme } from '../domain/index.js';
import { freeSlot, nextExtentOffset, type DirectoryEntry, type LicenseRecord } from '../formats/disc-layout.js';
import type { BlockDevice, MediumIdResult, StreamOptions } from '../scsi/device-api.js';
import { MediumChangedError } from '../scsi/device.js';
import { TargetDisc } from '../target/disc.js';
import { padToBlocks, sha256, takeBytes, tapHash } from './pipeline.js';

/** Where a new copy goes on the disc. */
export interface Placement {
  slot: number;
  /** Byte offset of the data extent. */
  offset: number;
  /** Bytes of the encrypted program in the extent. */
  encryptedSize: number;
}

export class TargetCopy {
  private locked = false;
  private guarded = false;
  /** The slot's bytes before we wrote it, to put back on failure. */
  private priorSlot: { slot: number; bytes: Buffer } | undefined;
  private mid: MediumIdResult | undefined;

  private constructor(readonly device: BlockDevice, readonly disc: TargetDisc) {}

  /** Check the target: ready, writable, and blank or ours (never someone else's data). */
  static async check(device: BlockDevice): Promise<TargetCopy> {
    await device.testUnitReady();
    if (await device.isWriteProtected()) {
      throw new RefusedError('E_WRITE_PROTECTED', `${device.spec}: the target disc is write-protected`, { hint: 'slide the write-protect tab of the MO cartridge to "write", or use another disc' });
    }
    const disc = await TargetDisc.open(device);
    if (disc.label.kind === 'foreign') {
      throw new RefusedError('E_FOREIGN_DISC', `${device.spec}: ${disc.label.reason}; refusing to write over it`, { hint: 'use a blank MO disc or one written by mocopy' });
    }
    return new TargetCopy(device, disc);
  }

  get spec(): string {
    return this.device.spec;
  }

  get mediumId(): MediumIdResult {
    if (!this.mid) throw new Error('the medium ID has not been read yet');
    return this.mid;
  }

  /** Lock the disc in, read its medium ID from the non-rewritable zone, and guard against a swap from here on. */
  async readMediumId(): Promise<MediumIdResult> {
    await this.device.setRemovalPrevented(true);
    this.locked = true;
    const mid = await this.device.mediumId();
    if (mid.id.length > MEDIUM_ID_MAX_BYTES) {
      // The center binds licenses to at most 64 bytes; refused here, before anything is asked or billed.
      throw new MocopyError('E_MEDIUM_ID_UNUSABLE', `${this.spec}: the drive reports a ${mid.id.length}-byte medium ID (${mid.method}); mocopy binds licenses to medium IDs of at most ${MEDIUM_ID_MAX_BYTES} bytes`, {
        exitCode: ExitCode.DEVICE, hint: 'check the drive\'s medium-ID quirk (`mocopy probe-id`), or use another drive',
      });
    }
    this.mid = mid;
    this.device.setMediumGuard(true);
    this.guarded = true;
    return this.mid;
  }

  /** The committed copy of this content, if the disc has one; a copy under the other scheme is a refusal. */
  existingCopy(contentId: string, scheme: Scheme): DirectoryEntry | undefined {
    const existing = this.disc.directory.entries.find((e) => e.contentId === contentId);
    if (existing && existing.scheme !== scheme) {
      throw new RefusedError('E_ALREADY_ON_DISC', `content ${contentId} is already on this disc under scheme ${existing.scheme.toUpperCase()}`);
    }
    return existing;
  }

  /** Does the slot of a committed copy still hold its license record? */
  async hasLicenseRecord(entry: DirectoryEntry): Promise<boolean> {
    const record = await this.disc.readSlot(entry.slot).catch(() => undefined);
    return !!record && record.contentId === entry.contentId && record.scheme === entry.scheme;
  }

  /** The record just written belongs to a committed copy: a later failure must not put the old bytes back. */
  keepLicenseRecord(): void {
    this.priorSlot = undefined;
  }

  /** A free license slot and room for `encryptedSize` bytes, or a refusal (before anything is billed). */
  place(encryptedSize: number): Placement {
    const slot = freeSlot(this.disc.directory);
    if (slot === undefined) throw new RefusedError('E_TARGET_FULL', `${this.spec}: all license slots of this disc are used`);
    const offset = nextExtentOffset(this.disc.directory);
    if (offset + encryptedSize > this.disc.capacity.bytes) {
      throw new RefusedError('E_TARGET_TOO_SMALL', `${this.spec}: the disc has ${Math.max(0, this.disc.capacity.bytes - offset)} bytes free, the program needs ${encryptedSize}`, { hint: 'use a larger or an emptier disc' });
    }
    return { slot, offset, encryptedSize };
  }

  /** Write the license record into its slot (FUA) and return what the disc gives back. */
  async writeLicenseRecord(slot: number, record: LicenseRecord): Promise<LicenseRecord | undefined> {
    if (!this.priorSlot) this.priorSlot = { slot, bytes: await this.disc.readSlotBytes(slot) };
    await this.disc.writeSlot(slot, record);
    return this.disc.readSlot(slot);
  }

  /** Stream the program into its extent, then SYNCHRONIZE CACHE; returns the SHA-256 of what was written. */
  async writeProgram(at: Placement, source: AsyncIterable<Buffer>, onBytes: (n: number) => void, opts: StreamOptions): Promise<string> {
    const written = sha256();
    // Progress counts what the drive has written (not what was handed to it): the technician sees the disc fill.
    const onProgress = (p: { bytes: number }) => onBytes(Math.min(p.bytes, at.encryptedSize));
    await this.device.writeStream(this.disc.lbaOf(at.offset), padToBlocks(tapHash(source, written), this.disc.blockSize), { ...opts, onProgress });
    await this.device.sync();
    return written.digest('hex');
  }

  /** Read the extent back and compare with what was written; then commit the entry in the directory. */
  async verifyAndCommit(at: Placement, entry: Omit<DirectoryEntry, 'slot' | 'offset' | 'encryptedSize' | 'sha256' | 'committed'>, writtenHash: string, opts: StreamOptions): Promise<DirectoryEntry> {
    const readBack = sha256();
    const blocks = Math.ceil(at.encryptedSize / this.disc.blockSize);
    for await (const b of takeBytes(this.device.readStream(this.disc.lbaOf(at.offset), blocks, { ...opts, recycle: true }), at.encryptedSize)) readBack.update(b);
    if (readBack.digest('hex') !== writtenHash) {
      throw new RefusedError('E_VERIFY_FAILED', `${this.spec}: what was read back differs from what was written (bad disc or drive)`, { hint: 'try another disc; if it happens again, have the MO drive checked' });
    }
    const committed: DirectoryEntry = { ...entry, slot: at.slot, offset: at.offset, encryptedSize: at.encryptedSize, sha256: writtenHash, committed: new Date().toISOString() };
    // From the first byte of the directory write on, the new directory may be the one in force: the slot's new
    // record must then stay, whatever fails later (a restored slot would leave a committed copy without its license).
    // If the directory write itself fails, the directory in force still calls the slot free and the next copy reuses it.
    this.priorSlot = undefined;
    await this.disc.commit({ generation: this.disc.directory.generation + 1, entries: [...this.disc.directory.entries, committed] });
    return committed;
  }

  /**
   * After a failure: put the slot back as it was — unless the disc may have been swapped (never touch a
   * disc that may not be ours). If the drive is gone, the directory (never committed) still says the slot
   * is free, so the disc reads as before.
   */
  async abandon(cause: unknown): Promise<void> {
    const prior = this.priorSlot;
    this.priorSlot = undefined;
    if (!prior || cause instanceof MediumChangedError) return;
    await this.disc.writeSlotBytes(prior.slot, prior.bytes).catch(() => undefined);
  }

  /** Always, at the end: drop the swap guard and unlock the disc. */
  async release(): Promise<void> {
    if (this.guarded) this.device.setMediumGuard(false);
    this.guarded = false;
    if (this.locked) await this.device.setRemovalPrevented(false).catch(() => undefined);
    this.locked = false;
  }
}
