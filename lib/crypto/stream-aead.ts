/**
 * Streaming AEAD for programs: AES-256-GCM per chunk (node:crypto, AES-NI), in the STREAM construction
 * (Hoang, Reyhanitabar, Rogaway, Vizár 2015): nonce = 7-byte random prefix || chunk index (BE32) || final flag.
 * Corruption fails the chunk's tag, reordering fails the index, truncation fails the final flag (and the
 * length in the header, which every chunk authenticates as AAD). Ciphertext chunks are 65536 bytes —
 * 32 CD sectors, 128 MO 512-byte blocks — so any chunk is read and checked on its own (random access),
 * with constant memory.
 *
 * Layout: a 2048-byte header sector (64-byte header, zero padding), then the chunks.
 *   0  8  magic "MOCOPYE1"      8 1 version (1)      9 1 purpose (1 master, 2 disc copy)
 *   10 2  reserved              12 4 plaintext chunk size (65520)
 *   16 8  plaintext length      24 7 nonce prefix    31 1 reserved
 *   32 32 stream ID (SHA-256 of the content ID, binds the program to its catalog entry)
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, type CipherGCM as Cipher, type DecipherGCM as Decipher } from 'node:crypto';
import { IntegrityError } from './errors.js';

export const HEADER_BYTES = 64;
export const HEADER_SECTOR = 2048;
export const TAG_BYTES = 16;
export const CIPHER_CHUNK = 65536;
export const PLAIN_CHUNK = CIPHER_CHUNK - TAG_BYTES;
const MAGIC = 'MOCOPYE1';

export const Purpose = { MASTER: 1, DISC_COPY: 2 } as const;

export interface StreamHeader {
  purpose: number;
  plainLength: number;
  noncePrefix: Buffer;
  streamId: Buffer;
  /** The encoded 64 bytes (the AAD of every chunk). */
  bytes: Buffer;
}

export function streamIdFor(contentId: string): Buffer {
  return createHash('sha256').update('mocopy/stream/v1\0').update(contentId, 'utf8').digest();
}

export function chunkCount(plainLength: number): number {
  return Math.max(1, Math.ceil(plainLength / PLAIN_CHUNK));
}

export function encryptedSize(plainLength: number): number {
  return HEADER_SECTOR + plainLength + chunkCount(plainLength) * TAG_BYTES;
}

export function createStreamHeader(o: { purpose: number; plainLength: number; streamId: Buffer; noncePrefix?: Buffer }): StreamHeader {
  if (!Number.isSafeInteger(o.plainLength) || o.plainLength < 0) throw new RangeError('plaintext length must be a non-negative integer');
  if (o.streamId.length !== 32) throw new RangeError('stream ID must be 32 bytes');
  const noncePrefix = o.noncePrefix ?? randomBytes(7);
  const b = Buffer.alloc(HEADER_BYTES);
  b.write(MAGIC, 0, 'latin1');
  b[8] = 1;
  b[9] = o.purpose;
  b.writeUInt32BE(PLAIN_CHUNK, 12);
  b.writeBigUInt64BE(BigInt(o.plainLength), 16);
  noncePrefix.copy(b, 24, 0, 7);
  o.streamId.copy(b, 32);
  return { purpose: o.purpose, plainLength: o.plainLength, noncePrefix: Buffer.from(noncePrefix.subarray(0, 7)), streamId: Buffer.from(o.streamId), bytes: b };
}

