/**
 * Station authentication over HTTP (pure functions, used by both ends).
 * Request MAC: HMAC-SHA256 under kdf(KU, 'mocopy/http/request', stationId) over
 *   method \n path \n timestamp \n nonce \n SHA-256(body).
 * Response MAC: HMAC-SHA256 under kdf(KU, 'mocopy/http/response', stationId) over
 *   status \n request nonce \n SHA-256(body) — bound to the request's nonce, so a response replayed
 *   to another request, or altered on the way, is refused by the station.
 * Scheme-B key material is also wrapped under kdf(KU, 'mocopy/http/transit', stationId): E_Mid(.) alone binds keys
 * to a disc but does not hide them (Mid is public), and Ka would decrypt the master for any eavesdropper.
 */
import { createHash, createHmac } from 'node:crypto';
import { constantTimeEqual } from '../crypto/compare.js';
import { kdf } from '../crypto/kdf.js';
import { unwrapKey, wrapKey } from '../crypto/keywrap.js';
import type { LicenseB } from './types.js';

export const H = {
  station: 'x-mocopy-station',
  timestamp: 'x-mocopy-timestamp',
  nonce: 'x-mocopy-nonce',
  mac: 'x-mocopy-mac',
  responseMac: 'x-mocopy-response-mac',
} as const;

/** Requests older or newer than this are refused (clock skew + transit). */
export const TIMESTAMP_WINDOW_MS = 5 * 60 * 1000;

function bodyHash(body: Uint8Array | string): string {
  return createHash('sha256').update(body).digest('hex');
}

export function requestMac(key: Uint8Array, stationId: string, method: string, path: string, timestamp: string, nonce: string, body: Uint8Array | string): Buffer {
  const k = kdf(key, 'mocopy/http/request', Buffer.from(stationId, 'utf8'));
  return createHmac('sha256', k).update(`${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${bodyHash(body)}`).digest();
}

export function responseMac(key: Uint8Array, stationId: string, status: number, requestNonce: string, body: Uint8Array | string): Buffer {
  const k = kdf(key, 'mocopy/http/response', Buffer.from(stationId, 'utf8'));
  return createHmac('sha256', k).update(`${status}\n${requestNonce}\n${bodyHash(body)}`).digest();
}

export function macMatches(expected: Buffer, presentedHex: string | undefined): boolean {
  if (!presentedHex || !/^[0-9a-f]{64}$/.test(presentedHex)) return false;
  return constantTimeEqual(expected, Buffer.from(presentedHex, 'hex'));
}

function transitKey(key: Uint8Array, stationId: string): Buffer {
  return kdf(key, 'mocopy/http/transit', Buffer.from(stationId, 'utf8'));
}

/** Scheme-B license as it travels: E_Mid(Ku) and E_Mid(Ka) each wrapped once more under the station's transit key. */
export function sealLicenseB(key: Uint8Array, stationId: string, l: LicenseB): LicenseB {
  const k = transitKey(key, stationId);
  return { ...l, wrappedMediumKey: wrapKey(k, Buffer.from(l.wrappedMediumKey, 'hex')).toString('hex'), wrappedMasterKey: wrapKey(k, Buffer.from(l.wrappedMasterKey, 'hex')).toString('hex') };
}

export function openLicenseB(key: Uint8Array, stationId: string, l: LicenseB): LicenseB {
  const k = transitKey(key, stationId);
  return {
    ...l,
    wrappedMediumKey: unwrapKey(k, Buffer.from(l.wrappedMediumKey, 'hex'), 'sealed E_Mid(Ku)').toString('hex'),
    wrappedMasterKey: unwrapKey(k, Buffer.from(l.wrappedMasterKey, 'hex'), 'sealed E_Mid(Ka)').toString('hex'),
  };
}
