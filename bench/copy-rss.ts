/**
 * Peak RSS of the `mocopy copy` and `mocopy open` commands as a technician runs them (the CLI process, the
 * in-process center included, emulated drives), measured from outside with GNU time, for a 64 MiB and a
 * 1 GiB program, both schemes. Goals (issue 12): ≤ 128 MiB at 1 GiB, and the 1 GiB peak within 10% of the
 * 64 MiB one. Run compiled (dist/), as the installed command runs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createMoImage } from '../lib/emulator/index.js';
import type { Scheme } from '../lib/domain/index.js';
import { setup } from './copy-throughput.js';
import { header, row, type BenchFigure } from './util.js';

const TIME = '/usr/bin/time';

/** Runs the CLI under GNU time; returns its peak RSS in MiB. */
function peak(args: string[]): number {
  const r = spawnSync(TIME, ['-f', '%M', process.execPath, join('dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', env: { ...process.env, MOCOPY_CONFIG: '/nonexistent/mocopy.json' } });
  if (r.status !== 0) throw new Error(`mocopy ${args[0]} failed (${r.status}): ${r.stderr.slice(-500)}`);
  const kb = Number(r.stderr.trim().split('\n').pop());
  return kb / 1024;
}

export async function run(figures: BenchFigure[] = []): Promise<void> {
  header('peak RSS of the mocopy copy and open commands (GNU time, MiB; goal: <= 128 at 1 GiB and within 10% of the 64 MiB peak)');
  if (!existsSync(TIME)) {
    console.log('  not run: GNU time missing (apt-get install time)');
    return;
  }
  const results: Record<string, number> = {};
  for (const size of [64 << 20, 1 << 30]) {
    const s = await setup(size);
    try {
      for (const scheme of ['a', 'b'] as Scheme[]) {
        const disc = join(s.dir, `t-${scheme}.mo`);
        createMoImage(disc, { mediumId: Buffer.from(scheme === 'a' ? '0123456789abcdef' : 'fedcba9876543210', 'hex'), capacityBytes: size + (16 << 20), blockSize: 2048, overwrite: true });
        const key = `${size >> 20}-${scheme}`;
        results[`copy-${key}`] = peak(['copy', `emu-cd:${s.master}`, `emu:${disc}`, '--content', 'BIG', '--center-db', s.ledger, '--station-key', s.stationKeyPath, '--scheme', scheme]);
        results[`open-${key}`] = peak(['open', `emu:${disc}`, '--content', 'BIG', '--station-key', s.stationKeyPath, '--out', '/dev/null']);
        rmSync(disc, { force: true });
      }
    } finally {
      rmSync(s.dir, { recursive: true, force: true });
    }
  }
  const W = [10, 8, 14, 14, 10, 8];
  console.log(row(['command', 'scheme', '64 MiB peak', '1 GiB peak', 'ratio', 'goal'], W));
  let worst = 0;
  for (const cmd of ['copy', 'open']) {
    for (const scheme of ['a', 'b']) {
      const small = results[`${cmd}-64-${scheme}`]!;
      const big = results[`${cmd}-1024-${scheme}`]!;
      worst = Math.max(worst, big);
      console.log(row([cmd, scheme.toUpperCase(), small.toFixed(1), `${big.toFixed(1)}${big > 128 ? ' (over 128)' : ''}`, big / small, '<= 1.10'], W));
      figures.push({ name: `${cmd}.rss1g.${scheme}`, value: big, unit: 'MiB', baseline: small, ratio: big / small, goal: 1.1 });
    }
  }
  figures.push({ name: 'copy.rss1g', value: Math.max(results['copy-1024-a']!, results['copy-1024-b']!), unit: 'MiB', baseline: 128, ratio: Math.max(results['copy-1024-a']!, results['copy-1024-b']!) / 128, goal: 1 });
  console.log(`  the largest 1 GiB peak: ${worst.toFixed(1)} MiB (goal <= 128)`);
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