export function parseStreamHeader(sector: Buffer): StreamHeader {
  if (sector.length < HEADER_SECTOR) throw new IntegrityError(`encrypted program: header is truncated (${sector.length} of ${HEADER_SECTOR} bytes)`, undefined, { streamOffset: 0 });
  if (sector.toString('latin1', 0, 8) !== MAGIC) throw new IntegrityError('encrypted program: bad header magic (not a mocopy encrypted program, or damaged)', undefined, { streamOffset: 0 });
  if (sector[8] !== 1) throw new IntegrityError(`encrypted program: unsupported version ${sector[8]}`, undefined, { streamOffset: 0 });
  if (sector.readUInt32BE(12) !== PLAIN_CHUNK) throw new IntegrityError('encrypted program: unsupported chunk size', undefined, { streamOffset: 0 });
  for (let i = HEADER_BYTES; i < HEADER_SECTOR; i++) if (sector[i] !== 0) throw new IntegrityError('encrypted program: header padding is not zero (altered)', undefined, { streamOffset: 0 });
  const len = sector.readBigUInt64BE(16);
  if (len > BigInt(Number.MAX_SAFE_INTEGER)) throw new IntegrityError('encrypted program: impossible length', undefined, { streamOffset: 0 });
  return {
    purpose: sector[9]!, plainLength: Number(len), noncePrefix: Buffer.from(sector.subarray(24, 31)),
    streamId: Buffer.from(sector.subarray(32, 64)), bytes: Buffer.from(sector.subarray(0, HEADER_BYTES)),
  };
}

function nonce(h: StreamHeader, index: number, final: boolean): Buffer {
  const n = Buffer.alloc(12);
  h.noncePrefix.copy(n, 0);
  n.writeUInt32BE(index, 7);
  n[11] = final ? 1 : 0;
  return n;
}

export function encryptChunk(key: Uint8Array, h: StreamHeader, index: number, plain: Uint8Array): Buffer {
  const final = index === chunkCount(h.plainLength) - 1;
  const c = createCipheriv('aes-256-gcm', key, nonce(h, index, final));
  c.setAAD(h.bytes);
  const out = Buffer.allocUnsafe(plain.length + TAG_BYTES);
  const n = c.update(plain).copy(out, 0);
  c.final();
  c.getAuthTag().copy(out, n);
  return out;
}

/** Expected ciphertext length of chunk `index`. */
export function cipherChunkLength(h: StreamHeader, index: number): number {
  const n = chunkCount(h.plainLength);
  if (index < n - 1) return CIPHER_CHUNK;
  return h.plainLength - (n - 1) * PLAIN_CHUNK + TAG_BYTES;
}

/** Byte offset of chunk `index` in the encrypted stream (after the header sector). */
export function chunkOffset(index: number): number {
  return HEADER_SECTOR + index * CIPHER_CHUNK;
}

/** Decrypts one chunk (random access). The index and finality are authenticated. */
export function decryptChunkAt(key: Uint8Array, h: StreamHeader, index: number, chunk: Uint8Array): Buffer {
  const n = chunkCount(h.plainLength);
  const at = { streamOffset: chunkOffset(index) };
  if (index < 0 || index >= n) throw new IntegrityError(`encrypted program: chunk ${index} is beyond the last chunk ${n - 1}`, undefined, at);
  if (chunk.length !== cipherChunkLength(h, index)) throw new IntegrityError(`encrypted program: chunk ${index} has ${chunk.length} bytes, expected ${cipherChunkLength(h, index)} (truncated or altered)`, undefined, at);
  const d = createDecipheriv('aes-256-gcm', key, nonce(h, index, index === n - 1));
  d.setAAD(h.bytes);
  d.setAuthTag(chunk.subarray(chunk.length - TAG_BYTES));
  const out = d.update(chunk.subarray(0, chunk.length - TAG_BYTES));
  try {
    d.final();
  } catch {
    throw new IntegrityError(`encrypted program: chunk ${index} failed authentication (wrong key, or the data was altered, reordered or truncated)`, undefined, at);
  }
  return out;
}

