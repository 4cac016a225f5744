/**
 * Peak RSS of the `mocopy copy` and `mocopy open` commands as a technician runs them (the CLI process, the
 * in-process center included, emulated drives), measured from outside with GNU time, for a 64 MiB and a
 * 1 GiB program, both schemes. Goals (issue 12): ≤ 128 MiB at 1 GiB, and the 1 GiB peak within 10% of the
 * 64 MiB one. Run compiled (dist/), as the installed command runs; each figure is the median of three runs. Also
 * prints, for the 1 GiB copies, the same copy with V8's default heap settings (MOCOPY_LEAN_HEAP=0) and the CPU
 * time of both.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createMoImage } from '../lib/emulator/index.js';
import type { Scheme } from '../lib/domain/index.js';
import { setup } from './copy-throughput.js';
import { header, row, type BenchFigure } from './util.js';

const TIME = '/usr/bin/time';
const RUNS = 3;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs the CLI under GNU time; returns its peak RSS in MiB and its CPU seconds (user + system). */
function measure(args: string[], env: Record<string, string> = {}): { mib: number; cpu: number } {
  const r = spawnSync(TIME, ['-f', '%M %U %S', process.execPath, join('dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', env: { ...process.env, MOCOPY_CONFIG: '/nonexistent/mocopy.json', ...env } });
  if (r.status !== 0) throw new Error(`mocopy ${args[0]} failed (${r.status}): ${r.stderr.slice(-500)}`);
  const [kb, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { mib: kb! / 1024, cpu: user! + sys! };
}
const peak = (args: string[]): number => measure(args).mib;

const copyArgs = (s: { master: string; ledger: string; stationKeyPath: string }, disc: string, scheme: Scheme) =>
  ['copy', `emu-cd:${s.master}`, `emu:${disc}`, '--content', 'BIG', '--center-db', s.ledger, '--station-key', s.stationKeyPath, '--scheme', scheme];

export async function run(figures: BenchFigure[] = []): Promise<void> {
  header('peak RSS of the mocopy copy and open commands (GNU time, MiB; goal: <= 128 at 1 GiB and within 10% of the 64 MiB peak)');
  if (!existsSync(TIME)) {
    console.log('  not run: GNU time missing (apt-get install time)');
    return;
  }
  const results: Record<string, number> = {};
  const runs: Record<string, number[]> = {};
  for (const size of [64 << 20, 1 << 30]) {
    const s = await setup(size);
    try {
      for (const scheme of ['a', 'b'] as Scheme[]) {
        const disc = join(s.dir, `t-${scheme}.mo`);
        const key = `${size >> 20}-${scheme}`;
        // Each command three times on a fresh disc (a peak moves by some MiB from run to run): the median counts.
        const blank = () => createMoImage(disc, { mediumId: Buffer.from(scheme === 'a' ? '0123456789abcdef' : 'fedcba9876543210', 'hex'), capacityBytes: size + (16 << 20), blockSize: 2048, overwrite: true });
        const copies: number[] = [];
        const opens: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          blank();
          copies.push(peak(copyArgs(s, disc, scheme)));
          opens.push(peak(['open', `emu:${disc}`, '--content', 'BIG', '--station-key', s.stationKeyPath, '--out', '/dev/null']));
        }
        if (size > 64 << 20) {
          // What the lean heap costs and saves (cli/lean-heap.ts): the same copy with V8's defaults, in this run.
          blank();
          const lean = measure(copyArgs(s, disc, scheme));
          blank();
          const plain = measure(copyArgs(s, disc, scheme), { MOCOPY_LEAN_HEAP: '0' });
          console.log(`  copy ${scheme.toUpperCase()} 1 GiB: lean heap ${lean.mib.toFixed(1)} MiB, ${lean.cpu.toFixed(2)} s CPU; V8 defaults (MOCOPY_LEAN_HEAP=0) ${plain.mib.toFixed(1)} MiB, ${plain.cpu.toFixed(2)} s CPU (CPU ×${(lean.cpu / plain.cpu).toFixed(2)})`);
        }
        results[`copy-${key}`] = median(copies);
        results[`open-${key}`] = median(opens);
        runs[`copy-${key}`] = copies;
        runs[`open-${key}`] = opens;
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
      console.log(row([cmd, scheme.toUpperCase(), small.toFixed(1), `${big.toFixed(1)}${big > 128 ? ' (over 128)' : ''}`, big / small, '<= 1.10'], W) + `  runs: ${runs[`${cmd}-64-${scheme}`]!.map((x) => x.toFixed(0)).join('/')} and ${runs[`${cmd}-1024-${scheme}`]!.map((x) => x.toFixed(0)).join('/')}${big / small > 1.1 ? '  BELOW GOAL' : ''}`);
      figures.push({ name: `${cmd}.rss1g.${scheme}`, value: big, unit: 'MiB', baseline: small, ratio: big / small, goal: 1.1 });
    }
  }
  figures.push({ name: 'copy.rss1g', value: Math.max(results['copy-1024-a']!, results['copy-1024-b']!), unit: 'MiB', baseline: 128, ratio: Math.max(results['copy-1024-a']!, results['copy-1024-b']!) / 128, goal: 1 });
  console.log(`  the largest 1 GiB peak: ${worst.toFixed(1)} MiB (goal <= 128)`);
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
