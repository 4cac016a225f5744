/**
 * The streaming stream-AEAD (pieces go straight into the chunk's cipher, no re-slicing copies): the bytes
 * are those of the format as it was (chunk by chunk), whatever the piece sizes; the reader may recycle its
 * buffers; nothing unauthenticated is released.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import {
  CIPHER_CHUNK, HEADER_SECTOR, PLAIN_CHUNK, Purpose, chunkCount, createStreamHeader, decryptStream, encryptChunk, encryptStream, encryptedSize, streamIdFor,
} from '../lib/crypto/stream-aead.js';
import { IntegrityError } from '../lib/crypto/errors.js';
import { collect, fromList } from './helpers/streams.js';

function split(b: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0, k = 0; i < b.length; k++) {
    const n = sizes[k % sizes.length]!;
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out;
}
/** A reader that recycles one buffer: each piece is overwritten with garbage as soon as the next is asked for. */
async function* recycling(b: Buffer, size: number): AsyncGenerator<Buffer> {
  const ring = Buffer.alloc(size);
  for (let i = 0; i < b.length; i += size) {
    const n = Math.min(size, b.length - i);
    b.copy(ring, 0, i, i + n);
    yield ring.subarray(0, n);
    ring.fill(0xa5);
  }
}
/** The format chunk by chunk, as the first implementation wrote it: header sector, then encryptChunk per chunk. */
function reference(key: Buffer, h: ReturnType<typeof createStreamHeader>, plain: Buffer): Buffer {
  const sector = Buffer.alloc(HEADER_SECTOR);
  h.bytes.copy(sector);
  const parts: Buffer[] = [sector];
  for (let i = 0; i < chunkCount(h.plainLength); i++) parts.push(encryptChunk(key, h, i, plain.subarray(i * PLAIN_CHUNK, (i + 1) * PLAIN_CHUNK)));
  return Buffer.concat(parts);
}

