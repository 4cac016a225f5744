/**
 * The license recipes of both embodiments, shared by the license center and the copying station.
 *
 * Scheme A (claims 1-4, FIG. 4-6): KEYc is derived per license from the center's secret and the pair
 * (IDk, SIDi). The patent's single shared KEYc would let any station that unwrapped it once mint a
 * certificate for every disc and program; a per-pair KEYc only reproduces the certificate it came with.
 *
 * Scheme B (FIG. 7-10): Ku = F_KM(Mid), Ka = F_KM(DID), F = the SP 800-108 KDF. E_Mid(.) wraps under a
 * key derived from Mid with a public constant: Mid is readable by anyone, so E_Mid binds a key to the
 * disc (a bit copy on another disc fails to unwrap) but does not hide it. See docs/crypto.md.
 */
import { randomBytes } from 'node:crypto';
import { cmac } from './cmac.js';
import { kdf } from './kdf.js';
import { unwrapKey, wrapKey } from './keywrap.js';

export const KEY_BYTES = 32;

/** A fixed, published constant: the Mid-wrapping key must be computable by any station from Mid alone. */
const MID_CONSTANT = Buffer.from('mocopy medium-id binding key v1.', 'utf8'); // 32 bytes

export function newKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** Unambiguous encoding of (IDk, SIDi): a domain tag and length-prefixed fields. */
export function encodePair(mediumId: Uint8Array, contentId: string): Buffer {
  const sid = Buffer.from(contentId, 'utf8');
  if (mediumId.length > 0xffff || sid.length > 0xffff) throw new RangeError('identifier too long');
  const tag = Buffer.from('mocopy/pair/v1', 'utf8');
  const b = Buffer.alloc(tag.length + 2 + mediumId.length + 2 + sid.length);
  let o = tag.copy(b, 0);
  o = b.writeUInt16BE(mediumId.length, o);
  o += Buffer.from(mediumId).copy(b, o);
  o = b.writeUInt16BE(sid.length, o);
  sid.copy(b, o);
  return b;
}

/** KEYc for one license (scheme A). */
export function deriveCertificationKey(centerSecret: Uint8Array, mediumId: Uint8Array, contentId: string): Buffer {
  return kdf(centerSecret, 'mocopy/A/KEYc', encodePair(mediumId, contentId));
}

/** CS = AES-CMAC(KEYc, enc(IDk, SIDi)) (scheme A, FIG. 5). */
export function certificateCode(keyC: Uint8Array, mediumId: Uint8Array, contentId: string): Buffer {
  return cmac(keyC, encodePair(mediumId, contentId));
}

/** Ka = F_KM(DID): the key of the program on the master (also Kd of scheme A by default). */
export function deriveContentKey(km: Uint8Array, contentId: string): Buffer {
  return kdf(km, 'mocopy/B/Ka', Buffer.from(contentId, 'utf8'));
}

/** Ku = F_KM(Mid): the key of the program on one disc (scheme B). */
export function deriveMediumKey(km: Uint8Array, mediumId: Uint8Array): Buffer {
  return kdf(km, 'mocopy/B/Ku', mediumId);
}

function mediumBindingKey(mediumId: Uint8Array): Buffer {
  return kdf(MID_CONSTANT, 'mocopy/B/Mid', mediumId);
}

/** E_Mid(key). */
export function wrapUnderMedium(mediumId: Uint8Array, key: Uint8Array): Buffer {
  return wrapKey(mediumBindingKey(mediumId), key);
}

export function unwrapUnderMedium(mediumId: Uint8Array, wrapped: Uint8Array, what = 'E_Mid(key)'): Buffer {
  return unwrapKey(mediumBindingKey(mediumId), wrapped, what);
}
