/**
 * The identifiers every layer speaks of: the content ID (SIDi / DID) a master offers and a license
 * names, the medium ID (IDk / Mid) a drive reports from the disc's factory zone, and the scheme.
 * Owned by no layer: formats, the center and the station import them from here.
 */
import { UsageError } from '../errors.js';

export type Scheme = 'a' | 'b';
export const SCHEMES: readonly Scheme[] = ['a', 'b'];

export function isScheme(s: unknown): s is Scheme {
  return s === 'a' || s === 'b';
}

const CONTENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isContentId(id: unknown): id is string {
  return typeof id === 'string' && CONTENT_ID.test(id);
}

export function validateContentId(id: string): string {
  if (!isContentId(id)) {
    throw new UsageError(`content ID "${id}" is not valid: use 1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit`);
  }
  return id;
}

/** A medium ID is 1..64 bytes (the MO image header and the center's ledger hold at most that). */
export const MEDIUM_ID_MAX_BYTES = 64;

/** Lowercase hex of 1..64 bytes, as a medium ID travels between station and center. */
export function isMediumIdHex(s: unknown): s is string {
  return typeof s === 'string' && s.length >= 2 && s.length <= 2 * MEDIUM_ID_MAX_BYTES && s.length % 2 === 0 && /^[0-9a-f]+$/.test(s);
}