describe('stream AEAD, streaming pieces', () => {
  const key = randomBytes(32);
  const noncePrefix = randomBytes(7);
  const header = (n: number) => createStreamHeader({ purpose: Purpose.MASTER, plainLength: n, streamId: streamIdFor('X'), noncePrefix });

  it('writes the same bytes as chunk-by-chunk encryption (format unchanged) for any piece sizes', async () => {
    for (const n of [0, 1, 15, 16, 17, PLAIN_CHUNK - 1, PLAIN_CHUNK, PLAIN_CHUNK + 1, 2 * PLAIN_CHUNK + 4097, 5 * PLAIN_CHUNK]) {
      const plain = randomBytes(n);
      const want = reference(key, header(n), plain);
      assert.equal(want.length, encryptedSize(n));
      for (const sizes of [[n || 1], [1 << 20], [65536], [4096, 1, 65520, 7], [PLAIN_CHUNK]]) {
        const got = await collect(encryptStream(key, header(n), fromList(split(plain, sizes))));
        assert.ok(got.equals(want), `size ${n}, pieces ${sizes.join('/')}`);
      }
    }
  });

  it('decrypts whatever the pieces: single bytes, tags split across pieces, one buffer, header split', async () => {
    const n = 3 * PLAIN_CHUNK + 100;
    const plain = randomBytes(n);
    const enc = reference(key, header(n), plain);
    for (const sizes of [[enc.length], [1 << 20], [65536], [100, 2048, 65529, 3, 13], [CIPHER_CHUNK - 8, 16], [517]]) {
      assert.ok((await collect(decryptStream(key, fromList(split(enc, sizes))))).equals(plain), `pieces ${sizes.join('/')}`);
    }
    const small = randomBytes(40);
    const encSmall = reference(key, header(40), small);
    assert.ok((await collect(decryptStream(key, fromList(split(encSmall, [1]))))).equals(small), 'byte by byte');
  });

  it('a reader that recycles its buffers (overwritten once the next piece is asked for) decrypts and encrypts right', async () => {
    const n = 4 * PLAIN_CHUNK + 999;
    const plain = randomBytes(n);
    const enc = reference(key, header(n), plain);
    for (const size of [512, 4096, 65536, 1 << 20, CIPHER_CHUNK + 16]) {
      assert.ok((await collect(decryptStream(key, recycling(enc, size)))).equals(plain), `decrypt, ${size}-byte recycled pieces`);
      assert.ok((await collect(encryptStream(key, header(n), recycling(plain, size)))).equals(enc), `encrypt, ${size}-byte recycled pieces`);
    }
    // Scheme B's chain: decrypt under one key, encrypt under another, from a recycling reader.
    const key2 = randomBytes(32);
    const h2 = createStreamHeader({ purpose: Purpose.DISC_COPY, plainLength: n, streamId: streamIdFor('X'), noncePrefix });
    const re = await collect(encryptStream(key2, h2, decryptStream(key, recycling(enc, 65536))));
    assert.ok(re.equals(reference(key2, h2, plain)));
  });

  it('releases no plaintext of a chunk before its tag verified', async () => {
    const n = 3 * PLAIN_CHUNK;
    const plain = randomBytes(n);
    const enc = reference(key, header(n), plain);
    enc[HEADER_SECTOR + CIPHER_CHUNK + 40000]! ^= 0x10;
    for (const size of [65536, 1 << 20, 4096]) {
      const seen: Buffer[] = [];
      await assert.rejects(async () => { for await (const b of decryptStream(key, fromList(split(enc, [size])))) seen.push(Buffer.from(b)); }, /chunk 1 failed authentication/);
      assert.ok(Buffer.concat(seen).equals(plain.subarray(0, PLAIN_CHUNK)), `only chunk 0 came out (${size}-byte pieces)`);
    }
    // A short final chunk is released only once the stream has ended with it.
    const m = PLAIN_CHUNK + 10;
    const p2 = randomBytes(m);
    const e2 = Buffer.concat([reference(key, header(m), p2), Buffer.alloc(5)]);
    const seen: Buffer[] = [];
    await assert.rejects(async () => { for await (const b of decryptStream(key, fromList([e2]))) seen.push(b); }, /chunk 1 has 31 bytes, expected 26/);
    assert.equal(Buffer.concat(seen).length, PLAIN_CHUNK);
  });

  it('keeps the messages for truncation and extra data, with the stream offset', async () => {
    const n = 2 * PLAIN_CHUNK + 50;
    const enc = reference(key, header(n), randomBytes(n));
    const err = async (b: Buffer, sizes: number[], re: RegExp) => {
      try {
        await collect(decryptStream(key, fromList(split(b, sizes))));
      } catch (e) {
        assert.ok(e instanceof IntegrityError, String(e));
        assert.match((e as Error).message, re);
        return;
      }
      assert.fail(`no error for ${re}`);
    };
    for (const sizes of [[1 << 20], [1000]]) {
      await err(enc.subarray(0, HEADER_SECTOR + CIPHER_CHUNK + 100), sizes, /chunk 1 has 100 bytes, expected 65536/);
      await err(enc.subarray(0, HEADER_SECTOR + 2 * CIPHER_CHUNK), sizes, /truncated: chunk 2 of 3 is missing/);
      await err(enc.subarray(0, enc.length - 3), sizes, /chunk 2 has 63 bytes, expected 66/);
      await err(Buffer.concat([enc, randomBytes(CIPHER_CHUNK)]), sizes, /chunk 2 has 65536 bytes, expected 66/);
      await err(enc.subarray(0, 1000), sizes, /header is truncated/);
    }
    const full = reference(key, header(PLAIN_CHUNK), randomBytes(PLAIN_CHUNK));
    await err(Buffer.concat([full, Buffer.alloc(1)]), [65536], /extra data after the final chunk 0/);
  });

  it('refuses plaintext longer or shorter than announced', async () => {
    await assert.rejects(collect(encryptStream(key, header(10), fromList([randomBytes(11)]))), /longer than the 10 bytes/);
    await assert.rejects(collect(encryptStream(key, header(PLAIN_CHUNK + 1), fromList([randomBytes(PLAIN_CHUNK)]))), /ended after 65520 of 65521/);
    await assert.rejects(collect(encryptStream(key, header(5), fromList([]))), /ended after 0 of 5/);
  });
});
