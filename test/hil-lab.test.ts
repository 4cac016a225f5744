import { strict as assert } from 'node:assert';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MO_HEADER_SIZE } from '../lib/emulator/index.js';
import { mocopy } from './helpers/cli.js';
import { makeWorld, type World } from './helpers/fixtures.js';


describe('HIL lab runner (mocopy hil) on emulated drives', function () {
  this.timeout(180_000);
  let w: World;
  before(async () => { w = await makeWorld(); });
  after(() => w.cleanup());

  it('hil check: preflight with a medium-ID method and a quirk entry', () => {
    const disc = w.newDisc('chk.mo', 'a0a1a2a3');
    const r = mocopy(['hil', 'check', `emu:${disc}`, `emu:${w.masterIso}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const [mo, cd] = JSON.parse(r.stdout).devices;
    assert.equal(mo.type, 'optical memory device');
    assert.equal(mo.blockSize, 2048);
    assert.deepEqual(mo.quirk.method, { type: 'read-media-serial-number' });
    assert.equal(cd.quirk, undefined);
  });

  it('hil run: needs --yes, refuses a foreign disc, then runs the suite and the protocol with a JSON report and JUnit XML', () => {
    const disc = w.newDisc('run.mo', 'b0b1b2b3', 16 << 20);
    assert.equal(mocopy(['hil', 'run', '--master', `emu:${w.masterIso}`, '--target', `emu:${disc}`]).code, 2);
    const foreign = w.newDisc('foreign.mo', 'c0');
    const fd = openSync(foreign, 'r+');
    writeSync(fd, Buffer.from('NOT OURS'), 0, 8, MO_HEADER_SIZE);
    closeSync(fd);
    const refused = mocopy(['hil', 'run', '--master', `emu:${w.masterIso}`, '--target', `emu:${foreign}`, '--yes']);
    assert.equal(refused.code, 5);
    assert.match(refused.stderr, /not a mocopy disc/);
    const report = join(w.dir, 'report.json');
    const junitFile = join(w.dir, 'junit.xml');
    const r = mocopy(['hil', 'run', '--master', `emu:${w.masterIso}`, '--target', `emu:${disc}`, '--yes', '--center-db', w.ledger, '--station-key', w.stationKeyPath, '--report', report, '--junit', junitFile]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const rep = JSON.parse(readFileSync(report, 'utf8'));
    assert.equal(rep.failed, 0);
    assert.ok(rep.passed >= 10);
    assert.ok(rep.results.some((x: { fullTitle: string }) => /scheme A/.test(x.fullTitle)));
    assert.ok(rep.timings.target['READ(10)'].count >= 50 && rep.timings.target['WRITE(10)'].count >= 10);
    assert.match(readFileSync(junitFile, 'utf8'), /<testsuite name="mocopy-hil" tests="\d+" failures="0">/);
  });
});
