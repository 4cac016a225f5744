/** Raw AES-256-GCM of node:crypto vs mocopy's chunked stream AEAD vs @noble/ciphers GCM, same data, same run. */
import { createCipheriv, randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { createStreamHeader, decryptStream, encryptStream, PLAIN_CHUNK, Purpose, streamIdFor } from '../lib/crypto/stream-aead.js';
import { header, mbps, now, row } from './util.js';

export async function rawGcmMBps(bytes = 256 << 20): Promise<number> {
  const key = randomBytes(32);
  const chunk = randomBytes(PLAIN_CHUNK);
  const t0 = now();
  for (let done = 0; done < bytes; done += chunk.length) {
    const c = createCipheriv('aes-256-gcm', key, randomBytes(12));
    c.update(chunk);
    c.final();
    c.getAuthTag();
  }
  return mbps(bytes, now() - t0);
}

export async function run(): Promise<void> {
  const bytes = 256 << 20;
  const key = randomBytes(32);
  header('AEAD throughput (MB/s; ratio = against raw node:crypto AES-256-GCM)');
  await rawGcmMBps(32 << 20); // warm-up: the first run pays for OpenSSL's and V8's first calls
  const raw = await rawGcmMBps(bytes);
  const plain = randomBytes(8 << 20);
  async function* source() { for (let i = 0; i < bytes / plain.length; i++) yield plain; }
  const h = createStreamHeader({ purpose: Purpose.MASTER, plainLength: bytes, streamId: streamIdFor('B') });
  let t0 = now();
  const enc: Buffer[] = [];
  let n = 0;
  for await (const c of encryptStream(key, h, source())) { if (n < 40 << 20) enc.push(c); n += c.length; }
  const encRate = mbps(bytes, now() - t0);
  const small = randomBytes(32 << 20);
  const hs = createStreamHeader({ purpose: Purpose.MASTER, plainLength: small.length, streamId: streamIdFor('B') });
  const encSmall: Buffer[] = [];
  for await (const c of encryptStream(key, hs, (async function* () { yield small; })())) encSmall.push(c);
  t0 = now();
  for await (const _ of decryptStream(key, (async function* () { yield* encSmall; })())) void _;
  const decRate = mbps(small.length, now() - t0);
  const nb = 16 << 20;
  const nbuf = randomBytes(PLAIN_CHUNK);
  t0 = now();
  for (let d = 0; d < nb; d += nbuf.length) gcm(key, randomBytes(12)).encrypt(nbuf);
  const noble = mbps(nb, now() - t0);
  console.log(row(['implementation', 'MB/s', 'ratio'], [40, 10, 8]));
  console.log(row(['node:crypto AES-256-GCM (baseline)', raw, 1], [40, 10, 8]));
  console.log(row(['mocopy stream-aead encrypt', encRate, encRate / raw], [40, 10, 8]));
  console.log(row(['mocopy stream-aead decrypt', decRate, decRate / raw], [40, 10, 8]));
  console.log(row(['@noble/ciphers gcm (pure JS)', noble, noble / raw], [40, 10, 8]));
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
