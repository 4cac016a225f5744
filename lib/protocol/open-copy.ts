/**
 * Opening a licensed copy for execution: FIG. 6 (scheme A: CS and EKU(KEYc) from the disc, IDk from the
 * drive, recompute CS', compare, then decrypt EKd(DATA) with Kd) and FIG. 10 (scheme B: Mid from the drive
 * and E_Mid(Ku) from the disc give Ku, which decrypts EKu(Data)). A copy moved bit for bit onto another
 * disc fails here: the medium ID the drive reports is not the one the license was bound to.
 */
import type { Writable } from 'node:stream';
import { NotMocopyDiscError, RefusedError, UsageError } from '../errors.js';
import type { StationKey } from '../domain/index.js';
import { constantTimeEqual } from '../crypto/compare.js';
import { IntegrityError } from '../crypto/errors.js';
import { unwrapKey } from '../crypto/keywrap.js';
import { certificateCode, unwrapUnderMedium } from '../crypto/scheme.js';
import { decryptStream, Purpose, streamIdFor } from '../crypto/stream-aead.js';
import type { DirectoryEntry, LicenseRecord } from '../formats/disc-layout.js';
import type { BlockDevice } from '../scsi/device-api.js';
import type { EventSink } from './events.js';
import { takeBytes } from './pipeline.js';
import { TargetDisc } from '../target/disc.js';

export interface LicensedCopy {
  disc: TargetDisc;
  entry: DirectoryEntry;
  record: LicenseRecord;
  mediumId: Buffer;
}

export async function findCopy(target: BlockDevice, contentId: string): Promise<LicensedCopy> {
  await target.testUnitReady();
  if ((await target.inquiry()).peripheralType === 0x05) throw new NotMocopyDiscError(target.spec, 'this is a CD-ROM drive; licensed copies are on MO discs');
  const disc = await TargetDisc.open(target);
  if (disc.label.kind !== 'ours') throw new NotMocopyDiscError(target.spec, disc.label.kind === 'blank' ? 'it is blank' : disc.label.reason);
  const entry = disc.directory.entries.find((e) => e.contentId === contentId);
  if (!entry) {
    const have = disc.directory.entries.map((e) => e.contentId).join(', ');
    throw new RefusedError('E_NO_COPY', `${target.spec}: no copy of ${contentId} on this disc (it holds: ${have || 'nothing'})`, { hint: 'check the content ID, or put the disc that holds this program in the drive' });
  }
  const record = await disc.readSlot(entry.slot);
  if (!record || record.contentId !== contentId || record.scheme !== entry.scheme) {
    throw new RefusedError('E_NO_LICENSE', `${target.spec}: the license record of ${contentId} is missing or does not match the directory`);
  }
  const mid = await target.mediumId();
  return { disc, entry, record, mediumId: mid.id };
}

/** Checks the license against the drive's medium ID and returns the program key (Kd or Ku). */
export function programKey(copy: LicensedCopy, stationKey: StationKey | undefined, spec: string): Buffer {
  const { record, mediumId, entry } = copy;
  if (record.scheme === 'a') {
    if (!stationKey) throw new UsageError('opening a scheme-A copy needs the station key (--station-key FILE): KEYc and Kd are wrapped under it');
    const keyC = unwrapKey(stationKey.key, record.wrappedCertificationKey, 'EKU(KEYc)');
    const csPrime = certificateCode(keyC, mediumId, entry.contentId);
    if (!constantTimeEqual(record.certificate, csPrime)) {
      throw new RefusedError('E_WRONG_MEDIUM', `${spec}: the copy of ${entry.contentId} is not licensed for this disc: CS does not match CS' computed from the drive's medium ID ${mediumId.toString('hex')}`, {
        hint: 'a licensed copy opens only on the disc it was copied to; a bit-for-bit copy on another disc does not open',
      });
    }
    return unwrapKey(stationKey.key, record.wrappedContentKey, 'EKU(Kd)');
  }
  try {
    return unwrapUnderMedium(mediumId, record.wrappedMediumKey, 'E_Mid(Ku)');
  } catch (e) {
    if (!(e instanceof IntegrityError)) throw e;
    throw new RefusedError('E_WRONG_MEDIUM', `${spec}: the copy of ${entry.contentId} is not licensed for this disc: E_Mid(Ku) does not open with the drive's medium ID ${mediumId.toString('hex')}`, {
      hint: 'a licensed copy opens only on the disc it was copied to; a bit-for-bit copy on another disc does not open',
    });
  }
}

export interface OpenOptions {
  target: BlockDevice;
  contentId: string;
  stationKey?: StationKey;
  out: Writable;
  onEvent?: EventSink;
}

async function writeAll(out: Writable, source: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const b of source) {
    n += b.length;
    if (!out.write(b)) await new Promise<void>((resolve, reject) => {
      const done = () => { out.off('error', fail); resolve(); };
      const fail = (e: Error) => { out.off('drain', done); reject(e); };
      out.once('drain', done);
      out.once('error', fail);
    });
  }
  return n;
}

/** Decrypts a licensed copy to `out`, streaming. Returns the plaintext byte count. */
export async function openCopy(o: OpenOptions): Promise<{ bytes: number; scheme: 'a' | 'b' }> {
  const emit = o.onEvent ?? (() => undefined);
  const copy = await findCopy(o.target, o.contentId);
  const key = programKey(copy, o.stationKey, o.target.spec);
  emit({ step: copy.entry.scheme === 'a' ? 'FIG6' : 'FIG10', message: copy.entry.scheme === 'a'
    ? 'CS\' computed from IDk (drive) and SIDi matches CS on the disc; decrypting EKd(DATA) with Kd'
    : 'Ku recovered from E_Mid(Ku) with the drive\'s Mid; decrypting EKu(Data)' });
  const { entry, disc } = copy;
  const blocks = Math.ceil(entry.encryptedSize / disc.blockSize);
  // recycle: decryptStream is done with each read buffer before it asks for the next one.
  const cipher = takeBytes(o.target.readStream(disc.lbaOf(entry.offset), blocks, { recycle: true }), entry.encryptedSize);
  const plain = decryptStream(key, cipher, { streamId: streamIdFor(entry.contentId), purpose: entry.scheme === 'a' ? Purpose.MASTER : Purpose.DISC_COPY });
  const bytes = await writeAll(o.out, plain);
  if (bytes !== entry.plainSize) throw new IntegrityError(`${o.target.spec}: the copy of ${entry.contentId} decrypted to ${bytes} bytes, the directory says ${entry.plainSize}`);
  return { bytes, scheme: entry.scheme };
}
