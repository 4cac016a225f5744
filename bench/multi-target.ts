/**
 * One master, N targets, with the drives' speed model (MO 5 MB/s write, 7 MB/s read-back; a 48x CD master):
 * the time for 4 targets against the time for 1 (goal ≤ 1.1: the master read and the crypto are shared and hidden
 * behind the drives), the master bytes read (once, whatever N) and the peak RSS of a child process copying to 1 and
 * to 4 targets (goal ≤ 1.5).
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCenterClient } from '../lib/center/local-client.js';
import { createMoImage, MO_SPEED, type EmulatedDrive, type SpeedModel } from '../lib/emulator/index.js';
import { openDevice } from '../lib/drives/open.js';
import { copyToTargets } from '../lib/protocol/station.js';
import { readStationKey } from '../lib/center/station-key.js';
import { setup, type Setup } from './copy-throughput.js';
import { header, now, row } from './util.js';

const CD48: SpeedModel = { latencyMs: 2, readMBps: 7.2, writeMBps: 0 };
const SIZE = Number(process.env.MOCOPY_BENCH_MULTI_MB ?? 8) << 20;

async function copyTo(s: Setup, count: number, tag: string): Promise<{ ms: number; masterBytes: number }> {
  const discs = Array.from({ length: count }, (_, i) => {
    const p = join(s.dir, `${tag}-${i}.mo`);
    createMoImage(p, { mediumId: Buffer.from(`${tag}${i}`.padEnd(8, '0')), capacityBytes: SIZE + (8 << 20), blockSize: 2048 });
    return p;
  });
  const master = await openDevice(`emu-cd:${s.master}`, { emulator: { speed: CD48 } });
  const targets = await Promise.all(discs.map((d) => openDevice(`emu:${d}`, { emulator: { speed: MO_SPEED } })));
  const center = new LocalCenterClient(s.ledger, readStationKey(s.stationKeyPath));
  const t0 = now();
  try {
    const outcomes = await copyToTargets({ master, targets, contentId: 'BIG', scheme: 'b', center, stationKey: readStationKey(s.stationKeyPath) });
    if (!outcomes.every((o) => o.ok)) throw new Error('a copy failed in the benchmark');
    return { ms: now() - t0, masterBytes: (master.transport as EmulatedDrive).stats.bytesRead };
  } finally {
    await master.close();
    for (const t of targets) await t.close();
    await center.close();
    for (const d of discs) rmSync(d, { force: true });
  }
}

/** Peak RSS (MiB) of a fresh process copying to `count` targets. */
function childRss(s: Setup, count: number): number {
  const code = `
    const { copyTo } = await import(${JSON.stringify(import.meta.filename)});
    const { setupFrom } = await import(${JSON.stringify(import.meta.filename)});
    await copyTo(setupFrom(${JSON.stringify(s)}), ${count}, 'rss${count}');
    process.stdout.write(String(process.resourceUsage().maxRSS / 1024));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, MOCOPY_BENCH_CHILD: '1' } });
  if (r.status !== 0) throw new Error(`RSS child failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

export function setupFrom(s: Setup): Setup {
  return s;
}
export { copyTo };

export async function run(): Promise<void> {
  header(`One master, N MO targets with the speed model (${SIZE >> 20} MiB, scheme B: decrypt once, re-encrypt per disc)`);
  const s = await setup(SIZE);
  try {
    const one = await copyTo(s, 1, 'one');
    const four = await copyTo(s, 4, 'four');
    console.log(row(['targets', 'seconds', 'master MB read'], [10, 10, 16]));
    console.log(row([1, one.ms / 1000, one.masterBytes / 1e6], [10, 10, 16]));
    console.log(row([4, four.ms / 1000, four.masterBytes / 1e6], [10, 10, 16]));
    const ratio = four.ms / one.ms;
    console.log(`multi.time4vs1   ${ratio.toFixed(2)}  (goal ≤ 1.1) ${ratio <= 1.1 ? 'met' : 'NOT MET'}`);
    console.log(`multi.masterOnce ${four.masterBytes === one.masterBytes ? 'yes' : 'NO'} (${four.masterBytes} vs ${one.masterBytes} bytes read from the master)`);
    const r1 = childRss(s, 1);
    const r4 = childRss(s, 4);
    console.log(`multi.rss4vs1    ${(r4 / r1).toFixed(2)}  (goal ≤ 1.5) ${r4 / r1 <= 1.5 ? 'met' : 'NOT MET'}   peak RSS ${r1.toFixed(0)} MiB for 1 target, ${r4.toFixed(0)} MiB for 4`);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === import.meta.filename && !process.env.MOCOPY_BENCH_CHILD) await run();
