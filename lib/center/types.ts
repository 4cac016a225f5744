/**
 * The license exchange between a copying station and the license center, as data. The in-process
 * center (`--center-db`) and the HTTP center (`--center URL`) both implement `CenterClient`,
 * so the station protocol runs unchanged on either. Byte strings travel as lowercase hex.
 */

export type Scheme = 'a' | 'b';

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
  /** E_Mid(Ku): stored on the disc's license region as is (S15). 40 bytes hex. */
  wrappedMediumKey: string;
  /** E_Mid(Ka): used once to decrypt the master's program (S16). 40 bytes hex. */
  wrappedMasterKey: string;
  issuedAt: string;
}

export type License = LicenseA | LicenseB;

export interface ContentInfo {
  contentId: string;
  name: string;
  schemes: Scheme[];
  price: number;
}

export interface CenterClient {
  /** Authenticated as `station`; refusals are RefusedError with a stable code. */
  requestLicense(req: LicenseRequest): Promise<License>;
  listContents(): Promise<ContentInfo[]>;
  close(): Promise<void>;
}

/** Stable refusal codes shared by the in-process and HTTP centers (RefusedError.code). */
export const CenterRefusal = {
  UNKNOWN_CONTENT: 'E_UNKNOWN_CONTENT',
  SCHEME_NOT_ALLOWED: 'E_SCHEME_NOT_ALLOWED',
  UNKNOWN_STATION: 'E_UNKNOWN_STATION',
  STATION_REVOKED: 'E_STATION_REVOKED',
  BAD_MAC: 'E_BAD_MAC',
  STALE_TIMESTAMP: 'E_STALE_TIMESTAMP',
  REPLAYED_NONCE: 'E_REPLAYED_NONCE',
  BAD_REQUEST: 'E_BAD_REQUEST',
  BAD_RESPONSE_MAC: 'E_BAD_RESPONSE_MAC',
  REQUEST_CONFLICT: 'E_REQUEST_CONFLICT',
  WRONG_STATION_KEY: 'E_WRONG_STATION_KEY',
  BODY_TOO_LARGE: 'E_BODY_TOO_LARGE',
  NOT_FOUND: 'E_NOT_FOUND',
} as const;
