/**
 * A failure after the directory write landed (found by the power-cut sweep): the copy is committed, so its license
 * record must stay; and a committed copy whose record is missing is repaired by the next run without a new bill.
 */
import { strict as assert } from 'node:assert';
import { closeSync, openSync, writeSync } from 'node:fs';
import { copyLicensed, LocalCenterClient, Ledger, MO_HEADER_SIZE, openCopy, openDevice, verifyDisc, type CopyResult } from '../lib/index.js';
import { DIRECTORY_OFFSETS, slotOffset, SLOT_BYTES } from '../lib/formats/disc-layout.js';
import { Collect, makeWorld, type World, ledgerReport } from './helpers/fixtures.js';


describe('commit faults', function () {
  this.timeout(60_000);
  let w: World;
  beforeEach(async () => { w = await makeWorld(); });
  afterEach(() => w.cleanup());
  const bills = async () => (await ledgerReport(w.ledger)).billing.length;

  async function copy(disc: string, contentId: string, fault?: { from: number; to: number }): Promise<CopyResult> {
    const master = await openDevice(`emu-cd:${w.masterIso}`);
    const target = await openDevice(`emu:${disc}`, fault ? { emulator: { faults: [{ kind: 'medium-error', op: 'write', ...fault }] } } : {});
    const center = new LocalCenterClient(w.ledger, w.station);
    try {
      return await copyLicensed({ master, target, contentId, scheme: 'a', center, stationKey: w.station });
    } finally {
      await master.close();
      await target.close();
      await center.close();
    }
  }
  async function opens(disc: string, contentId: string): Promise<boolean> {
    const t = await openDevice(`emu:${disc}`);
    try {
      const sink = new Collect();
      await openCopy({ target: t, contentId, stationKey: w.station, out: sink });
      return Buffer.concat(sink.parts).equals(w.programs[contentId]!);
    } finally {
      await t.close();
    }
  }

  it('a medium error after the new directory landed: the copy stays licensed and opens; the next run bills nothing more', async () => {
    const disc = w.newDisc('d.mo', '5151515151');
    await copy(disc, 'APP-2');
    // The next commit goes to directory copy 1; its first block holds the whole small directory, the second fails.
    const secondBlock = DIRECTORY_OFFSETS[1] / 2048 + 1;
    await assert.rejects(copy(disc, 'APP-1', { from: secondBlock, to: secondBlock }), (e: Error & { code?: string }) => e.code === 'E_SCSI_CHECK');
    assert.ok(await opens(disc, 'APP-1'), 'the committed copy opens');
    assert.ok(await opens(disc, 'APP-2'));
    const t = await openDevice(`emu:${disc}`);
    const v = await verifyDisc({ target: t, stationKey: w.station, deep: true });
    await t.close();
    assert.ok(v.results.every((r) => r.ok), JSON.stringify(v.results));
    assert.equal((await bills()), 2);
    const again = await copy(disc, 'APP-1');
    assert.equal(again.alreadyPresent, true);
    assert.equal((await bills()), 2);
  });

  it('a committed copy whose license record is gone is repaired by running the copy again, with no new bill', async () => {
    const disc = w.newDisc('e.mo', '6161616161');
    const first = await copy(disc, 'APP-1');
    const fd = openSync(disc, 'r+');
    writeSync(fd, Buffer.alloc(SLOT_BYTES), 0, SLOT_BYTES, MO_HEADER_SIZE + slotOffset(first.slot));
    closeSync(fd);
    await assert.rejects(opens(disc, 'APP-1'), (e: Error & { code?: string }) => e.code === 'E_NO_LICENSE');
    const again = await copy(disc, 'APP-1');
    assert.equal(again.alreadyPresent, true);
    assert.ok(again.licenseId, 'the record was written again');
    assert.ok(await opens(disc, 'APP-1'));
    assert.equal((await bills()), 1);
  });
});
