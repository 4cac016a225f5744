/**
 * The fuzzer's findings as regression tests: every test/fuzz-corpus/<target>-<short>.bin (written by `npm run fuzz`
 * when it finds something) replayed through its target (fuzz/targets.ts) must end in a value or the target's typed
 * error — no other exception, no allocation past the input's size, no broken invariant, within the time cap.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORPUS_DIR, runInput, targetOfFile } from '../fuzz/harness.js';
import { TARGETS } from '../fuzz/targets.js';

/** The fuzzer's cap is 1 s; a loaded test machine gets more. */
const TIME_CAP_MS = 5000;

const files = existsSync(CORPUS_DIR) ? readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.bin')).sort() : [];

describe('fuzz corpus (test/fuzz-corpus/, npm run fuzz): each finding replayed ends in a value or the typed error', function () {
  this.timeout(60_000);

  it('every corpus file is named <target>-<short>.bin after a fuzz target', () => {
    for (const f of files) assert.ok(targetOfFile(f, TARGETS), `${f}: no fuzz target of that name (npm run fuzz -- --list)`);
  });

  for (const t of TARGETS) {
    const mine = files.filter((f) => targetOfFile(f, TARGETS) === t);
    if (!mine.length) continue;
    describe(`${t.name}: ${t.about.split(' (')[0]}`, () => {
      before(() => t.setup?.());
      after(() => t.teardown?.());
      for (const f of mine) {
        it(f, async () => {
          const o = await runInput(t, readFileSync(join(CORPUS_DIR, f)), TIME_CAP_MS);
          if (o.kind === 'finding') assert.fail(`${f} still fails (${o.finding}):\n${o.text}`);
        });
      }
    });
  }
});
