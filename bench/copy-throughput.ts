/**
 * The licensed copy through emulated drives:
 *  (1) copy with no device latency vs the same SCSI reads and writes without crypto;
 *  (2) copy vs raw AES-256-GCM of node:crypto;
 *  (3) peak RSS of a child process copying a 256 MiB and a 1 GiB content (flat in size, under 150 MiB);
 *  (4) with the MO speed model, copy time vs the modelled time (bytes / write speed + verify read).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LicenseCenter } from '../lib/center/center.js';
import type { StationKey } from '../lib/domain/index.js';
import { LocalCenterClient } from '../lib/center/local-client.js';
import { writeStationKey } from '../lib/center/station-key.js';
import type { Scheme } from '../lib/domain/index.js';
import { createMoImage, type SpeedModel } from '../lib/emulator/index.js';
import { buildMaster, openMaster, findContent, readMasterProgram } from '../lib/master/index.js';
import { copyLicensed } from '../lib/protocol/station.js';
import { openDevice } from '../lib/drives/open.js';
import { rawGcmMBps } from './crypto-aead.js';
import { header, mbps, now, row } from './util.js';

export interface Setup { dir: string; ledger: string; master: string; station: StationKey; stationKeyPath: string; size: number }

export async function setup(size: number, dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-'))): Promise<Setup> {
  const src = join(dir, 'program.bin');
  const fd = openSync(src, 'w');
  ftruncateSync(fd, size); // zeros; the ciphertext is what the drives carry
  closeSync(fd);
  const ledger = join(dir, 'ledger.db');
  const c = await LicenseCenter.open(ledger);
  const station = await c.addStation('bench');
  const stationKeyPath = join(dir, 'station.key');
  writeStationKey(stationKeyPath, station);
  const key = (await c.registerContent({ contentId: 'BIG', name: 'big', schemes: ['a', 'b'] })).contentKey;
  await c.close();
  const master = join(dir, 'master.iso');
  await buildMaster({ out: master, contents: [{ contentId: 'BIG', name: 'big', sourcePath: src, key, schemes: ['a', 'b'] }] });
  rmSync(src);
  return { dir, ledger, master, station, stationKeyPath, size };
}

export async function copyOnce(s: Setup, scheme: Scheme, o: { masterSpeed?: SpeedModel; targetSpeed?: SpeedModel; discName?: string } = {}): Promise<number> {
  const disc = join(s.dir, o.discName ?? `t-${scheme}-${Date.now()}.mo`);
  createMoImage(disc, { mediumId: Buffer.from('0123456789abcdef', 'hex'), capacityBytes: s.size + (16 << 20), blockSize: 2048, overwrite: true });
  const master = await openDevice(`emu:${s.master}`, { emulator: o.masterSpeed ? { speed: o.masterSpeed } : {} });
  const target = await openDevice(`emu:${disc}`, { emulator: o.targetSpeed ? { speed: o.targetSpeed } : {} });
  const center = new LocalCenterClient(s.ledger, s.station);
  const t0 = now();
  await copyLicensed({ master, target, contentId: 'BIG', scheme, center, stationKey: s.station });
  const ms = now() - t0;
  await master.close();
  await target.close();
  await center.close();
  rmSync(disc, { force: true });
  return ms;
}

/** The same SCSI traffic without crypto: stream the master's program onto the target, sync, read back. */
async function plainCopy(s: Setup): Promise<number> {
  const disc = join(s.dir, 'plain.mo');
  createMoImage(disc, { mediumId: Buffer.from('01', 'hex'), capacityBytes: s.size + (16 << 20), blockSize: 2048, overwrite: true });
  const master = await openDevice(`emu:${s.master}`);
  const target = await openDevice(`emu:${disc}`);
  const t0 = now();
  const m = await openMaster(master);
  const e = findContent(m, 'BIG');
  async function* padded() {
    let n = 0;
    for await (const b of readMasterProgram(m, e)) { n += b.length; yield b; }
    if (n % 2048) yield Buffer.alloc(2048 - (n % 2048));
  }
  const blocks = await target.writeStream(160, padded());
  await target.sync();
  for await (const _ of target.readStream(160, blocks)) void _;
  const ms = now() - t0;
  await master.close();
  await target.close();
  rmSync(disc, { force: true });
  return ms;
}

/** Peak RSS of a child that only copies (compiled JS, as the mocopy command runs; the master is built here). */
async function childPeakRss(size: number): Promise<number> {
  const s = await setup(size);
  const child = join('dist', 'bench', 'copy-rss-child.js');
  const r = spawnSync(process.execPath, [child, s.dir, s.ledger, s.master, s.stationKeyPath, String(size)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  rmSync(s.dir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`RSS child failed: ${r.stderr}`);
  return Number(r.stdout.trim().split('\n').pop());
}

export async function run(): Promise<void> {
  const size = 128 << 20;
  const s = await setup(size);
  try {
    header(`licensed copy of a ${size >> 20} MiB program through emulated drives`);
    const plain = await plainCopy(s);
    const a = await copyOnce(s, 'a');
    const b = await copyOnce(s, 'b');
    const raw = await rawGcmMBps(size);
    console.log(row(['run', 'MB/s', 'ratio'], [52, 10, 8]));
    console.log(row(['(1) same SCSI reads+writes, no crypto (baseline)', mbps(size, plain), 1], [52, 10, 8]));
    console.log(row(['(1) scheme A copy (verify chunks, copy as is)', mbps(size, a), plain / a], [52, 10, 8]));
    console.log(row(['(1) scheme B copy (decrypt Ka, re-encrypt Ku)', mbps(size, b), plain / b], [52, 10, 8]));
    console.log(row(['(2) raw node:crypto AES-256-GCM', raw, ''], [52, 10, 8]));
    console.log(row(['(2) scheme B copy / raw AES-GCM', '', mbps(size, b) / raw], [52, 10, 8]));
    // (4) speed model: MO target 5 MB/s write, 7 MB/s read (verify pass); a 48x CD master at 7.2 MB/s overlaps the writes.
    const mo: SpeedModel = { latencyMs: 2, readMBps: 7, writeMBps: 5 };
    const cd: SpeedModel = { latencyMs: 2, readMBps: 7.2, writeMBps: 0 };
    const small = await setup(40 << 20);
    try {
      const ms = await copyOnce(small, 'b', { masterSpeed: cd, targetSpeed: mo });
      const bytes = small.size + 2048 + Math.ceil(small.size / 65520) * 16;
      const modelled = (bytes / (mo.writeMBps * 1e6) + bytes / (mo.readMBps * 1e6)) * 1000;
      console.log(row(['(4) MO speed model: copy time / modelled time', `${(ms / 1000).toFixed(2)} s`, ms / modelled], [52, 10, 8]));
      console.log(`    modelled = bytes/5 MB/s (write) + bytes/7 MB/s (read-back verify) = ${(modelled / 1000).toFixed(2)} s for ${(bytes / 1e6).toFixed(1)} MB`);
    } finally {
      rmSync(small.dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
  header('(3) peak RSS of a copy, in a child process');
  const r256 = await childPeakRss(256 << 20);
  const r1g = await childPeakRss(1 << 30);
  console.log(row(['content', 'peak RSS MiB', 'ratio'], [12, 14, 8]));
  console.log(row(['256 MiB', r256 / 1048576, 1], [12, 14, 8]));
  console.log(row(['1 GiB', r1g / 1048576, r1g / r256], [12, 14, 8]));
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
