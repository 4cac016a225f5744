/**
 * The copying station [patent: manager application MA at the end user's site]: copies one program
 * from the master (CD-ROM drive) to the target (MO drive) under a license the center signed for
 * the pair (content ID, medium ID) — scheme A (FIG. 2-5, claims 1-4) or scheme B (FIG. 7-9).
 *
 * Safety: everything that can refuse is checked before anything is written or billed; the medium ID
 * is read from the drive's medium-ID zone (never from the data area) and the disc is locked in the drive
 * (PREVENT MEDIUM REMOVAL) and guarded against a swap until the copy is committed and verified; data is
 * written first, synced, read back and checked, and only then committed in the directory. A failure
 * restores the license slot, so the disc's directory, records and committed copies are as they were.
 */
import { randomUUID } from 'node:crypto';
import { RefusedError } from '../errors.js';
import type { CenterClient, License, LicenseA, LicenseB, Scheme, StationKey } from '../center/types.js';
import { constantTimeEqual } from '../crypto/compare.js';
import { unwrapKey } from '../crypto/keywrap.js';
import { certificateCode, unwrapUnderMedium } from '../crypto/scheme.js';
import { createStreamHeader, decryptStream, encryptedSize, encryptStream, Purpose, streamIdFor } from '../crypto/stream-aead.js';
import { freeSlot, nextExtentOffset, type DirectoryEntry, type LicenseRecord } from '../formats/disc-layout.js';
import { findContent, openMaster, readMasterProgram, type CatalogEntry, type OpenedMaster } from '../formats/master.js';
import type { BlockDevice } from '../scsi/device-api.js';
import { MediumChangedError } from '../scsi/device.js';
import type { EventSink } from './events.js';
import { padToBlocks, sha256, takeBytes, tapHash } from './pipeline.js';
import { TargetDisc } from './target-disc.js';

export interface CopyOptions {
  master: BlockDevice;
  target: BlockDevice;
  contentId: string;
  scheme: Scheme;
  center: CenterClient;
  stationKey: StationKey;
  onEvent?: EventSink;
  /** Commands in flight per drive (default 4). */
  inFlight?: number;
  /** Aborting (Ctrl-C at the station) stops the transfer; the slot is restored and the disc unlocked as on any failure. */
  signal?: AbortSignal;
}

export interface CopyResult {
  contentId: string;
  scheme: Scheme;
  mediumId: string;
  mediumIdMethod: string;
  licenseId: string;
  slot: number;
  offset: number;
  plainSize: number;
  encryptedSize: number;
  alreadyPresent: boolean;
  seconds: number;
}

const STEPS = { a: ['S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7'], b: ['S11', 'S12', 'S13', 'S14', 'S15', 'S16', 'S17'] } as const;

