/**
 * `npm run bench`: every benchmark, each printing ratios against a baseline measured in the same run.
 * `npm run bench -- --json FILE` also writes every figure as a JSON array of
 * { name, value, unit, baseline, ratio, goal } (goal null where none is set).
 */
import { writeFileSync } from 'node:fs';
import * as addon from './addon-roundtrip.js';
import * as center from './center-issuance.js';
import * as centerOps from './center-ops.js';
import * as centerPostgres from './center-postgres.js';
import * as copy from './copy-throughput.js';
import * as consoleBench from './console.js';
import * as copyRss from './copy-rss.js';
import * as crypto from './crypto-aead.js';
import * as emulator from './emulator-throughput.js';
import * as multi from './multi-target.js';
import type { BenchFigure } from './util.js';

const at = process.argv.indexOf('--json');
const jsonFile = at >= 0 ? process.argv[at + 1] : undefined;
if (at >= 0 && !jsonFile) throw new Error('--json needs a file name');

const figures: BenchFigure[] = [];
const benches: Array<{ run(figures?: BenchFigure[]): Promise<unknown> }> = [emulator, addon, crypto, copy, copyRss, multi, center, centerPostgres, centerOps, consoleBench];
for (const b of benches) await b.run(figures);
await (await import('./iscsi-throughput.js')).run(); // needs tgt + libiscsi-bin and root; skipped with a note otherwise

if (jsonFile) {
  writeFileSync(jsonFile, JSON.stringify(figures, null, 2) + '\n');
  console.log(`\n${figures.length} figures written to ${jsonFile}`);
}
const below = figures.filter((f) => f.goal !== null && (f.lowerIsBetter || f.unit === 'MiB' || f.name.endsWith('.rss1g') ? f.ratio > f.goal : f.ratio < f.goal));
console.log(`\n${below.length} of ${figures.filter((f) => f.goal !== null).length} figures with a goal are on the wrong side of it${below.length ? ': ' + below.map((f) => `${f.name} ${f.ratio.toFixed(2)} (goal ${f.goal})`).join(', ') : ''}`);
