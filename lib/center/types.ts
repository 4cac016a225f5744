/**
 * The center's side of the license exchange: the client interface both centers implement (in-process
 * `--center-db` and HTTP `--center URL`), so the station runs unchanged on either, and the stable
 * refusal codes. The license shapes themselves are shared vocabulary (lib/domain/).
 */

import type { License, LicenseRequest, Scheme } from '../domain/index.js';

export type { License, LicenseA, LicenseB, LicenseRequest, Scheme, StationKey } from '../domain/index.js';

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
  /** Over HTTP: unknown station or wrong MAC, deliberately indistinguishable (a prober learns no station names). */
  UNAUTHORIZED: 'E_UNAUTHORIZED',
  STALE_TIMESTAMP: 'E_STALE_TIMESTAMP',
  REPLAYED_NONCE: 'E_REPLAYED_NONCE',
  BAD_REQUEST: 'E_BAD_REQUEST',
  /** A missing or malformed x-mocopy-* header, named in the message (checked before the MAC). */
  BAD_HEADERS: 'E_BAD_HEADERS',
  BAD_RESPONSE_MAC: 'E_BAD_RESPONSE_MAC',
  REQUEST_CONFLICT: 'E_REQUEST_CONFLICT',
  WRONG_STATION_KEY: 'E_WRONG_STATION_KEY',
  BODY_TOO_LARGE: 'E_BODY_TOO_LARGE',
  NOT_FOUND: 'E_NOT_FOUND',
} as const;
