/**
 * mocopy's stream AEAD against raw node:crypto AES-256-GCM, same run, same bytes, same chunk sizes.
 *
 * A baseline that holds still: one random source buffer serves every variant; the raw baseline encrypts
 * (decrypts) it in the same 65,520-byte (65,536-byte) chunks the stream format uses, one cipher object per
 * chunk as the stream must; the stream is fed the same bytes in 1 MiB pieces, as the device API's
 * readStream (default chunkBytes) and the master build (its read stream's highWaterMark) deliver them —
 * pieces that do not line up with the chunks (the header sector shifts them by 2 KiB, and 1 MiB is not a
 * multiple of 65,520): that is the real case. A second table feeds 64 KiB pieces (a device whose max
 * transfer is 64 KiB), and a third measures raw AES-GCM per chunk size, which is what the 64 KiB chunk
 * of the format was checked against. After warm-up rounds,
 * every round runs every variant once, in an order that alternates round by round, and the figures are
 * medians: a sample is the best of 3 runs (candidate and baseline alternating within the round: interference
 * only slows a run down), rates are the median of the rounds' samples, a ratio is the candidate's median over its baseline's median
 * (so value / baseline = ratio in the JSON), the baseline having run next to the candidate in every round.
 * Rates are per second of this process's CPU time (see `timed`): the wall clock of a shared machine counts
 * other processes' time too, which moved the baseline by a third between two runs; the wall-clock ratio is
 * printed beside each figure.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import {
  CIPHER_CHUNK, HEADER_SECTOR, PLAIN_CHUNK, Purpose, TAG_BYTES, createStreamHeader, decryptStream, encryptStream, streamIdFor,
} from '../lib/crypto/stream-aead.js';
import { header, mbps, now, row, timed, type BenchFigure } from './util.js';

/** Raw AES-256-GCM encryption rate (wall clock) of node:crypto on PLAIN_CHUNK pieces, as copy-throughput uses it. */
export async function rawGcmMBps(bytes = 256 << 20): Promise<number> {
  const key = randomBytes(32);
  const chunk = randomBytes(PLAIN_CHUNK);
  const iv = randomBytes(12);
  rawEncrypt(key, iv, chunk, Math.min(bytes, 16 << 20)); // warm-up
  const t0 = now();
  rawEncrypt(key, iv, chunk, bytes);
  return mbps(bytes, now() - t0);
}

function rawEncrypt(key: Buffer, iv: Buffer, src: Buffer, bytes: number): void {
  for (let done = 0; done < bytes;) {
    const off = done % src.length;
    const take = Math.min(PLAIN_CHUNK, src.length - off, bytes - done);
    iv.writeUInt32BE(done / PLAIN_CHUNK >>> 0, 7);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.update(src.subarray(off, off + take));
    c.final();
    c.getAuthTag();
    done += take;
  }
}

type Key = 'rawEnc' | 'rawDec' | 'enc' | 'dec' | 'reenc' | 'self';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function* pieces(b: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}
async function* asyncPieces(b: Buffer, size: number): AsyncGenerator<Buffer> {
  yield* pieces(b, size);
}

export interface AeadBenchOptions {
  /** Bytes of plaintext per variant per round. */
  bytes?: number;
  rounds?: number;
  warmup?: number;
  /** Size of the pieces the stream is fed (the figures' table). */
  piece?: number;
  /** Runs per sample, the best taken (default 3). */
  inner?: number;
  /** Also pair the raw baseline with itself: shows how far a ratio of 1 wanders. */
  selfCheck?: boolean;
  /** Leave out the informational tables (64 KiB pieces, chunk sizes, @noble/ciphers). */
  figuresOnly?: boolean;
}

interface Measured {
  /** MB per second of this process's CPU time. */
  rates: Record<Key, number[]>;
  /** The same by the wall clock, for comparison. */
  wall: Record<Key, number[]>;
}


