/** One master, N targets (issue 14, first part): each disc licensed to itself, the master read once, failures isolated. */
import { strict as assert } from 'node:assert';
import { copyToTargets, EmulatedDrive, Ledger, LocalCenterClient, openCopy, openDevice, verifyDisc, type Scheme } from '../lib/index.js';
import { DATA_OFFSET } from '../lib/formats/disc-layout.js';
import { mocopy } from './helpers/cli.js';
import { Collect, makeWorld, type World, ledgerReport } from './helpers/fixtures.js';


describe('one master, several targets', function () {
  this.timeout(120_000);
  let w: World;
  before(async () => { w = await makeWorld({ programs: { 'APP-1': { size: 1_500_000 }, 'APP-2': { size: 70_000 } } }); });
  after(() => w.cleanup());
  let n = 0;
  const licenses = async (content: string) => (await ledgerReport(w.ledger)).billing.filter((b) => b.contentId === content);

  async function opens(disc: string, content: string): Promise<boolean> {
    const t = await openDevice(`emu:${disc}`);
    try { const s = new Collect(); await openCopy({ target: t, contentId: content, stationKey: w.station, out: s }); return Buffer.concat(s.parts).equals(w.programs[content]!); } finally { await t.close(); }
  }

  async function run(scheme: Scheme, discs: string[], faults: Array<Parameters<EmulatedDrive['faults']['add']>[0] | undefined> = []) {
    const master = await openDevice(`emu-cd:${w.masterIso}`);
    const targets = await Promise.all(discs.map((d, i) => openDevice(`emu:${d}`, { emulator: faults[i] ? { faults: [faults[i]!] } : {} })));
    const center = new LocalCenterClient(w.ledger, w.station);
    try {
      const outcomes = await copyToTargets({ master, targets, contentId: 'APP-1', scheme, center, stationKey: w.station });
      return { outcomes, masterBytes: (master.transport as EmulatedDrive).stats.bytesRead };
    } finally {
      await master.close();
      for (const t of targets) await t.close();
      await center.close();
    }
  }

  for (const scheme of ['a', 'b'] as const) {
    const reads: number[] = [];
    for (const count of [1, 2, 3, 4]) {
      it(`scheme ${scheme.toUpperCase()}, ${count} target(s): every disc opens with the publisher's bytes, bound to its own medium ID, billed once`, async () => {
        const before = (await licenses('APP-1')).length;
        const discs = Array.from({ length: count }, () => w.newDisc(`t${++n}.mo`, `77${String(n).padStart(8, '0')}`));
        const { outcomes, masterBytes } = await run(scheme, discs);
        reads.push(masterBytes);
        assert.deepEqual(outcomes.map((o) => o.ok), discs.map(() => true), JSON.stringify(outcomes.map((o) => (o.ok ? 'ok' : String((o as { error: Error }).error)))));
        for (const d of discs) assert.ok(await opens(d, 'APP-1'), d);
        const mids = outcomes.map((o) => (o.ok ? o.result.mediumId : ''));
        assert.equal(new Set(mids).size, count, 'each license names its own disc');
        assert.equal((await licenses('APP-1')).length - before, count, 'one bill per disc');
        if (count >= 2) {
          // Disc 0's whole data area, bit for bit, onto disc 1: disc 0's license does not open on disc 1.
          const { readFileSync, writeFileSync } = await import('node:fs');
          const { MO_HEADER_SIZE } = await import('../lib/index.js');
          const src = readFileSync(discs[0]!);
          const dst = readFileSync(discs[1]!);
          src.copy(dst, MO_HEADER_SIZE, MO_HEADER_SIZE);
          writeFileSync(discs[1]!, dst);
          await assert.rejects(opens(discs[1]!, 'APP-1'), (e: Error & { code?: string }) => e.code === 'E_WRONG_MEDIUM');
        }
        // The master is read once whatever the number of targets (same bytes read as for one target).
        assert.equal(masterBytes, reads[0], `master bytes read with ${count} targets`);
      });
    }
  }

  it('one target failing mid-copy leaves the others correct, and the failed one completes when run again, billed once', async () => {
    const discs = Array.from({ length: 3 }, () => w.newDisc(`f${++n}.mo`, `88${String(n).padStart(8, '0')}`));
    const bad = { kind: 'medium-error' as const, op: 'write' as const, from: DATA_OFFSET / 2048 + 100, to: DATA_OFFSET / 2048 + 100 };
    const { outcomes } = await run('b', discs, [undefined, bad, undefined]);
    assert.equal(outcomes[0]!.ok, true);
    assert.equal(outcomes[1]!.ok, false);
    assert.match(String((outcomes[1] as { error: Error }).error), /WRITE ERROR/);
    assert.equal(outcomes[2]!.ok, true);
    assert.ok(await opens(discs[0]!, 'APP-1'));
    assert.ok(await opens(discs[2]!, 'APP-1'));
    const t = await openDevice(`emu:${discs[1]!}`);
    const v = await verifyDisc({ target: t, stationKey: w.station }).catch((e) => e);
    await t.close();
    assert.ok(v instanceof Error && /not a mocopy disc/.test(v.message), 'the failed disc is as it was (blank)');
    const again = await run('b', [discs[1]!]);
    assert.equal(again.outcomes[0]!.ok, true);
    assert.ok(await opens(discs[1]!, 'APP-1'));
    const mid = (again.outcomes[0] as { result: { mediumId: string } }).result.mediumId;
    assert.equal((await licenses('APP-1')).filter((b) => b.mediumId === mid).length, 1, 'billed once for the failed-then-resumed disc');
  });

  it('a power cut in one drive mid-copy: the others finish; that disc is as it was and completes when run again', async () => {
    const discs = Array.from({ length: 3 }, () => w.newDisc(`q${++n}.mo`, `66${String(n).padStart(8, '0')}`));
    const { outcomes } = await run('a', discs, [undefined, undefined, { kind: 'power-cut-after-writes', writes: 2 }]);
    assert.deepEqual(outcomes.map((o) => o.ok), [true, true, false]);
    assert.equal((outcomes[2] as { error: { code: string } }).error.code, 'E_TRANSPORT');
    assert.ok(await opens(discs[0]!, 'APP-1'));
    assert.ok(await opens(discs[1]!, 'APP-1'));
    const again = await run('a', [discs[2]!]);
    assert.equal(again.outcomes[0]!.ok, true);
    assert.ok(await opens(discs[2]!, 'APP-1'));
  });

  it('a refused target (write-protected) does not stop the others', async () => {
    const { setMoWriteProtect } = await import('../lib/emulator/index.js');
    const discs = Array.from({ length: 2 }, () => w.newDisc(`p${++n}.mo`, `99${String(n).padStart(8, '0')}`));
    setMoWriteProtect(discs[0]!, true);
    const { outcomes } = await run('a', discs);
    assert.equal(outcomes[0]!.ok, false);
    assert.equal((outcomes[0] as { error: { code: string } }).error.code, 'E_WRITE_PROTECTED');
    assert.equal(outcomes[1]!.ok, true);
    assert.ok(await opens(discs[1]!, 'APP-1'));
  });

  it('CLI: copy MASTER --target A --target B; one JSON result per target; the exit code is the first failing target\'s', async () => {
    const { setMoWriteProtect } = await import('../lib/emulator/index.js');
    const env = { MOCOPY_CENTER_DB: w.ledger, MOCOPY_STATION_KEY: w.stationKeyPath };
    const [a, b] = [w.newDisc(`c${++n}.mo`, `aa${String(n).padStart(8, '0')}`), w.newDisc(`c${++n}.mo`, `aa${String(n).padStart(8, '0')}`)];
    const ok = mocopy(['copy', `emu-cd:${w.masterIso}`, '--target', `emu:${a}`, '--target', `emu:${b}`, '--content', 'APP-2', '--scheme', 'b', '--json'], env);
    assert.equal(ok.code, 0, ok.stderr);
    const results = ok.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'result');
    assert.deepEqual(results.map((r) => [r.target, r.ok]), [[`emu:${a}`, true], [`emu:${b}`, true]]);
    assert.ok(await opens(a, 'APP-2'));
    assert.ok(await opens(b, 'APP-2'));
    const [c, d] = [w.newDisc(`c${++n}.mo`, `aa${String(n).padStart(8, '0')}`), w.newDisc(`c${++n}.mo`, `aa${String(n).padStart(8, '0')}`)];
    setMoWriteProtect(d, true);
    const mixed = mocopy(['copy', `emu-cd:${w.masterIso}`, `emu:${c}`, '--target', `emu:${d}`, '--content', 'APP-2'], env);
    assert.equal(mixed.code, 5, mixed.stdout + mixed.stderr);
    assert.match(mixed.stdout, new RegExp(`emu:${c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: copied APP-2`));
    assert.match(mixed.stdout, /FAILED: .*write-protected/);
    assert.equal(mocopy(['copy', `emu-cd:${w.masterIso}`, '--content', 'APP-2'], env).code, 2, 'no target at all is a usage error');
  });
});
