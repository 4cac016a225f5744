/**
 * Duplicator mode (`mocopy station run`): drives with scripted disc changers; every disc copied, verified and ejected;
 * a disc that already holds the program is not billed again; a refused disc is ejected with its reason; the
 * technician's screen checked in a real terminal (tmux).
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Ledger } from '../lib/index.js';
import { setMoWriteProtect } from '../lib/emulator/index.js';
import { mocopy } from './helpers/cli.js';
import { makeWorld, type World, ledgerReport } from './helpers/fixtures.js';
import { requireTool } from './helpers/tools.js';

const ROOT = resolve(import.meta.dirname, '..');

describe('mocopy station run (duplicator mode)', function () {
  this.timeout(180_000);
  let w: World;
  before(async () => { w = await makeWorld(); });
  after(() => w.cleanup());
  let n = 0;
  const discs = (k: number) => Array.from({ length: k }, () => w.newDisc(`s${++n}.mo`, `5d${String(n).padStart(8, '0')}`));
  const billing = async () => (await ledgerReport(w.ledger)).billing;
  const drive = (first: string, rest: string[], extra = '') => `emu:${first}?changer=${rest.join(',')}&changer-delay=50${extra}`;
  const env = () => ({ MOCOPY_CENTER_DB: w.ledger, MOCOPY_STATION_KEY: w.stationKeyPath });

  it('two drives with changers of 5 discs each: all 10 copied, verified, ejected, billed once each', async () => {
    const [a, b] = [discs(5), discs(5)];
    const before = (await billing()).length;
    const r = mocopy(['station', 'run', `emu-cd:${w.masterIso}`, '--target', drive(a[0]!, a.slice(1)), '--target', drive(b[0]!, b.slice(1)), '--content', 'APP-2', '--discs', '10', '--json'], env());
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const finished = events.filter((e) => e.outcome);
    assert.equal(finished.length, 10);
    assert.ok(finished.every((e) => e.outcome === 'copied'), JSON.stringify(finished.filter((e) => e.outcome !== 'copied')));
    assert.equal(new Set(finished.map((e) => e.mediumId)).size, 10, 'each disc its own medium ID');
    assert.deepEqual(events.at(-1), { event: 'tally', copied: 10, already: 0, refused: 0, failed: 0, billed: 10, interrupted: false });
    assert.equal((await billing()).length - before, 10);
    for (const d of [...a, ...b]) assert.equal(mocopy(['verify', `emu:${d}`, '--deep'], env()).code, 0, d);
  });

  it('a disc inserted twice is billed once; a write-protected disc is ejected with its reason', async () => {
    const [done] = discs(1);
    assert.equal(mocopy(['copy', `emu-cd:${w.masterIso}`, `emu:${done}`, '--content', 'APP-2'], env()).code, 0);
    const [locked, fresh] = discs(2);
    setMoWriteProtect(locked!, true);
    const before = (await billing()).length;
    const r = mocopy(['station', 'run', `emu-cd:${w.masterIso}`, '--target', drive(done!, [locked!, fresh!]), '--content', 'APP-2', '--discs', '3', '--json'], env());
    const finished = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.outcome);
    assert.deepEqual(finished.map((e) => e.outcome), ['already', 'refused', 'copied']);
    assert.match(finished[1].message, /write-protected/);
    assert.equal((await billing()).length - before, 1, 'only the fresh disc was billed');
    assert.equal(r.code, 5, 'a refused disc makes the run exit 5');
  });

  it('the technician\'s screen in a real terminal: one line per drive, the tally at the end, no escape garbage', async function () {
    requireTool(this, 'tmux', 'tmux');
    // A program big enough that, at the MO drive's 5 MB/s, frames show the drives copying.
    const big = await makeWorld({ programs: { 'BIG-1': { size: 3_000_000 } } });
    const mk = () => big.newDisc(`s${++n}.mo`, `5e${String(n).padStart(8, '0')}`);
    const [a, b] = [[mk(), mk(), mk()], [mk(), mk(), mk()]];
    const session = `mocopy-test-${process.pid}`;
    const cmd = [process.execPath, '--import', 'tsx', 'cli/main.ts', 'station', 'run', `emu-cd:${big.masterIso}`, '--target', drive(a[0]!, a.slice(1), '&speed=mo'), '--target', drive(b[0]!, b.slice(1), '&speed=mo'),
      '--content', 'BIG-1', '--discs', '6', '--center-db', big.ledger, '--station-key', big.stationKeyPath].map((x) => `'${x}'`).join(' ');
    spawnSync('tmux', ['new-session', '-d', '-s', session, '-x', '150', '-y', '20', '-c', ROOT, `MOCOPY_CONFIG=/nonexistent ${cmd}; echo EXIT=$?; sleep 30`]);
    try {
      let screen = '';
      let mid = '';
      for (let i = 0; i < 240 && !/EXIT=\d/.test(screen); i++) {
        await new Promise((r) => setTimeout(r, 250));
        screen = spawnSync('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' }).stdout;
        if (!mid && /copying +\S+ +\d+%/.test(screen)) mid = screen;
      }
      assert.match(screen, /EXIT=0/, screen);
      const lines = screen.split('\n').filter((l) => l.trim());
      const driveLines = lines.filter((l) => /s\d+\.mo/.test(l) && /(waiting|copying|verifying|ejecting|stopped)/.test(l));
      assert.equal(driveLines.length, 2, `one line per drive:\n${screen}`);
      assert.ok(lines.some((l) => /^tally: copied 6, already on disc 0, refused 0, failed 0; billed 6$/.test(l)), screen);
      assert.ok(lines.some((l) => /^station: done: 6 disc\(s\)$/.test(l)), screen);
      assert.doesNotMatch(screen, /\x1b|\[2K|\[\d+A/, 'no raw escape sequences left on the screen');
      assert.ok(mid, 'a frame showed a drive copying with its percentage, speed and ETA');
      assert.match(mid, /MB\/s +ETA/);
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
      big.cleanup();
    }
  });

  it('Ctrl-C abandons the copies in flight safely, prints the tally, and a run again completes them without a second bill', async () => {
    const big = await makeWorld({ programs: { 'BIG-2': { size: 3_000_000 } } });
    try {
      const disc = big.newDisc('ctrlc.mo', '5f00000001');
      const p = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'station', 'run', `emu-cd:${big.masterIso}`, '--target', `emu:${disc}?speed=mo`, '--content', 'BIG-2', '--center-db', big.ledger, '--station-key', big.stationKeyPath, '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MOCOPY_CONFIG: '/nonexistent' } });
      let out = '';
      const exited = new Promise<number | null>((r) => p.on('close', (code) => r(code)));
      await new Promise<void>((res) => p.stdout.on('data', (d) => { out += d; if (/"state":"copying","bytes":[1-9]/.test(out)) res(); }));
      p.kill('SIGINT');
      const code = await exited;
      const events = out.trim().split('\n').map((l) => JSON.parse(l));
      const tally = events.at(-1);
      assert.equal(tally.event, 'tally');
      assert.equal(tally.interrupted, true);
      assert.equal(tally.copied, 0);
      assert.notEqual(code, 0);
      // The disc is as it was (blank), and running again completes the copy with the license already issued.
      assert.equal(mocopy(['verify', `emu:${disc}`], { MOCOPY_STATION_KEY: big.stationKeyPath }).code, 8, 'still not a mocopy disc');
      const again = mocopy(['copy', `emu-cd:${big.masterIso}`, `emu:${disc}`, '--content', 'BIG-2', '--center-db', big.ledger, '--station-key', big.stationKeyPath]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await ledgerReport(big.ledger)).billing.length, 1, 'billed once');
    } finally {
      big.cleanup();
    }
  });
});