async function measure(src: Buffer, pieceSize: number, rounds: number, warmup: number, selfCheck: boolean, inner: number): Promise<Measured> {
  const bytes = src.length;
  const key = randomBytes(32);
  const key2 = randomBytes(32);

  // Raw baseline material: src in PLAIN_CHUNK chunks, nonce = fixed prefix || index || 0, as the stream does.
  const iv = randomBytes(12);
  const rawChunks = [...pieces(src, PLAIN_CHUNK)];
  const rawCipher = rawChunks.map((p, i) => {
    iv.writeUInt32BE(i, 7);
    const c = createCipheriv('aes-256-gcm', key, iv);
    const body = c.update(p);
    c.final();
    return { body, tag: c.getAuthTag() };
  });
  const rawEnc = (): void => {
    for (let i = 0; i < rawChunks.length; i++) {
      iv.writeUInt32BE(i, 7);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.update(rawChunks[i]!);
      c.final();
      c.getAuthTag();
    }
  };
  const rawDec = (): void => {
    for (let i = 0; i < rawCipher.length; i++) {
      iv.writeUInt32BE(i, 7);
      const d = createDecipheriv('aes-256-gcm', key, iv);
      d.setAuthTag(rawCipher[i]!.tag);
      d.update(rawCipher[i]!.body);
      d.final();
    }
  };

  // Stream material: the same bytes; the ciphertext once, as one buffer read back in pieces.
  const h = createStreamHeader({ purpose: Purpose.MASTER, plainLength: bytes, streamId: streamIdFor('BENCH') });
  const h2 = createStreamHeader({ purpose: Purpose.DISC_COPY, plainLength: bytes, streamId: streamIdFor('BENCH') });
  const encParts: Buffer[] = [];
  for await (const c of encryptStream(key, h, asyncPieces(src, pieceSize))) encParts.push(c);
  const enc = Buffer.concat(encParts);
  if (enc.length !== HEADER_SECTOR + rawChunks.length * TAG_BYTES + bytes || CIPHER_CHUNK !== PLAIN_CHUNK + TAG_BYTES) throw new Error('bench: unexpected stream size');
  const streamEnc = async (): Promise<void> => {
    let n = 0;
    for await (const c of encryptStream(key, h, asyncPieces(src, pieceSize))) n += c.length;
    if (n !== enc.length) throw new Error('bench: stream encrypt size');
  };
  const streamDec = async (): Promise<void> => {
    let n = 0;
    for await (const p of decryptStream(key, asyncPieces(enc, pieceSize))) n += p.length;
    if (n !== bytes) throw new Error('bench: stream decrypt size');
  };
  // Scheme B's S16-S17: the master's stream decrypted under Ka and encrypted again under Ku, chained as
  // lib/protocol/scheme-b.ts chains them (masterStream -> targetStream).
  const reencrypt = async (): Promise<void> => {
    let n = 0;
    for await (const c of encryptStream(key2, h2, decryptStream(key, asyncPieces(enc, pieceSize)))) n += c.length;
    if (n !== enc.length) throw new Error('bench: re-encrypt size');
  };

  // Each candidate is paired with its baseline, run next to it (AB in one round, BA in the next).
  const pairs: Array<[Exclude<Key, 'rawEnc' | 'rawDec'>, 'rawEnc' | 'rawDec']> = [['enc', 'rawEnc'], ['dec', 'rawDec'], ['reenc', 'rawEnc']];
  const fns: Record<Key, () => void | Promise<void>> = { rawEnc, rawDec, enc: streamEnc, dec: streamDec, reenc: reencrypt, self: rawEnc };
  if (selfCheck) pairs.push(['self', 'rawEnc']);
  const rates: Record<Key, number[]> = { rawEnc: [], rawDec: [], enc: [], dec: [], reenc: [], self: [] };
  const wall: Record<Key, number[]> = { rawEnc: [], rawDec: [], enc: [], dec: [], reenc: [], self: [] };
  for (let r = 0; r < warmup + rounds; r++) {
    for (const [cand, base] of r % 2 ? [...pairs].reverse() : pairs) {
      // One sample each = the best of `inner` runs, candidate and baseline alternating (ABAB... or BABA...):
      // interference on a shared machine only ever slows a run down, and one slowed run is not a sample.
      const c = { cpu: 0, wall: 0 };
      const b = { cpu: 0, wall: 0 };
      const best = (acc: { cpu: number; wall: number }, t: { cpu: number; wall: number }) => {
        acc.cpu = Math.max(acc.cpu, t.cpu);
        acc.wall = Math.max(acc.wall, t.wall);
      };
      for (let j = 0; j < inner; j++) {
        if ((r + j) % 2) { best(c, await timed(bytes, fns[cand])); best(b, await timed(bytes, fns[base])); } else { best(b, await timed(bytes, fns[base])); best(c, await timed(bytes, fns[cand])); }
      }
      if (r < warmup) continue;
      rates[cand].push(c.cpu);
      rates[base].push(b.cpu);
      wall[cand].push(c.wall);
      wall[base].push(b.wall);
    }
  }
  return { rates, wall };
}

/** Raw AES-256-GCM encryption per chunk size (one cipher per chunk), interleaved rounds, medians (CPU time). */
async function chunkSweep(src: Buffer, sizes: number[], rounds: number): Promise<number[]> {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const out: number[][] = sizes.map(() => []);
  for (let r = 0; r < rounds + 2; r++) {
    for (const [k, size] of sizes.entries()) {
      const t = await timed(src.length, () => {
        for (let off = 0, i = 0; off < src.length; off += size, i++) {
          iv.writeUInt32BE(i, 7);
          const c = createCipheriv('aes-256-gcm', key, iv);
          c.update(src.subarray(off, off + size));
          c.final();
          c.getAuthTag();
        }
      });
      if (r >= 2) out[k]!.push(t.cpu);
    }
  }
  return out.map(median);
}

