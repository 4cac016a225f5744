import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import fc from 'fast-check';
import { cmac } from '../lib/crypto/cmac.js';
import { constantTimeEqual } from '../lib/crypto/compare.js';
import { IntegrityError } from '../lib/crypto/errors.js';
import { kdf } from '../lib/crypto/kdf.js';
import { unwrapKey, wrapKey } from '../lib/crypto/keywrap.js';
import * as S from '../lib/crypto/scheme.js';
import {
  CIPHER_CHUNK, HEADER_SECTOR, PLAIN_CHUNK, Purpose, createStreamHeader, decryptStream, encryptStream, encryptedSize, parseStreamHeader, streamIdFor, decryptChunkAt,
} from '../lib/crypto/stream-aead.js';
import { collect, fromList } from './helpers/streams.js';

const h = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

const from = (...bufs: Buffer[]) => fromList(bufs);
async function encrypt(key: Buffer, plain: Buffer, piece = 10007): Promise<Buffer> {
  const header = createStreamHeader({ purpose: Purpose.MASTER, plainLength: plain.length, streamId: streamIdFor('X') });
  const pieces: Buffer[] = [];
  for (let i = 0; i < plain.length; i += piece) pieces.push(plain.subarray(i, i + piece));
  return collect(encryptStream(key, header, fromList(pieces)));
}

