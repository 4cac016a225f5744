/**
 * Scheme A (FIG. 2–5, claims 1–4), step by step as in FIG. 4. The center's half (S2) happens at the
 * center; this file is the station's half. S1 (reading IDk and SIDi) is the station's common phase.
 */
import type { License, LicenseA, StationKey } from '../domain/index.js';
import { constantTimeEqual } from '../crypto/compare.js';
import { unwrapKey } from '../crypto/keywrap.js';
import { certificateCode } from '../crypto/scheme.js';
import { decryptStream, Purpose, streamIdFor } from '../crypto/stream-aead.js';
import type { CatalogEntry } from '../formats/catalog.js';
import type { LicenseRecordA } from '../formats/disc-layout.js';
import { readMasterProgram, type OpenedMaster } from '../master/read.js';
import type { StreamOptions } from '../scsi/device-api.js';
import type { EventSink } from './events.js';
import { certificateRefusal, type ProgramKeys, type SchemeSteps } from './scheme-steps.js';
import type { Placement, TargetCopy } from './target-copy.js';

export const schemeA: SchemeSteps = {
  scheme: 'a',
  step: { readIds: 'S1', write: 'S7' },
  names: { mediumId: 'IDk', contentId: 'SIDi' },
  writing: 'copying EKd(DATA)',

  // The master's EKd(DATA) is copied as is.
  encryptedSize: (entry: CatalogEntry) => entry.encryptedSize,

  // [S2] at the center: purchase recorded, CS = MAC_KEYc(IDk, SIDi) and EKU(KEYc) issued.
  licenseIssued(license: License, emit: EventSink): void {
    emit({ step: 'S2', message: `license center ${license.centerId} recorded the purchase and issued license ${license.licenseId}: CS over (IDk, SIDi) and EKU(KEYc)` });
  },

  async installLicense(target: TargetCopy, at: Placement, license: License, stationKey: StationKey, emit: EventSink): Promise<ProgramKeys> {
    const lic = license as LicenseA;
    const record: LicenseRecordA = {
      scheme: 'a', contentId: lic.contentId, centerId: lic.centerId, licenseId: lic.licenseId,
      certificate: Buffer.from(lic.certificate, 'hex'), wrappedCertificationKey: Buffer.from(lic.wrappedCertificationKey, 'hex'),
      wrappedContentKey: Buffer.from(lic.wrappedContentKey, 'hex'),
    };
    // [S3] CS and EKU(KEYc) into the predetermined region of the disc.
    const back = await target.writeLicenseRecord(at.slot, record);
    emit({ step: 'S3', message: `wrote CS and EKU(KEYc) into license slot ${at.slot} of the target` });
    // [S4] read them back from the disc; KEYc = D_KU(EKU(KEYc)); CS' from the IDs read from master and target.
    if (!back || back.scheme !== 'a') throw certificateRefusal(target.spec, 'the license record did not read back');
    const keyC = unwrapKey(stationKey.key, back.wrappedCertificationKey, 'EKU(KEYc)');
    const csPrime = certificateCode(keyC, target.mediumId.id, lic.contentId);
    emit({ step: 'S4', message: 'read CS and EKU(KEYc) back from the disc, decrypted KEYc with the user key KU and computed CS\' from IDk and SIDi' });
    // [S5] compare in constant time; stop on mismatch.
    if (!constantTimeEqual(back.certificate, csPrime)) throw certificateRefusal(target.spec, 'CS on the disc does not match CS\' computed here');
    emit({ step: 'S5', message: 'compared CS with CS\': they match' });
    // [S6] the certificate is valid: copying is allowed.
    const kd = unwrapKey(stationKey.key, back.wrappedContentKey, 'EKU(Kd)');
    emit({ step: 'S6', message: 'the certificate is valid: copying is allowed' });
    return { master: kd };
  },

  // [S7] the encrypted program as is; every chunk is authenticated on the way so a damaged master stops the copy.
  masterStream(master: OpenedMaster, entry: CatalogEntry, keys: ProgramKeys, opts: StreamOptions): AsyncIterable<Buffer> {
    return verifyingPassThrough(keys.master, readMasterProgram(master, entry, opts), entry.contentId);
  },

  targetStream: (source: AsyncIterable<Buffer>) => source,
  // verifyingPassThrough hands on every buffer it pulled once its chunk verified, and decryptStream copies what
  // it keeps across pieces: nothing holds a read buffer after the target got it.
  passesMasterBuffers: true,
};

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
