/**
 * Emulator READ/WRITE throughput at 64 KiB and 1 MiB transfers, 1 and 4 commands in flight, against plain
 * positional fs I/O of the same image file (readSync/writeSync, one at a time: the floor the emulator
 * sits on), in the same run.
 *
 * A baseline that holds still: the image is filled with random bytes first (no sparse holes), each
 * configuration runs the fs baseline and the emulator next to each other (AB in one round, BA in the
 * next), after warm-up rounds; rates are medians over the rounds, a ratio the emulator's median over fs's
 * (so value / baseline = ratio in the JSON).
 * A read sample is the best of 3 runs (fs and emulator alternating). Reads are measured in CPU time of this process (they come from the page cache: CPU-bound; the wall clock of
 * a shared machine counts other processes' time too), writes by the wall clock (they wait for the disk).
 */
import { closeSync, fsyncSync, openSync, readSync, writeSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMoImage, openEmulator, MO_HEADER_SIZE, type EmulatedDrive } from '../lib/emulator/index.js';
import * as cdb from '../lib/scsi/cdb.js';
import { header, row, timed, type BenchFigure } from './util.js';


const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface EmulatorBenchOptions {
  /** Bytes moved per measurement. */
  bytes?: number;
  readRounds?: number;
  writeRounds?: number;
  warmup?: number;
  /** Leave out the write rows (they fsync: slow and at the disk's mercy). */
  readsOnly?: boolean;
  /** Passes over the image per read run (default 2). */
  readPasses?: number;
}

export async function run(figures: BenchFigure[] = [], o: EmulatorBenchOptions = {}): Promise<BenchFigure[]> {
  const total = o.bytes ?? 32 << 20;
  const readRounds = o.readRounds ?? 11;
  const writeRounds = o.writeRounds ?? 3;
  const warmup = o.warmup ?? 2;
  const passes = o.readPasses ?? 2;
  const bs = 2048;
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-'));
  const img = join(dir, 'b.mo');
  createMoImage(img, { mediumId: Buffer.from('01', 'hex'), capacityBytes: total, blockSize: bs });
  const moved = (op: 'read' | 'write'): number => (op === 'read' ? passes : 1) * total;
  const fd = openSync(img, 'r+');
  const fill = randomBytes(1 << 20);
  for (let off = 0; off < total; off += fill.length) writeSync(fd, fill, 0, fill.length, MO_HEADER_SIZE + off);
  fsyncSync(fd);

  // A read measurement passes over the image `passes` times (longer than a scheduler slice); a write, once.
  const fsRun = (op: 'read' | 'write', xfer: number, buf: Buffer): void => {
    for (let off = 0; off < moved(op); off += xfer) {
      if (op === 'write') writeSync(fd, buf, 0, xfer, MO_HEADER_SIZE + off);
      else readSync(fd, buf, 0, xfer, MO_HEADER_SIZE + (off % total));
    }
    if (op === 'write') fsyncSync(fd); // the emulator's run ends with SYNCHRONIZE CACHE: same durability
  };
  const emuRun = async (d: EmulatedDrive, op: 'read' | 'write', xfer: number, bufs: Buffer[]): Promise<void> => {
    const blocks = xfer / bs;
    const end = moved(op) / bs;
    let lba = 0;
    const worker = async (b: Buffer) => {
      while (lba < end) {
        const at = lba % (total / bs);
        lba += blocks;
        const r = await d.execute({ cdb: op === 'write' ? cdb.write10(at, blocks) : cdb.read10(at, blocks), direction: op === 'write' ? 'out' : 'in', data: b, timeoutMs: 10000 });
        if (r.status !== 0) throw new Error('bench command failed');
      }
    };
    await Promise.all(bufs.map(worker));
    if (op === 'write') await d.execute({ cdb: cdb.synchronizeCache10(), direction: 'none', timeoutMs: 60000 });
  };

  const goals: Record<string, number> = { 'read/65536/1': 0.5, 'read/1048576/1': 0.9 };
  const names: Record<string, string> = { 'read/65536/1': 'emulator.read64k', 'read/1048576/1': 'emulator.read1m' };
  header(`emulator throughput vs fs on the same image (MB/s, a ${total >> 20} MiB image, ${passes} passes a read run, a read sample the best of 3 runs, 1 pass a write; fs = readSync/writeSync one at a time; median of interleaved rounds after ${warmup} warm-up; ratio = emulator median / fs median; basis cpu = MB per CPU second of this process (reads: page cache, CPU-bound), wall = wall clock (writes wait for fsync); wall = the read ratio by the wall clock)`);
  const w = [6, 7, 9, 6, 10, 10, 8, 6, 11, 6];
  console.log(row(['op', 'xfer', 'inflight', 'basis', 'emulator', 'fs', 'ratio', 'goal', '', 'wall'], w));
  const d = await openEmulator(`emu:${img}`, { maxTransferBytes: 1 << 20, cache: { maxDirtyBytes: 64 << 20 } });
  try {
    for (const op of o.readsOnly ? ['read'] as const : ['read', 'write'] as const) {
      const rounds = op === 'read' ? readRounds : writeRounds;
      for (const xfer of [64 << 10, 1 << 20]) {
        for (const inflight of [1, 4]) {
          const fsBuf = Buffer.alloc(xfer, 7);
          const bufs = Array.from({ length: inflight }, () => Buffer.alloc(xfer, 9));
          const fsRates: number[] = [];
          const emRates: number[] = [];
          const fsWall: number[] = [];
          const emWall: number[] = [];
          // Reads come from the page cache: CPU-bound, measured in CPU time. Writes wait for the disk (fsync): wall clock.
          const basis = op === 'read' ? 'cpu' : 'wall';
          for (let r = 0; r < warmup + rounds; r++) {
            const timeFs = () => timed(moved(op), () => fsRun(op, xfer, fsBuf));
            const timeEm = () => timed(moved(op), () => emuRun(d, op, xfer, bufs));
            // A read sample is the best of 3 runs, fs and emulator alternating (interference only slows a run down);
            // a write sample is one run (each ends with an fsync).
            const f = { cpu: 0, wall: 0 };
            const e = { cpu: 0, wall: 0 };
            const best = (acc: { cpu: number; wall: number }, t: { cpu: number; wall: number }) => {
              acc.cpu = Math.max(acc.cpu, t.cpu);
              acc.wall = Math.max(acc.wall, t.wall);
            };
            for (let j = 0; j < (op === 'read' ? 3 : 1); j++) {
              if ((r + j) % 2) { best(e, await timeEm()); best(f, await timeFs()); } else { best(f, await timeFs()); best(e, await timeEm()); }
            }
            if (r < warmup) continue;
            fsRates.push(f[basis]);
            emRates.push(e[basis]);
            fsWall.push(f.wall);
            emWall.push(e.wall);
          }
          const key = `${op}/${xfer}/${inflight}`;
          const ratio = median(emRates) / median(fsRates);
          const goal = goals[key];
          if (names[key]) figures.push({ name: names[key]!, value: median(emRates), unit: 'MB/s', baseline: median(fsRates), ratio, goal: goal ?? null });
          console.log(row([op, `${xfer >> 10}K`, inflight, basis, median(emRates), median(fsRates), ratio, goal ?? '', goal === undefined ? '' : ratio >= goal ? 'ok' : 'BELOW GOAL', op === 'read' ? median(emWall) / median(fsWall) : ''], w));
        }
      }
    }
  } finally {
    await d.close();
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
