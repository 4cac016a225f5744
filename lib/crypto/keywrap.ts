/**
 * AES key wrap (RFC 3394): how keys travel and rest wrapped under another key (EKU(KEYc), E_Mid(Ku)).
 * Its integrity check value makes a wrong KEK or a tampered wrap fail loudly instead of yielding a wrong key.
 */
import { aeskw } from '@noble/ciphers/aes.js';
import { IntegrityError } from './errors.js';

export function wrapKey(kek: Uint8Array, key: Uint8Array): Buffer {
  if (key.length < 16 || key.length % 8 !== 0) throw new RangeError('a wrapped key must be at least 16 bytes and a multiple of 8');
  return Buffer.from(aeskw(kek).encrypt(key));
}

export function unwrapKey(kek: Uint8Array, wrapped: Uint8Array, what = 'wrapped key'): Buffer {
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) throw new IntegrityError(`${what}: malformed (${wrapped.length} bytes)`);
  try {
    return Buffer.from(aeskw(kek).decrypt(wrapped));
  } catch {
    throw new IntegrityError(`${what}: integrity check failed (wrong key, or the data was altered)`);
  }
}
