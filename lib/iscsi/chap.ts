/**
 * CHAP for iSCSI login (RFC 7143 §12.1.3, RFC 1994): the target sends an identifier and a challenge, the
 * initiator answers MD5(id || secret || challenge). Values travel as 0x-hex (or 0b-base64, which libiscsi's
 * tests also send). Compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const CHAP_MD5 = '5';
const CHALLENGE_BYTES = 16;

export interface ChapChallenge {
  id: number;
  challenge: Buffer;
}

export function newChallenge(): ChapChallenge {
  return { id: randomBytes(1)[0]!, challenge: randomBytes(CHALLENGE_BYTES) };
}

export function encodeBinary(b: Buffer): string {
  return '0x' + b.toString('hex');
}

/** Decodes a CHAP binary value (0x hex or 0b base64); undefined when malformed. */
export function decodeBinary(v: string): Buffer | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(v)) {
    const hex = v.slice(2);
    return Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
  }
  if (/^0[bB][A-Za-z0-9+/]+=*$/.test(v)) return Buffer.from(v.slice(2), 'base64');
  return undefined;
}

export function chapResponse(id: number, secret: Buffer, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.from([id])).update(secret).update(challenge).digest();
}

export function chapVerify(c: ChapChallenge, secret: Buffer, response: Buffer): boolean {
  const want = chapResponse(c.id, secret, c.challenge);
  return response.length === want.length && timingSafeEqual(response, want);
}
