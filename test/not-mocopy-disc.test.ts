/** `open` and `verify` on discs without a mocopy layout: exit 8 "not a mocopy disc", never usage (2), never success. */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MO_HEADER_SIZE } from '../lib/index.js';
import { mocopy } from './helpers/cli.js';
import { makeWorld, type World } from './helpers/fixtures.js';

describe('not a mocopy disc', function () {
  this.timeout(120_000);
  let w: World;
  before(async () => { w = await makeWorld(); });
  after(() => w.cleanup());

  function disc(name: string, fill?: (size: number) => Buffer): string {
    const p = w.newDisc(name, 'abcdef01');
    if (fill) {
      const fd = openSync(p, 'r+');
      const b = fill(1 << 20);
      writeSync(fd, b, 0, b.length, MO_HEADER_SIZE);
      closeSync(fd);
    }
    return p;
  }
  const cases: Array<[string, () => string]> = [
    ['a blank MO', () => disc('blank.mo')],
    ['an MO full of another program\'s data', () => disc('foreign.mo', (n) => Buffer.alloc(n, 'another program\'s data ')) ],
    ['an MO of random bytes', () => disc('random.mo', (n) => randomBytes(n))],
    ['a CD-ROM in place of the MO', () => w.masterIso],
  ];
  for (const [what, make] of cases) {
    it(`${what}: open and verify exit 8 with a machine-readable reason`, () => {
      const spec = `emu:${make()}`;
      const env = { MOCOPY_STATION_KEY: w.stationKeyPath };
      for (const args of [['verify', spec], ['verify', spec, '--deep'], ['open', spec, '--content', 'APP-1', '--out', join(w.dir, 'x.out')]]) {
        const r = mocopy([...args, '--json'], env);
        assert.equal(r.code, 8, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /not a mocopy disc/);
        const err = JSON.parse(r.stdout.trim().split('\n').pop()!).error;
        assert.deepEqual([err.code, err.exitCode], ['E_NOT_MOCOPY_DISC', 8]);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      }
    });
  }

  it('a mocopy disc without that program: open refuses (5), it is not a usage error', () => {
    const d = disc('ours.mo');
    const env = { MOCOPY_CENTER_DB: w.ledger, MOCOPY_STATION_KEY: w.stationKeyPath };
    assert.equal(mocopy(['copy', `emu-cd:${w.masterIso}`, `emu:${d}`, '--content', 'APP-2'], env).code, 0);
    const r = mocopy(['open', `emu:${d}`, '--content', 'APP-1', '--out', join(w.dir, 'y.out')], env);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /no copy of APP-1 on this disc \(it holds: APP-2\)/);
  });
});