describe('crypto', () => {
  it('AES-CMAC matches RFC 4493 section 4 vectors', () => {
    const k = h('2b7e151628aed2a6abf7158809cf4f3c');
    const m = h('6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710');
    assert.equal(cmac(k, Buffer.alloc(0)).toString('hex'), 'bb1d6929e95937287fa37d129b756746');
    assert.equal(cmac(k, m.subarray(0, 16)).toString('hex'), '070a16b46b4d4144f79bdd9dd04a287c');
    assert.equal(cmac(k, m.subarray(0, 40)).toString('hex'), 'dfa66747de9ae63030ca32611497c827');
    assert.equal(cmac(k, m).toString('hex'), '51f0bebf7e3b9d92fc49741779363cfe');
  });
  it('AES key wrap matches RFC 3394 section 4 vectors and fails loudly on a wrong KEK', () => {
    const kek128 = h('000102030405060708090a0b0c0d0e0f');
    const kek192 = h('000102030405060708090a0b0c0d0e0f1011121314151617');
    const kek256 = h('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const key128 = h('00112233445566778899aabbccddeeff');
    const key256 = h('00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f');
    assert.equal(wrapKey(kek128, key128).toString('hex'), '1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5');
    assert.equal(wrapKey(kek192, key128).toString('hex'), '96778b25ae6ca435f92b5b97c050aed2468ab8a17ad84e5d');
    assert.equal(wrapKey(kek256, key256).toString('hex'), '28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21');
    assert.ok(unwrapKey(kek256, h('28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21')).equals(key256));
    assert.throws(() => unwrapKey(kek128, h('28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21')), IntegrityError);
    const e = (() => { try { unwrapKey(kek128, wrapKey(kek256, key128)); } catch (x) { return x as Error; } })()!;
    assert.ok(!e.message.includes(key128.toString('hex')), 'no key material in messages');
  });
  it('SP 800-108 counter-mode KDF: the fixed input is formatted per the standard; labels and contexts separate keys', () => {
    const k = randomBytes(32);
    const ctx = Buffer.from('ctx');
    const block = (i: number) => cmac(k, Buffer.concat([Buffer.from([0, 0, 0, i]), Buffer.from('L', 'utf8'), Buffer.from([0]), ctx, Buffer.from([0, 0, 1, 0])]));
    assert.ok(kdf(k, 'L', ctx, 32).equals(Buffer.concat([block(1), block(2)])));
    assert.equal(kdf(k, 'L', ctx, 20).length, 20);
    assert.ok(!kdf(k, 'L', ctx, 20).equals(kdf(k, 'L', ctx, 32).subarray(0, 20)), 'L is bound in');
    assert.ok(!kdf(k, 'A', ctx).equals(kdf(k, 'B', ctx)));
    assert.ok(!kdf(k, 'A', Buffer.from('1')).equals(kdf(k, 'A', Buffer.from('2'))));
  });
  it('constant-time comparison', () => {
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abc')), true);
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd')), false);
    assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('ab')), false);
  });
  it('license recipes: per-pair KEYc, CS bound to both IDs, E_Mid binds a key to one medium ID', () => {
    const secret = randomBytes(32);
    const km = randomBytes(32);
    const mid = h('0102030405060708');
    const keyC = S.deriveCertificationKey(secret, mid, 'APP');
    assert.ok(!keyC.equals(S.deriveCertificationKey(secret, h('0102030405060709'), 'APP')), 'another disc, another KEYc');
    assert.ok(!keyC.equals(S.deriveCertificationKey(secret, mid, 'APQ')), 'another program, another KEYc');
    const cs = S.certificateCode(keyC, mid, 'APP');
    assert.equal(cs.length, 16);
    assert.ok(!cs.equals(S.certificateCode(keyC, h('0102030405060709'), 'APP')));
    // length-prefixed: ('01', 'AB') and ('01' + 'A'...) never encode alike
    assert.ok(!S.encodePair(h('01'), 'AB').equals(S.encodePair(h('0141'), 'B')));
    const ku = S.deriveMediumKey(km, mid);
    const wrapped = S.wrapUnderMedium(mid, ku);
    assert.ok(S.unwrapUnderMedium(mid, wrapped).equals(ku));
    assert.throws(() => S.unwrapUnderMedium(h('0102030405060709'), wrapped), IntegrityError);
    assert.ok(!S.deriveContentKey(km, 'APP').equals(S.deriveMediumKey(km, Buffer.from('APP'))), 'Ka and Ku never coincide');
  });

  describe('chunked AEAD (STREAM over AES-256-GCM)', () => {
    const key = randomBytes(32);
    it('round-trips sizes around chunk boundaries, constant header sector, sector-aligned chunks', async () => {
      for (const n of [0, 1, PLAIN_CHUNK - 1, PLAIN_CHUNK, PLAIN_CHUNK + 1, 3 * PLAIN_CHUNK, 200_001]) {
        const plain = randomBytes(n);
        const enc = await encrypt(key, plain);
        assert.equal(enc.length, encryptedSize(n));
        assert.equal((enc.length - HEADER_SECTOR - (enc.length - HEADER_SECTOR) % CIPHER_CHUNK) % 2048, 0);
        assert.ok((await collect(decryptStream(key, from(enc), { streamId: streamIdFor('X') }))).equals(plain), `size ${n}`);
      }
    });
    it('detects a flipped byte, swapped chunks, a dropped last chunk, appended data, a changed header, the wrong key', async () => {
      const plain = randomBytes(3 * PLAIN_CHUNK + 100);
      const enc = await encrypt(key, plain);
      const dec = (b: Buffer, k = key) => collect(decryptStream(k, from(b)));
      const flip = Buffer.from(enc);
      flip[HEADER_SECTOR + CIPHER_CHUNK + 5]! ^= 1;
      await assert.rejects(dec(flip), /chunk 1 failed authentication/);
      const c = (i: number) => enc.subarray(HEADER_SECTOR + i * CIPHER_CHUNK, HEADER_SECTOR + (i + 1) * CIPHER_CHUNK);
      const swapped = Buffer.concat([enc.subarray(0, HEADER_SECTOR), c(1), c(0), enc.subarray(HEADER_SECTOR + 2 * CIPHER_CHUNK)]);
      await assert.rejects(dec(swapped), /chunk 0 failed authentication/);
      await assert.rejects(dec(enc.subarray(0, HEADER_SECTOR + 3 * CIPHER_CHUNK)), /truncated: chunk 3 of 4 is missing/);
      await assert.rejects(dec(enc.subarray(0, enc.length - 1)), IntegrityError);
      await assert.rejects(dec(Buffer.concat([enc, Buffer.alloc(16)])), /chunk 3 has 132 bytes/);
      const full = await encrypt(key, randomBytes(2 * PLAIN_CHUNK));
      await assert.rejects(dec(Buffer.concat([full, Buffer.alloc(16)])), /extra data after the final chunk/);
      const hdr = Buffer.from(enc);
      hdr.writeBigUInt64BE(BigInt(plain.length - 1), 16);
      await assert.rejects(dec(hdr), IntegrityError);
      await assert.rejects(dec(enc, randomBytes(32)), /chunk 0 failed authentication/);
      await assert.rejects(collect(decryptStream(key, from(enc), { streamId: streamIdFor('Y') })), /another content ID/);
    });
    it('random access: any chunk decrypts on its own', async () => {
      const plain = randomBytes(2 * PLAIN_CHUNK + 7);
      const enc = await encrypt(key, plain);
      const header = parseStreamHeader(enc.subarray(0, HEADER_SECTOR));
      const last = decryptChunkAt(key, header, 2, enc.subarray(HEADER_SECTOR + 2 * CIPHER_CHUNK));
      assert.ok(last.equals(plain.subarray(2 * PLAIN_CHUNK)));
    });
    it('chunks that node:crypto encrypted decrypt with @noble/ciphers GCM (interop)', async () => {
      const plain = randomBytes(PLAIN_CHUNK + 300);
      const enc = await encrypt(key, plain);
      const header = parseStreamHeader(enc.subarray(0, HEADER_SECTOR));
      for (const [i, final] of [[0, 0], [1, 1]] as const) {
        const nonce = Buffer.alloc(12);
        header.noncePrefix.copy(nonce);
        nonce.writeUInt32BE(i, 7);
        nonce[11] = final;
        const chunk = enc.subarray(HEADER_SECTOR + i * CIPHER_CHUNK, Math.min(enc.length, HEADER_SECTOR + (i + 1) * CIPHER_CHUNK));
        const out = gcm(key, nonce, header.bytes).decrypt(chunk);
        assert.ok(Buffer.from(out).equals(plain.subarray(i * PLAIN_CHUNK, (i + 1) * PLAIN_CHUNK)));
      }
    });
    it('round-trips arbitrary sizes and piece sizes (property)', async () => {
      await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 3 * PLAIN_CHUNK }), fc.integer({ min: 1, max: 100_000 }), async (n, piece) => {
        const plain = randomBytes(n);
        const enc = await encrypt(key, plain, piece);
        const pieces: Buffer[] = [];
        for (let i = 0; i < enc.length; i += piece) pieces.push(enc.subarray(i, i + piece));
        assert.ok((await collect(decryptStream(key, fromList(pieces)))).equals(plain));
      }), { numRuns: 40 });
    });
  });
});