function asBuffer(p: Uint8Array): Buffer {
  return Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

/** Plaintext length of chunk `index` (all full but the last). */
function plainChunkLength(h: StreamHeader, n: number, index: number): number {
  return index < n - 1 ? PLAIN_CHUNK : h.plainLength - (n - 1) * PLAIN_CHUNK;
}

/**
 * Encrypts a plaintext stream of exactly `header.plainLength` bytes: yields the header sector, then the
 * ciphertext and each chunk's tag as separate pieces (consumers treat the output as a byte stream).
 *
 * Streaming, without re-slicing the input: each source piece goes straight into the chunk's cipher with
 * `update()` (a piece that straddles a chunk boundary is split by `subarray`, never copied), so the only
 * copy of the plaintext is the encryption itself. The source's buffers are done with before the next is
 * asked for (a producer may recycle them). One cipher object per chunk: node:crypto cannot re-key an
 * existing GCM cipher with a new nonce.
 */
export async function* encryptStream(key: Uint8Array, header: StreamHeader, source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const sector = Buffer.alloc(HEADER_SECTOR);
  header.bytes.copy(sector);
  yield sector;
  const n = chunkCount(header.plainLength);
  const iv = Buffer.alloc(12);
  header.noncePrefix.copy(iv, 0);
  let index = 0;
  let total = 0;
  let cipher: Cipher | null = null;
  let want = 0; // plaintext bytes of the current chunk
  let got = 0; // of which already encrypted
  const open = (): Cipher => {
    iv.writeUInt32BE(index, 7);
    iv[11] = index === n - 1 ? 1 : 0;
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(header.bytes);
    want = plainChunkLength(header, n, index);
    got = 0;
    return c;
  };
  for await (const p of source) {
    const piece = asBuffer(p);
    total += piece.length;
    if (total > header.plainLength) throw new RangeError(`plaintext is longer than the ${header.plainLength} bytes announced`);
    for (let pos = 0; pos < piece.length;) {
      const c: Cipher = cipher ?? (cipher = open());
      const take = Math.min(want - got, piece.length - pos);
      const body = c.update(take === piece.length ? piece : piece.subarray(pos, pos + take));
      got += take;
      pos += take;
      if (body.length) yield body;
      if (got === want) {
        c.final();
        yield c.getAuthTag();
        cipher = null;
        index++;
      }
    }
  }
  if (header.plainLength === 0) {
    const c = open();
    c.final();
    yield c.getAuthTag();
    index = 1;
  }
  if (total !== header.plainLength || index !== n) throw new RangeError(`plaintext ended after ${total} of ${header.plainLength} bytes`);
}

export interface DecryptOptions {
  /** Refuse a stream whose ID is not this (binds the program to its catalog entry / directory entry). */
  streamId?: Buffer;
  purpose?: number;
}

/**
 * Decrypts a stream (header sector + chunks), verifying everything; throws IntegrityError naming the chunk.
 *
 * Streaming, without joining the input into whole chunks: every piece of ciphertext goes straight into
 * the chunk's decipher (`update()`), only the 16 tag bytes are kept aside. A chunk's plaintext is yielded
 * (as the one or few pieces `update()` returned) only after its tag verified — nothing unauthenticated is
 * ever released. Each input buffer is done with before the next is asked for (the reader may recycle it).
 */
export async function* decryptStream(key: Uint8Array, source: AsyncIterable<Uint8Array>, opts: DecryptOptions = {}): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  // Header sector first.
  let pending: Buffer[] = [];
  let have = 0;
  let ended = false;
  while (have < HEADER_SECTOR) {
    const r = await it.next();
    if (r.done) { ended = true; break; }
    const b = asBuffer(r.value);
    // A header split over pieces is kept by copy: the reader may recycle a piece once the next is asked for.
    pending.push(have + b.length < HEADER_SECTOR ? Buffer.from(b) : b);
    have += b.length;
  }
  const head = pending.length === 1 ? pending[0]! : Buffer.concat(pending, have);
  pending = [];
  const h = parseStreamHeader(head);
  if (opts.streamId && !h.streamId.equals(opts.streamId)) throw new IntegrityError('encrypted program: it belongs to another content ID (stream ID mismatch)', undefined, { streamOffset: 0 });
  if (opts.purpose !== undefined && h.purpose !== opts.purpose) throw new IntegrityError(`encrypted program: unexpected purpose ${h.purpose}`, undefined, { streamOffset: 0 });

  const n = chunkCount(h.plainLength);
  const iv = Buffer.alloc(12);
  h.noncePrefix.copy(iv, 0);
  const tag = Buffer.alloc(TAG_BYTES);
  let tagIn: Buffer | null = null;
  let index = 0;
  let decipher: Decipher | null = null;
  let want = 0; // ciphertext bytes of the current chunk, tag included
  let body = 0; // of which ciphertext proper
  let got = 0; // bytes of the current chunk seen so far
  let over = 0; // bytes seen past a short final chunk (an error once the stream ends or they fill a chunk)
  let plain: Buffer[] = [];
  const at = (): { streamOffset: number } => ({ streamOffset: chunkOffset(index) });
  const lengthError = (seen: number): IntegrityError =>
    new IntegrityError(`encrypted program: chunk ${index} has ${seen} bytes, expected ${want} (truncated or altered)`, undefined, at());
  const open = (): Decipher => {
    iv.writeUInt32BE(index, 7);
    iv[11] = index === n - 1 ? 1 : 0;
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(h.bytes);
    want = cipherChunkLength(h, index);
    body = want - TAG_BYTES;
    got = 0;
    return d;
  };
  /** Verifies the current chunk's tag; returns its plaintext pieces. */
  const close = (): Buffer[] => {
    const d = decipher!;
    d.setAuthTag(tagIn ?? tag);
    tagIn = null;
    try {
      d.final();
    } catch {
      throw new IntegrityError(`encrypted program: chunk ${index} failed authentication (wrong key, or the data was altered, reordered or truncated)`, undefined, at());
    }
    const out = plain;
    plain = [];
    decipher = null;
    index++;
    return out;
  };

  let piece: Buffer = head;
  let pos = HEADER_SECTOR; // bytes of `piece` already used (offsets, not re-slicing: no view per step)
  for (;;) {
    while (pos < piece.length) {
      const left = piece.length - pos;
      if (index >= n) throw new IntegrityError(`encrypted program: extra data after the final chunk ${n - 1}`, undefined, at());
      if (decipher === null) decipher = open();
      if (got === want) {
        // Past a short final chunk: as many bytes as would have made up a chunk decide the message.
        over += left;
        if (want + over >= CIPHER_CHUNK) throw lengthError(CIPHER_CHUNK);
        pos = piece.length;
        break;
      }
      if (got < body) {
        const take = Math.min(body - got, left);
        const out = decipher.update(take === piece.length ? piece : piece.subarray(pos, pos + take));
        if (out.length) plain.push(out);
        got += take;
        pos += take;
        continue;
      }
      const take = Math.min(want - got, left);
      // The whole tag in this piece of a chunk that closes right here: no copy (it is used before the next
      // piece is asked for). A short final chunk closes at the end of the stream: its tag is copied.
      if (take === TAG_BYTES && want === CIPHER_CHUNK) tagIn = piece.subarray(pos, pos + TAG_BYTES);
      else piece.copy(tag, got - body, pos, pos + take);
      got += take;
      pos += take;
      // A full chunk is closed at once; a short (final) one only at the end of the stream, once its length is sure.
      if (got === want && want === CIPHER_CHUNK) {
        const out = close();
        for (let i = 0; i < out.length; i++) yield out[i]!;
      }
    }
    if (ended) break;
    const r = await it.next();
    if (r.done) break;
    piece = asBuffer(r.value);
    pos = 0;
  }
  if (decipher !== null) {
    if (got !== want || over > 0) throw lengthError(got + over);
    for (const b of close()) yield b;
  }
  if (index < n) throw new IntegrityError(`encrypted program: truncated: chunk ${index} of ${n} is missing`, undefined, at());
}