const spread = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[Math.floor(s.length / 4)]!.toFixed(0)}-${s[Math.ceil((3 * s.length) / 4) - 1]!.toFixed(0)}`;
};

export async function run(figures: BenchFigure[] = [], o: AeadBenchOptions = {}): Promise<BenchFigure[]> {
  const bytes = o.bytes ?? 8 << 20;
  const rounds = o.rounds ?? 21;
  const warmup = o.warmup ?? 3;
  const pieceSize = o.piece ?? 1 << 20;
  const src = randomBytes(bytes); // the one source of bytes for every variant and every table
  const w = [46, 10, 12, 8, 6, 11, 6];

  const inner = o.inner ?? 3;
  const main = await measure(src, pieceSize, rounds, warmup, o.selfCheck ?? false, inner);
  const m = (x: Measured, k: Key): number => median(x.rates[k]);
  header(`AEAD throughput (MB per CPU second of this process, median of ${rounds} interleaved rounds after ${warmup} warm-up, each sample the best of ${inner} runs of ${bytes >> 20} MiB, stream fed ${pieceSize >> 10} KiB pieces; ratio = candidate median / baseline median, the baseline run next to the candidate in every round; wall = the same ratio by the wall clock)`);
  console.log(row(['implementation', 'MB/s', 'IQR', 'ratio', 'goal', '', 'wall'], w));
  console.log(row(['node:crypto AES-256-GCM encrypt (baseline)', m(main, 'rawEnc'), spread(main.rates.rawEnc), 1, '', ''], w));
  console.log(row(['node:crypto AES-256-GCM decrypt (baseline)', m(main, 'rawDec'), spread(main.rates.rawDec), 1, '', ''], w));
  const fig = (name: string, label: string, k: Key, base: Key, goal: number): void => {
    const ratio = m(main, k) / m(main, base);
    figures.push({ name, value: m(main, k), unit: 'MB/s', baseline: m(main, base), ratio, goal });
    console.log(row([label, m(main, k), spread(main.rates[k]), ratio, goal, ratio >= goal ? 'ok' : 'BELOW GOAL', median(main.wall[k]) / median(main.wall[base])], w));
  };
  fig('aead.encrypt', 'mocopy stream-aead encrypt', 'enc', 'rawEnc', 0.9);
  fig('aead.decrypt', 'mocopy stream-aead decrypt', 'dec', 'rawDec', 0.9);
  fig('schemeB.reencrypt', 'scheme B re-encrypt (decrypt + encrypt)', 'reenc', 'rawEnc', 0.45);
  if (o.selfCheck) console.log(row(['raw encrypt against itself (noise check)', m(main, 'self'), spread(main.rates.self), m(main, 'self') / m(main, 'rawEnc'), '', ''], w));
  if (o.figuresOnly) return figures;

  const small = await measure(src, 64 << 10, Math.max(5, rounds >> 1), 2, false, inner);
  header(`the same with the stream fed 64 KiB pieces (a device whose max transfer is 64 KiB; not the figures above, same goals for reference)`);
  console.log(row(['implementation', 'MB/s', 'IQR', 'ratio', 'goal', '', 'wall'], w));
  for (const [label, k, base, goal] of [['stream-aead encrypt, 64 KiB pieces', 'enc', 'rawEnc', 0.9], ['stream-aead decrypt, 64 KiB pieces', 'dec', 'rawDec', 0.9], ['scheme B re-encrypt, 64 KiB pieces', 'reenc', 'rawEnc', 0.45]] as const) {
    const ratio = m(small, k) / m(small, base);
    console.log(row([label, m(small, k), spread(small.rates[k]), ratio, goal, ratio >= goal ? 'ok' : 'below goal', median(small.wall[k]) / median(small.wall[base])], w));
  }

  const sizes = [16 << 10, PLAIN_CHUNK, 256 << 10, 1 << 20];
  const sweep = await chunkSweep(src.subarray(0, 16 << 20), sizes, 7);
  header('raw node:crypto AES-256-GCM per chunk size (MB per CPU second, one cipher object per chunk, median of 7 interleaved rounds): the format\'s chunk');
  console.log(row(['chunk', 'MB/s', 'vs 65,520'], [12, 10, 10]));
  sizes.forEach((s, i) => console.log(row([s === PLAIN_CHUNK ? '65520 *' : `${s >> 10} KiB`, sweep[i]!, sweep[i]! / sweep[1]!], [12, 10, 10])));

  const nb = 4 << 20;
  const nbuf = randomBytes(PLAIN_CHUNK);
  const key = randomBytes(32);
  const t0 = now();
  for (let d = 0; d < nb; d += nbuf.length) gcm(key, randomBytes(12)).encrypt(nbuf);
  const noble = mbps(nb, now() - t0);
  console.log(row(['@noble/ciphers gcm (pure JS, one pass, for scale)', noble, '', noble / m(main, 'rawEnc'), '', ''], w));
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
