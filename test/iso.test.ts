import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LicenseCenter } from '../lib/center/center.js';
import { FormatError } from '../lib/errors.js';
import { decryptMasterProgram, findContent, openMaster } from '../lib/master/index.js';
import { openDevice } from '../lib/drives/open.js';
import { makeWorld, type World , withCenter } from './helpers/fixtures.js';
import { requireTool } from './helpers/tools.js';
import { collect } from './helpers/streams.js';


describe('master ISO 9660', () => {
  let w: World;
  before(async () => { w = await makeWorld(); });
  after(() => w.cleanup());

  it('is accepted by isoinfo, which extracts byte-identical catalog and programs', function () {
    requireTool(this, 'isoinfo', 'genisoimage');
    const d = execFileSync('isoinfo', ['-d', '-i', w.masterIso], { encoding: 'utf8' });
    assert.match(d, /Volume id: MOCOPY_MASTER/);
    assert.match(d, /Logical block size is: 2048/);
    const l = execFileSync('isoinfo', ['-l', '-i', w.masterIso], { encoding: 'utf8' });
    assert.match(l, /MOCOPY\.CAT;1/);
    assert.match(l, /P0001\.ENC;1/);
    const cat = JSON.parse(execFileSync('isoinfo', ['-i', w.masterIso, '-x', '/MOCOPY.CAT;1'], { encoding: 'utf8' }));
    assert.deepEqual(cat.contents.map((c: { contentId: string }) => c.contentId), ['APP-1', 'APP-2']);
    const p1 = execFileSync('isoinfo', ['-i', w.masterIso, '-x', '/PROGRAMS/P0001.ENC;1'], { maxBuffer: 64 << 20 });
    assert.equal(p1.length, cat.contents[0].encryptedSize);
  });

  it('is accepted by xorriso, which lists and extracts it', function () {
    requireTool(this, 'xorriso', 'xorriso');
    const out = join(w.dir, 'x-extract');
    const r = spawnSync('xorriso', ['-osirrox', 'on', '-indev', w.masterIso, '-extract', '/', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const files = spawnSync('xorriso', ['-indev', w.masterIso, '-find', '/', '-type', 'f'], { encoding: 'utf8' });
    assert.match(files.stdout, /MOCOPY\.CAT/);
  });

  it('is read through SCSI READ on an emulated CD-ROM and its programs decrypt', async () => {
    const dev = await openDevice(`emu:${w.masterIso}`);
    const m = await openMaster(dev);
    const e = findContent(m, 'APP-1');
    const { contentKey: key } = await withCenter(w.ledger, (c) => c.registerContent({ contentId: 'APP-1', name: 'Program APP-1', schemes: ['a', 'b'], price: 1500 }));
    assert.ok((await collect(decryptMasterProgram(key, m, e))).equals(w.programs['APP-1']!));
    await dev.close();
  });

  it('reads a master whose files were laid out by xorriso', async function () {
    requireTool(this, 'xorriso', 'xorriso');
    const src = join(w.dir, 'layout');
    mkdirSync(join(src, 'PROGRAMS'), { recursive: true });
    const dev0 = await openDevice(`emu:${w.masterIso}`);
    const m0 = await openMaster(dev0);
    writeFileSync(join(src, 'MOCOPY.CAT'), JSON.stringify(m0.catalog));
    const { readMasterProgram } = await import('../lib/master/index.js');
    for (const e of m0.catalog.contents) writeFileSync(join(src, e.path.slice(1)), await collect(readMasterProgram(m0, e)));
    await dev0.close();
    const xiso = join(w.dir, 'xorriso-master.iso');
    const r = spawnSync('xorriso', ['-outdev', xiso, '-volid', 'XORRISO_MASTER', '-map', src, '/'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!readFileSync(xiso).equals(readFileSync(w.masterIso)), 'a different layout');
    const dev = await openDevice(`emu:${xiso}`);
    const m = await openMaster(dev);
    assert.equal(m.volume.volumeId, 'XORRISO_MASTER');
    const c = await LicenseCenter.open(w.ledger);
    for (const e of m.catalog.contents) {
      const key = (await c.registerContent({ contentId: e.contentId, name: e.name, schemes: e.schemes, price: 1500 })).contentKey;
      assert.ok((await collect(decryptMasterProgram(key, m, e))).equals(w.programs[e.contentId]!), e.contentId);
    }
    await c.close();
    await dev.close();
  });

  it('refuses malformed volumes with FormatError', async () => {
    const good = readFileSync(w.masterIso);
    const cases: Array<[string, (b: Buffer) => Buffer, RegExp]> = [
      ['bad PVD magic', (b) => { b.write('XX001', 16 * 2048 + 1, 'latin1'); return b; }, /no volume descriptor/],
      ['truncated volume', (b) => b.subarray(0, 24 * 2048), /truncated|past the end/],
      ['no catalog', (b) => { const i = b.indexOf('MOCOPY.CAT;1'); b.write('MOCOPY.XXX;1', i, 'latin1'); return b; }, /not a mocopy master/],
      ['garbage catalog', (b) => { const i = b.indexOf('"format"'); b.write('[[[[', i, 'latin1'); return b; }, /not valid JSON/],
    ];
    for (const [name, mutate, re] of cases) {
      const p = join(w.dir, `bad-${name.replace(/ /g, '-')}.iso`);
      writeFileSync(p, mutate(Buffer.from(good)));
      const dev = await openDevice(`emu:${p}`);
      await assert.rejects(openMaster(dev), (e: Error) => e instanceof FormatError && re.test(e.message), name);
      await dev.close();
    }
  });
});
