import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfigPath, resolveStationSettings } from '../lib/config.js';
import { mocopy } from './helpers/cli.js';
import { makeWorld, tempDir, type World } from './helpers/fixtures.js';


describe('mocopy CLI', function () {
  this.timeout(180_000);
  let w: World;
  before(async () => { w = await makeWorld(); });
  after(() => w.cleanup());

  it('demo: every step in the patent\'s terms, exit 0', () => {
    const r = mocopy(['demo', '--size', '300000']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const step of ['S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7', 'S11', 'S12', 'S13', 'S14', 'S15', 'S16', 'S17']) assert.match(r.stdout, new RegExp(`^${step}\\s`, 'm'), step);
    assert.match(r.stdout, /the cloned disc is refused/);
    assert.match(r.stdout, /every step behaved/);
  });

  it('emu create-mo, info, medium-id, raw with exit codes and decoded sense', () => {
    const img = join(w.dir, 'cli.mo');
    assert.equal(mocopy(['emu', 'create-mo', img, '--medium-id', 'DEADBEEF01', '--capacity', '2M']).code, 0);
    assert.equal(mocopy(['emu', 'create-mo', img, '--medium-id', '01', '--capacity', '2M']).code, 2, 'refuses to overwrite');
    const info = JSON.parse(mocopy(['info', `emu:${img}`, '--json']).stdout);
    assert.equal(info.peripheralType, 7);
    assert.equal(info.mediumId, 'deadbeef01');
    assert.equal(info.blockSize, 2048);
    assert.equal(info.queue, 'in-process');
    assert.doesNotMatch(mocopy(['info', `emu:${img}`]).stderr, /emulated in this process/, 'quiet without -v');
    assert.match(mocopy(['-v', 'info', `emu:${img}`]).stderr, /^mocopy: emu:.*cli\.mo: emulated in this process; max transfer \d+ bytes$/m);
    assert.equal(mocopy(['medium-id', `emu:${img}`]).stdout.trim(), 'deadbeef01');
    const inq = mocopy(['raw', `emu:${img}`, '12 00 00 00 24 00', '--in', '36']);
    assert.equal(inq.code, 0);
    assert.match(inq.stdout, /INQUIRY .* GOOD/);
    const bad = mocopy(['raw', `emu:${img}`, '28 00 00 10 00 00 00 00 01 00', '--in', '2048', '--json']);
    assert.equal(bad.code, 4);
    assert.match(JSON.parse(bad.stdout).senseText, /LOGICAL BLOCK ADDRESS OUT OF RANGE \(21\/00\)/);
    const cd = mocopy(['medium-id', `emu:${w.masterIso}`]);
    assert.equal(cd.code, 3);
    assert.match(cd.stderr, /gives no medium ID by READ MEDIA SERIAL NUMBER/);
    assert.match(cd.stderr, /hint: run `mocopy probe-id/);
    assert.equal(mocopy(['info', 'nonsense']).code, 2);
    assert.equal(mocopy(['frobnicate']).code, 2);
  });

  it('copy / open / verify / catalog / center report, with station settings from the environment', async () => {
    const disc = w.newDisc('c.mo', '0123456789abcdef');
    const env = { MOCOPY_CENTER_DB: w.ledger, MOCOPY_STATION_KEY: w.stationKeyPath };
    const cat = JSON.parse(mocopy(['catalog', `emu:${w.masterIso}`, '--json']).stdout);
    assert.deepEqual(cat.contents.map((c: { contentId: string }) => c.contentId), ['APP-1', 'APP-2']);
    assert.match(mocopy(['-v', 'catalog', `emu:${w.masterIso}`]).stderr, /^mocopy: emu:.*: emulated in this process; max transfer \d+ bytes$/m, 'catalog opens its drive as the other commands do (-v)');
    const copy = mocopy(['copy', `emu:${w.masterIso}`, `emu:${disc}`, '--content', 'APP-2', '--scheme', 'b', '--json'], env);
    assert.equal(copy.code, 0, copy.stderr);
    const lines = copy.stdout.trim().split('\n').filter((l) => l.startsWith('{"'));
    assert.ok(lines.some((l) => JSON.parse(l).step === 'S17'), 'JSON events, one per line');
    const out = join(w.dir, 'app2.out');
    assert.equal(mocopy(['open', `emu:${disc}`, '--content', 'APP-2', '--out', out], env).code, 0);
    assert.equal(statSync(out).size, w.programs['APP-2']!.length);
    // --out to a FIFO (as to /dev/null or a loader's pipe) writes into it; the FIFO stays a FIFO.
    const fifo = join(w.dir, 'loader.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('sh', ['-c', `wc -c < '${fifo}'`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let counted = '';
    reader.stdout!.on('data', (d) => (counted += d));
    const readerDone = new Promise((r) => reader.once('exit', r));
    assert.equal(mocopy(['open', `emu:${disc}`, '--content', 'APP-2', '--out', fifo], env).code, 0);
    await readerDone;
    assert.equal(Number(counted.trim()), w.programs['APP-2']!.length);
    assert.ok(statSync(fifo).isFIFO(), 'the FIFO was written into, not replaced by a file');
    assert.equal(mocopy(['verify', `emu:${disc}`], env).code, 0);
    const rep = JSON.parse(mocopy(['center', 'report', '--db', w.ledger, '--json']).stdout);
    assert.ok(rep.licenses.length >= 1 && rep.billing.length === rep.licenses.length);
    for (const k of ['contentId', 'mediumId', 'stationId', 'scheme']) assert.ok(k in rep.licenses[0] && k in rep.billing[0], k);
    const refused = mocopy(['copy', `emu:${w.masterIso}`, `emu:${disc}`, '--content', 'APP-1', '--station-key', join(w.dir, 'missing.key')], env);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /cannot read the station key file/);
  });

  it('without the native addon, emulated drives work and a real device names the build command', () => {
    const env = { MOCOPY_NATIVE_ADDON: join(w.dir, 'no-such-addon.node') };
    assert.equal(mocopy(['info', `emu:${w.masterIso}`], env).code, 0);
    const r = mocopy(['info', '/dev/sg0'], env);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /native SCSI pass-through addon is not available/);
    assert.match(r.stderr, /npx node-gyp rebuild/);
  });

  it('center station add writes a 0600 key file once', () => {
    const t = tempDir();
    try {
      const db = join(t.dir, 'c.db');
      const key = join(t.dir, 's.key');
      const r = mocopy(['center', 'station', 'add', 'Shop 1', '--db', db, '--key-out', key, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(statSync(key).mode & 0o777, 0o600);
      assert.equal(mocopy(['center', 'station', 'add', 'Shop 2', '--db', db, '--key-out', key]).code, 2, 'never overwritten');
      const id = JSON.parse(r.stdout).stationId;
      assert.equal(mocopy(['center', 'station', 'revoke', id, '--db', db]).code, 0);
    } finally {
      t.cleanup();
    }
  });
});

describe('station settings', () => {
  it('flags override the environment, which overrides the config file', () => {
    const t = tempDir();
    try {
      const cfg = join(t.dir, 'config.json');
      writeFileSync(cfg, JSON.stringify({ centerDb: 'ledger.db', stationKey: 'k.key', scheme: 'b' }));
      const env = { MOCOPY_CONFIG: cfg };
      const fromFile = resolveStationSettings({}, env);
      assert.equal(fromFile.centerDb, join(t.dir, 'ledger.db'));
      assert.equal(fromFile.scheme, 'b');
      assert.equal(fromFile.sources.scheme, 'config');
      const fromEnv = resolveStationSettings({}, { ...env, MOCOPY_SCHEME: 'a', MOCOPY_CENTER_DB: '/x.db' });
      assert.equal(fromEnv.scheme, 'a');
      assert.equal(fromEnv.centerDb, '/x.db');
      const fromFlag = resolveStationSettings({ center: 'http://c', scheme: 'B' }, { ...env, MOCOPY_SCHEME: 'a' });
      assert.equal(fromFlag.center, 'http://c');
      assert.equal(fromFlag.centerDb, undefined, 'a --center flag overrides a ledger from the config');
      assert.equal(fromFlag.scheme, 'b');
      assert.throws(() => resolveStationSettings({ scheme: 'c' }, env), /scheme must be/);
      writeFileSync(cfg, '{oops');
      assert.throws(() => resolveStationSettings({}, env), /not valid JSON/);
      assert.match(defaultConfigPath({ XDG_CONFIG_HOME: '/xdg' }, 'linux'), /^\/xdg\/mocopy\/config.json$/);
    } finally {
      t.cleanup();
    }
  });
});
