/**
 * KDF in counter mode (NIST SP 800-108r1 §4.1) with AES-CMAC as the PRF:
 *   K(i) = CMAC(KI, [i]32 || Label || 0x00 || Context || [L]32),  output = K(1) || K(2) || ... cut to L bits.
 * Every derived key in mocopy (KEYc per license, Ka, Ku, the Mid wrapping key, HTTP MAC keys) comes from here,
 * each under its own label, so no two purposes can ever share a key.
 */
import { cmac } from './cmac.js';

export function kdf(key: Uint8Array, label: string, context: Uint8Array, length = 32): Buffer {
  if (!Number.isInteger(length) || length <= 0 || length > 1024) throw new RangeError('KDF output length must be 1..1024 bytes');
  const labelBytes = Buffer.from(label, 'utf8');
  const fixed = Buffer.alloc(labelBytes.length + 1 + context.length + 4);
  labelBytes.copy(fixed, 0);
  fixed[labelBytes.length] = 0x00;
  Buffer.from(context.buffer, context.byteOffset, context.byteLength).copy(fixed, labelBytes.length + 1);
  fixed.writeUInt32BE(length * 8, fixed.length - 4);
  const blocks = Math.ceil(length / 16);
  const out = Buffer.alloc(blocks * 16);
  const input = Buffer.alloc(4 + fixed.length);
  fixed.copy(input, 4);
  for (let i = 1; i <= blocks; i++) {
    input.writeUInt32BE(i, 0);
    cmac(key, input).copy(out, (i - 1) * 16);
  }
  return out.subarray(0, length);
}