export async function copyLicensed(o: CopyOptions): Promise<CopyResult> {
  const t0 = Date.now();
  const emit: EventSink = o.onEvent ?? (() => undefined);
  const steps = STEPS[o.scheme];

  // ---- Everything that can refuse, before anything is written or billed.
  const master = await openMaster(o.master);
  const entry = findContent(master, o.contentId);
  if (!entry.schemes.includes(o.scheme)) {
    throw new RefusedError('E_SCHEME_NOT_ALLOWED', `content ${o.contentId} may not be copied under scheme ${o.scheme.toUpperCase()} (the master allows ${entry.schemes.join(', ').toUpperCase()})`);
  }
  await o.target.testUnitReady();
  if (await o.target.isWriteProtected()) {
    throw new RefusedError('E_WRITE_PROTECTED', `${o.target.spec}: the target disc is write-protected`, { hint: 'slide the write-protect tab of the MO cartridge to "write", or use another disc' });
  }
  const disc = await TargetDisc.open(o.target);
  if (disc.label.kind === 'foreign') {
    throw new RefusedError('E_FOREIGN_DISC', `${o.target.spec}: ${disc.label.reason}; refusing to write over it`, { hint: 'use a blank MO disc or one written by mocopy' });
  }

  // [S1]/[S11] The medium ID from the drive's non-rewritable zone; lock the disc in and guard against a swap.
  await o.target.setRemovalPrevented(true);
  let guarded = false;
  try {
    const mid = await o.target.mediumId();
    o.target.setMediumGuard(true);
    guarded = true;
    const mediumIdHex = mid.id.toString('hex');
    emit({ step: steps[0], message: `read ${o.scheme === 'a' ? 'IDk' : 'Mid'} = ${mediumIdHex} from the target's medium-ID zone (${mid.method})${mid.standIn ? ' [LAB STAND-IN]' : ''} and ${o.scheme === 'a' ? 'SIDi' : 'DID'} = ${o.contentId} from the master` });

    const existing = disc.directory.entries.find((e) => e.contentId === o.contentId);
    if (existing) {
      if (existing.scheme !== o.scheme) {
        throw new RefusedError('E_ALREADY_ON_DISC', `content ${o.contentId} is already on this disc under scheme ${existing.scheme.toUpperCase()}`);
      }
      emit({ step: steps[6], message: `content ${o.contentId} is already on this disc (slot ${existing.slot}); nothing to do` });
      return { contentId: o.contentId, scheme: o.scheme, mediumId: mediumIdHex, mediumIdMethod: mid.method, licenseId: '', slot: existing.slot, offset: existing.offset, plainSize: existing.plainSize, encryptedSize: existing.encryptedSize, alreadyPresent: true, seconds: (Date.now() - t0) / 1000 };
    }
    const slot = freeSlot(disc.directory);
    if (slot === undefined) throw new RefusedError('E_TARGET_FULL', `${o.target.spec}: all license slots of this disc are used`);
    const encSize = o.scheme === 'a' ? entry.encryptedSize : encryptedSize(entry.size);
    const offset = nextExtentOffset(disc.directory);
    if (offset + encSize > disc.capacity.bytes) {
      throw new RefusedError('E_TARGET_TOO_SMALL', `${o.target.spec}: the disc has ${Math.max(0, disc.capacity.bytes - offset)} bytes free, the program needs ${encSize}`, { hint: 'use a larger or an emptier disc' });
    }

    // [S1 send]/[S2] or [S11 send]/[S12-S14]: the license center signs the pair and bills.
    const license = await o.center.requestLicense({ requestId: randomUUID(), scheme: o.scheme, contentId: o.contentId, mediumId: mediumIdHex });
    if (license.scheme !== o.scheme || license.contentId !== o.contentId || license.mediumId !== mediumIdHex) {
      throw new RefusedError('E_LICENSE_MISMATCH', 'the license center answered with a license for another request');
    }
    if (o.scheme === 'a') {
      emit({ step: 'S2', message: `license center ${license.centerId} recorded the purchase and issued license ${license.licenseId}: CS over (IDk, SIDi) and EKU(KEYc)` });
    } else {
      emit({ step: 'S12', message: `license center ${license.centerId} found DID ${o.contentId} in its contents file` });
      emit({ step: 'S13', message: 'it derived Ku = F_KM(Mid) and Ka = F_KM(DID)' });
      emit({ step: 'S14', message: `it sent E_Mid(Ku, Ka) with license ${license.licenseId} and billed the station` });
    }

    o.signal?.throwIfAborted();
    const priorSlot = await disc.readSlotBytes(slot);
    let slotTouched = false;
    let mediumChanged = false;
    try {
      let source: AsyncIterable<Buffer>;
      let record: LicenseRecord;
      if (license.scheme === 'a') {
        const lic = license as LicenseA;
        record = {
          scheme: 'a', contentId: o.contentId, centerId: lic.centerId, licenseId: lic.licenseId,
          certificate: Buffer.from(lic.certificate, 'hex'), wrappedCertificationKey: Buffer.from(lic.wrappedCertificationKey, 'hex'),
          wrappedContentKey: Buffer.from(lic.wrappedContentKey, 'hex'),
        };
        // [S3] CS and EKU(KEYc) into the predetermined region of the disc.
        slotTouched = true;
        await disc.writeSlot(slot, record);
        emit({ step: 'S3', message: `wrote CS and EKU(KEYc) into license slot ${slot} of the target` });
        // [S4] read them back from the disc; KEYc = D_KU(EKU(KEYc)); CS' from the IDs read from master and target.
        const back = await disc.readSlot(slot);
        if (!back || back.scheme !== 'a') throw certificateRefusal(o.target.spec, 'the license record did not read back');
        const keyC = unwrapKey(o.stationKey.key, back.wrappedCertificationKey, 'EKU(KEYc)');
        const csPrime = certificateCode(keyC, mid.id, o.contentId);
        emit({ step: 'S4', message: 'read CS and EKU(KEYc) back from the disc, decrypted KEYc with the user key KU and computed CS\' from IDk and SIDi' });
        // [S5]/[S6] compare in constant time; stop on mismatch.
        if (!constantTimeEqual(back.certificate, csPrime)) throw certificateRefusal(o.target.spec, 'CS on the disc does not match CS\' computed here');
        emit({ step: 'S5', message: 'compared CS with CS\': they match' });
        const kd = unwrapKey(o.stationKey.key, back.wrappedContentKey, 'EKU(Kd)');
        emit({ step: 'S6', message: 'the certificate is valid: copying is allowed' });
        // [S7] the encrypted program as is; every chunk is authenticated on the way so a damaged master stops the copy.
        source = verifyingPassThrough(kd, readMasterProgram(master, entry, { inFlight: o.inFlight ?? 4, ...(o.signal ? { signal: o.signal } : {}) }), entry.contentId);
      } else {
        const lic = license as LicenseB;
        // [S15] E_Mid(Ku, Ka) opened with the Mid read from the drive; E_Mid(Ku) stored as received.
        const ku = unwrapUnderMedium(mid.id, Buffer.from(lic.wrappedMediumKey, 'hex'), 'E_Mid(Ku)');
        const ka = unwrapUnderMedium(mid.id, Buffer.from(lic.wrappedMasterKey, 'hex'), 'E_Mid(Ka)');
        record = { scheme: 'b', contentId: o.contentId, centerId: lic.centerId, licenseId: lic.licenseId, wrappedMediumKey: Buffer.from(lic.wrappedMediumKey, 'hex') };
        slotTouched = true;
        await disc.writeSlot(slot, record);
        const back = await disc.readSlot(slot);
        if (!back || back.scheme !== 'b' || !constantTimeEqual(unwrapUnderMedium(mid.id, back.wrappedMediumKey, 'E_Mid(Ku) read back'), ku)) {
          throw certificateRefusal(o.target.spec, 'E_Mid(Ku) did not read back intact');
        }
        emit({ step: 'S15', message: `decrypted E_Mid(Ku, Ka) with Mid; stored E_Mid(Ku) in license slot ${slot} and read it back` });
        // [S16] decrypt EKa(Data) from the master; [S17] re-encrypt under Ku onto the target, streaming.
        // recycle: decryptStream is done with each read buffer before it asks for the next one.
        const plain = decryptStream(ka, readMasterProgram(master, entry, { inFlight: o.inFlight ?? 4, recycle: true, ...(o.signal ? { signal: o.signal } : {}) }), { streamId: streamIdFor(entry.contentId), purpose: Purpose.MASTER });
        emit({ step: 'S16', message: 'decrypting EKa(Data) from the master with Ka' });
        const header = createStreamHeader({ purpose: Purpose.DISC_COPY, plainLength: entry.size, streamId: streamIdFor(entry.contentId) });
        source = encryptStream(ku, header, plain);
      }

      // Data first, then SYNCHRONIZE CACHE, read back and verify, then the directory commit.
      emit({ step: steps[6], message: `${o.scheme === 'a' ? 'copying EKd(DATA)' : 're-encrypting under Ku: EKu(Data)'} to the target at byte ${offset}`, bytes: 0, total: encSize });
      const written = sha256();
      const lba = disc.lbaOf(offset);
      await o.target.writeStream(lba, padToBlocks(tapHash(source, written, (n) => emit({ step: steps[6], message: 'progress', bytes: n, total: encSize })), disc.blockSize), { inFlight: o.inFlight ?? 4, ...(o.signal ? { signal: o.signal } : {}) });
      await o.target.sync();
      const writtenHash = written.digest('hex');
      const readBack = sha256();
      const blocks = Math.ceil(encSize / disc.blockSize);
      for await (const b of takeBytes(o.target.readStream(lba, blocks, { inFlight: o.inFlight ?? 4, recycle: true }), encSize)) readBack.update(b);
      if (readBack.digest('hex') !== writtenHash) {
        throw new RefusedError('E_VERIFY_FAILED', `${o.target.spec}: what was read back differs from what was written (bad disc or drive)`, { hint: 'try another disc; if it happens again, have the MO drive checked' });
      }
      const newEntry: DirectoryEntry = {
        contentId: o.contentId, name: entry.name, scheme: o.scheme, slot, offset, encryptedSize: encSize, plainSize: entry.size,
        sha256: writtenHash, committed: new Date().toISOString(),
      };
      await disc.commit({ generation: disc.directory.generation + 1, entries: [...disc.directory.entries, newEntry] });
      emit({ step: steps[6], message: `verified and committed in the disc directory (generation ${disc.directory.generation})` });
      slotTouched = false;
      return {
        contentId: o.contentId, scheme: o.scheme, mediumId: mediumIdHex, mediumIdMethod: mid.method, licenseId: license.licenseId, slot, offset,
        plainSize: entry.size, encryptedSize: encSize, alreadyPresent: false, seconds: (Date.now() - t0) / 1000,
      };
    } catch (e) {
      mediumChanged = e instanceof MediumChangedError;
      throw e;
    } finally {
      // Never touch a disc that may not be the one we started with.
      if (slotTouched && !mediumChanged) {
        // Put the slot back as it was; if the drive is gone or the disc was swapped, the directory
        // (never committed) still says the slot is free, so the disc reads as before.
        await disc.writeSlotBytes(slot, priorSlot).catch(() => undefined);
      }
    }
  } finally {
    if (guarded) o.target.setMediumGuard(false);
    await o.target.setRemovalPrevented(false).catch(() => undefined);
  }
}

function certificateRefusal(device: string, detail: string): RefusedError {
  return new RefusedError('E_CERTIFICATE_MISMATCH', `${device}: the license certificate does not verify (${detail}); nothing was copied and the disc is as it was`, {
    hint: 'check that the station key belongs to this station and that the disc was not changed; then run the copy again',
  });
}

/** Passes ciphertext through unchanged while authenticating every chunk with Kd. */
async function* verifyingPassThrough(key: Uint8Array, source: AsyncIterable<Buffer>, contentId: string): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  async function* recorded(): AsyncGenerator<Buffer> {
    for await (const b of source) {
      queue.push(b);
      yield b;
    }
  }
  // decryptStream pulls the ciphertext; what it pulled is released once the chunk it belongs to verified.
  for await (const _plain of decryptStream(key, recorded(), { streamId: streamIdFor(contentId), purpose: Purpose.MASTER })) {
    while (queue.length) yield queue.shift()!;
  }
  while (queue.length) yield queue.shift()!;
}

export type { License, CatalogEntry, OpenedMaster };
