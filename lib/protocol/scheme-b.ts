/**
 * Scheme B (FIG. 7–10), step by step as in FIG. 9. The center's half (S12–S14) happens at the center;
 * this file is the station's half. S11 (reading Mid and DID) is the station's common phase.
 */
import type { License, LicenseB, StationKey } from '../domain/index.js';
import { constantTimeEqual } from '../crypto/compare.js';
import { unwrapUnderMedium } from '../crypto/scheme.js';
import { createStreamHeader, decryptStream, encryptedSize, encryptStream, Purpose, streamIdFor } from '../crypto/stream-aead.js';
import type { CatalogEntry } from '../formats/catalog.js';
import { readMasterProgram, type OpenedMaster } from '../master/read.js';
import type { StreamOptions } from '../scsi/device-api.js';
import type { EventSink } from './events.js';
import { certificateRefusal, type ProgramKeys, type SchemeSteps } from './scheme-steps.js';
import type { Placement, TargetCopy } from './target-copy.js';

export const schemeB: SchemeSteps = {
  scheme: 'b',
  step: { readIds: 'S11', write: 'S17' },
  names: { mediumId: 'Mid', contentId: 'DID' },
  writing: 're-encrypting under Ku: EKu(Data)',

  // The copy is re-encrypted under Ku: same plaintext, its own stream header and tags.
  encryptedSize: (entry: CatalogEntry) => encryptedSize(entry.size),

  licenseIssued(license: License, emit: EventSink): void {
    // [S12] DID found in the center's contents file.
    emit({ step: 'S12', message: `license center ${license.centerId} found DID ${license.contentId} in its contents file` });
    // [S13] Ku = F_KM(Mid), Ka = F_KM(DID).
    emit({ step: 'S13', message: 'it derived Ku = F_KM(Mid) and Ka = F_KM(DID)' });
    // [S14] E_Mid(Ku, Ka) sent; the station billed.
    emit({ step: 'S14', message: `it sent E_Mid(Ku, Ka) with license ${license.licenseId} and billed the station` });
  },

  // [S15] E_Mid(Ku, Ka) opened with the Mid read from the drive; E_Mid(Ku) stored as received, read back.
  async installLicense(target: TargetCopy, at: Placement, license: License, _stationKey: StationKey, emit: EventSink): Promise<ProgramKeys> {
    const lic = license as LicenseB;
    const mid = target.mediumId.id;
    const wrappedKu = Buffer.from(lic.wrappedMediumKey, 'hex');
    const ku = unwrapUnderMedium(mid, wrappedKu, 'E_Mid(Ku)');
    const ka = unwrapUnderMedium(mid, Buffer.from(lic.wrappedMasterKey, 'hex'), 'E_Mid(Ka)');
    const back = await target.writeLicenseRecord(at.slot, { scheme: 'b', contentId: lic.contentId, centerId: lic.centerId, licenseId: lic.licenseId, wrappedMediumKey: wrappedKu });
    if (!back || back.scheme !== 'b' || !constantTimeEqual(unwrapUnderMedium(mid, back.wrappedMediumKey, 'E_Mid(Ku) read back'), ku)) {
      throw certificateRefusal(target.spec, 'E_Mid(Ku) did not read back intact');
    }
    emit({ step: 'S15', message: `decrypted E_Mid(Ku, Ka) with Mid; stored E_Mid(Ku) in license slot ${at.slot} and read it back` });
    return { master: ka, target: ku };
  },

  // [S16] decrypt EKa(Data) from the master.
  masterStream(master: OpenedMaster, entry: CatalogEntry, keys: ProgramKeys, opts: StreamOptions, emit: EventSink): AsyncIterable<Buffer> {
    // recycle: decryptStream is done with each read buffer before it asks for the next one.
    const plain = decryptStream(keys.master, readMasterProgram(master, entry, { ...opts, recycle: true }), { streamId: streamIdFor(entry.contentId), purpose: Purpose.MASTER });
    emit({ step: 'S16', message: 'decrypting EKa(Data) from the master with Ka' });
    return plain;
  },

  // [S17] re-encrypt under Ku onto the target, streaming.
  passesMasterBuffers: false, // the target gets fresh ciphertext under its own key

  targetStream(source: AsyncIterable<Buffer>, entry: CatalogEntry, keys: ProgramKeys): AsyncIterable<Buffer> {
    const header = createStreamHeader({ purpose: Purpose.DISC_COPY, plainLength: entry.size, streamId: streamIdFor(entry.contentId) });
    return encryptStream(keys.target!, header, source);
  },
};
