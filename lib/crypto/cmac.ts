/**
 * AES-CMAC (RFC 4493 / NIST SP 800-38B). The patent's FIG. 5 signature processor (XOR with the
 * previous cipher block, then encrypt, block by block) is CBC-MAC; CMAC is its standardized form,
 * safe for messages of any and varying length. node:crypto has no CMAC, so @noble/ciphers does it.
 */
import { cmac as nobleCmac } from '@noble/ciphers/aes.js';

export function cmac(key: Uint8Array, message: Uint8Array): Buffer {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new RangeError('CMAC key must be 16, 24 or 32 bytes');
  return Buffer.from(nobleCmac(message, key));
}
