/**
 * Emulator READ/WRITE throughput at 64 KiB and 1 MiB transfers, 1 and 4 commands in flight,
 * against plain fs reads/writes of the same image file in the same run.
 */
import { closeSync, fsyncSync, openSync, readSync, writeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMoImage, openEmulator, MO_HEADER_SIZE } from '../lib/emulator/index.js';
import * as cdb from '../lib/scsi/cdb.js';
import { header, mbps, now, row } from './util.js';

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-'));
  const img = join(dir, 'b.mo');
  const total = 128 << 20;
  createMoImage(img, { mediumId: Buffer.from('01', 'hex'), capacityBytes: total, blockSize: 2048 });
  header('emulator throughput vs fs on the same image (MB/s; ratio = emulator / fs)');
  console.log(row(['op', 'xfer', 'inflight', 'emulator', 'fs', 'ratio'], [6, 8, 9, 10, 10, 8]));
  try {
    for (const op of ['write', 'read'] as const) {
      for (const xfer of [64 << 10, 1 << 20]) {
        // fs baseline: positional sync I/O of the same sizes.
        const fd = openSync(img, 'r+');
        const buf = Buffer.alloc(xfer, 7);
        let t0 = now();
        for (let off = 0; off < total; off += xfer) {
          if (op === 'write') writeSync(fd, buf, 0, xfer, MO_HEADER_SIZE + off);
          else readSync(fd, buf, 0, xfer, MO_HEADER_SIZE + off);
        }
        if (op === 'write') fsyncSync(fd); // the emulator's run ends with SYNCHRONIZE CACHE: same durability
        const fsMs = now() - t0;
        closeSync(fd);
        for (const inflight of [1, 4]) {
          const d = await openEmulator(`emu:${img}`, { maxTransferBytes: 1 << 20, cache: { maxDirtyBytes: 64 << 20 } });
          const blocks = xfer / 2048;
          const bufs = Array.from({ length: inflight }, () => Buffer.alloc(xfer, 9));
          t0 = now();
          let lba = 0;
          const worker = async (b: Buffer) => {
            while (lba < total / 2048) {
              const at = lba;
              lba += blocks;
              const r = await d.execute({ cdb: op === 'write' ? cdb.write10(at, blocks) : cdb.read10(at, blocks), direction: op === 'write' ? 'out' : 'in', data: b, timeoutMs: 10000 });
              if (r.status !== 0) throw new Error('bench command failed');
            }
          };
          await Promise.all(bufs.map(worker));
          if (op === 'write') await d.execute({ cdb: cdb.synchronizeCache10(), direction: 'none', timeoutMs: 60000 });
          const emMs = now() - t0;
          await d.close();
          console.log(row([op, `${xfer >> 10}K`, inflight, mbps(total, emMs), mbps(total, fsMs), mbps(total, emMs) / mbps(total, fsMs)], [6, 8, 9, 10, 10, 8]));
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
