/**
 * What a license is, as the station and the center exchange it (docs/center.md). The in-process
 * and HTTP centers both produce these shapes; the station turns them into the disc's license records.
 * Byte strings travel as lowercase hex.
 */
import type { Scheme } from './ids.js';

export interface StationKey {
  /** Station ID assigned by the center. */
  stationId: string;
  /** Center ID (IDc) that issued it. */
  centerId: string;
  /** The station's user key KU: 32 bytes. Never logged. */
  key: Buffer;
}

export interface LicenseRequest {
  /** Client-chosen ID (UUID); the same ID again returns the same license and bills once. */
  requestId: string;
  scheme: Scheme;
  /** SIDi (scheme A) / DID (scheme B). */
  contentId: string;
  /** IDk (scheme A) / Mid (scheme B), read from the target drive's medium-ID zone, hex. */
  mediumId: string;
}

/** Scheme A (FIG. 4): CS, EKU(KEYc), IDc, and the content key Kd wrapped under KU. */
export interface LicenseA {
  scheme: 'a';
  licenseId: string;
  centerId: string;
  contentId: string;
  mediumId: string;
  /** CS: AES-CMAC under KEYc over (IDk, SIDi); 16 bytes hex. */
  certificate: string;
  /** EKU(KEYc): RFC 3394 wrap of the per-license KEYc under KU; 40 bytes hex. */
  wrappedCertificationKey: string;
  /** EKU(Kd): RFC 3394 wrap of the content key under KU; 40 bytes hex. */
  wrappedContentKey: string;
  issuedAt: string;
}

/** Scheme B (FIG. 8): E_Mid(Ku), E_Mid(Ka) (each wrapped under a key derived from Mid). */
export interface LicenseB {
  scheme: 'b';
  licenseId: string;
  centerId: string;
  contentId: string;
  mediumId: string;
  /** E_Mid(Ku): stored on the disc's license region as is (S15). 40 bytes hex once opened (48 on the HTTP wire: sealed once more under the transit key, docs/protocol.md). */
  wrappedMediumKey: string;
  /** E_Mid(Ka): used once to decrypt the master's program (S16). 40 bytes hex once opened (48 on the HTTP wire, sealed). */
  wrappedMasterKey: string;
  issuedAt: string;
}

export type License = LicenseA | LicenseB;

/** Does this license answer that request (same scheme, content and medium)? */
export function licenseAnswers(license: License, req: Pick<LicenseRequest, 'scheme' | 'contentId' | 'mediumId'>): boolean {
  return license.scheme === req.scheme && license.contentId === req.contentId && license.mediumId === req.mediumId;
}
