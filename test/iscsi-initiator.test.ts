/**
 * The iSCSI target driven by a real initiator nobody here wrote: libiscsi's tools (Debian package libiscsi-bin).
 * The whole conformance suite runs in `npm run iscsi:conformance` (.ci/run); these are the quick checks.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMoImage, serveEmulatedDrives, type ServedDrives } from '../lib/index.js';
import { tempDir } from './helpers/fixtures.js';
import { requireTool } from './helpers/tools.js';

const IQN = 'iqn.2026-11.org.mocopy:test';

/** Runs an initiator tool without blocking this process's event loop, which serves the target. */
function tool(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

describe('iSCSI target under libiscsi', function () {
  this.timeout(120_000);
  const t = tempDir();
  let served: ServedDrives;
  let chapServed: ServedDrives;
  before(async function () {
    requireTool(this, 'iscsi-inq', 'libiscsi-bin');
    createMoImage(join(t.dir, 'a.mo'), { mediumId: Buffer.from('a1a2a3a4', 'hex'), capacityBytes: 8 << 20, blockSize: 2048 });
    createMoImage(join(t.dir, 'b.mo'), { mediumId: Buffer.from('b1b2', 'hex'), capacityBytes: 8 << 20, blockSize: 512 });
    createMoImage(join(t.dir, 'c.mo'), { mediumId: Buffer.from('c1', 'hex'), capacityBytes: 4 << 20, blockSize: 2048 });
    writeFileSync(join(t.dir, 'cd.iso'), Buffer.alloc(2048 * 64));
    served = await serveEmulatedDrives({ mo: [join(t.dir, 'a.mo'), join(t.dir, 'b.mo')], cd: [join(t.dir, 'cd.iso')], iqn: IQN, port: 0 });
    chapServed = await serveEmulatedDrives({ mo: [join(t.dir, 'c.mo')], iqn: IQN, port: 0, chap: { user: 'station', secret: Buffer.from('twelve-bytes-or-more') } });
  });
  after(async () => {
    await served?.close();
    await chapServed?.close();
    t.cleanup();
  });
  const url = (lun: number, s = served, auth = '') => `iscsi://${auth}${s.portal}/${IQN}/${lun}`;

  it('SendTargets discovery lists the target and its portal', async () => {
    const r = await tool('iscsi-ls', [`iscsi://${served.portal}`]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`Target:${IQN.replace(/\./g, '\\.')} Portal:${served.portal},1`));
  });

  it('LUNs in the documented order: MO drives (type 7) first, then the CD-ROM (type 5); an absent LUN says so', async () => {
    assert.match((await tool('iscsi-inq', [url(0)])).out, /Peripheral Device Type:OPTICAL_MEMORY[\s\S]*Product:EMU MO DRIVE/);
    assert.match((await tool('iscsi-inq', [url(1)])).out, /Peripheral Device Type:OPTICAL_MEMORY/);
    assert.match((await tool('iscsi-inq', [url(2)])).out, /Peripheral Device Type:MMC[\s\S]*Product:EMU CD-ROM/);
    const absent = await tool('iscsi-inq', [url(7)]);
    assert.doesNotMatch(absent.out, /OPTICAL_MEMORY|MMC/);
  });

  it('VPD 80h through the wire is the drive\'s own serial, never the disc\'s medium ID', async () => {
    const serial = await tool('iscsi-inq', ['-e', '1', '-c', '0x80', url(0)]);
    assert.equal(serial.code, 0, serial.out);
    assert.doesNotMatch(serial.out, /a1a2a3a4/i);
  });

  it('CHAP: the right secret logs in; a wrong secret or none is refused (authentication failure)', async () => {
    assert.match((await tool('iscsi-inq', [url(0, chapServed, 'station%twelve-bytes-or-more@')])).out, /OPTICAL_MEMORY/);
    assert.match((await tool('iscsi-inq', [url(0, chapServed, 'station%eleven-bytes@')])).out, /Authentication failure/);
    assert.match((await tool('iscsi-inq', [url(0, chapServed)])).out, /Authentication failure/);
  });

  it('a slice of the conformance suite (iSCSI command numbering, DataSN, NOP, residuals, SendTargets) passes', async () => {
    for (const family of ['ALL.iSCSIcmdsn', 'ALL.iSCSIdatasn', 'ALL.iSCSIResiduals', 'ALL.ReportSupportedOpcodes', 'ALL.TestUnitReady']) {
      const r = await tool('iscsi-test-cu', ['--dataloss', '-t', family, url(0)]);
      const m = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(r.out);
      assert.ok(m, `${family}: no summary\n${r.out.slice(-1500)}`);
      assert.equal(Number(m[4]), 0, `${family}: ${m[4]} failed\n${r.out.slice(-3000)}`);
      assert.ok(Number(m[2]) > 0, `${family}: ran nothing`);
    }
  });
});
