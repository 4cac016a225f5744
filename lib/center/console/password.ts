/**
 * Operators' passwords: scrypt (node:crypto) with a per-operator random salt; the stored string records the
 * parameters, so they can be raised later without invalidating older hashes:
 *   scrypt$N$r$p$<salt, base64url>$<hash, base64url>
 * Verification compares in constant time; a name that does not exist is checked against a dummy hash, so
 * it costs the same as a wrong password.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const N = 1 << 15;
const R = 8;
const P = 1;
const KEYLEN = 32;
const MAXMEM = 256 * 1024 * 1024;

function scrypt(password: string, salt: Buffer, keylen: number, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFC'), salt, keylen, o, (e, k) => (e ? reject(e) : resolve(k))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEYLEN, { N, r: R, p: P, maxmem: MAXMEM });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

const SHAPE = /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]{16,128})\$([A-Za-z0-9_-]{16,256})$/;

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = SHAPE.exec(stored);
  if (!m) return false;
  const [n, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounded, so a tampered row cannot make one sign-in take the machine's memory or minutes of CPU.
  if (n < 1024 || n > 1 << 20 || (n & (n - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const expected = Buffer.from(m[5]!, 'base64url');
  const got = await scrypt(password, Buffer.from(m[4]!, 'base64url'), expected.length, { N: n, r, p, maxmem: MAXMEM });
  return timingSafeEqual(got, expected);
}

let dummy: Promise<string> | undefined;
/** A hash of nothing anyone knows, with the current parameters: what an unknown name is checked against. */
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(24).toString('base64url'));
  return dummy;
}

/** A generated password: 20 random bytes, base64url (27 characters, 160 bits). */
export function generatePassword(): string {
  return randomBytes(20).toString('base64url');
}

export const OPERATOR_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export const MIN_PASSWORD_LENGTH = 12;
