/**
 * Runs inside the QEMU guest (as /init's last step): finds the virtual drives through sysfs, describes
 * the rig, and runs the HIL mocha suite on them through the native transport; then (the iSCSI stage's
 * differential run) reloads scsi_debug fresh and runs hil/virtual/differential.ts against it and the served MO.
 * Output goes to the serial console: mocha's json-stream lines and @@MOCOPY-DATA records, then
 * @@MOCOPY-DONE <exit code>. /data/guest-only (a word) limits the run to one part while working on the rig:
 * `differential` skips the suite.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { openTransport } from '../../lib/drives/open.js';
import { listDevices, type ListedDevice } from '../../lib/scsi/list-devices.js';
import type { Rig, RigIscsi } from '../suite/rig.js';

const data = (kind: string, body: Record<string, unknown>) => process.stdout.write(`@@MOCOPY-DATA ${JSON.stringify({ kind, ...body })}\n`);
const only = existsSync('/data/guest-only') ? readFileSync('/data/guest-only', 'utf8').trim() : '';
const devices = listDevices();
data('devices', { devices });
const cd = devices.find((d) => d.peripheralType === 5);
const sd = devices.find((d) => d.vendor === 'Linux' && d.product.startsWith('scsi_debug'));
const hd = devices.find((d) => d.product.startsWith('QEMU HARDDISK'));

/** The medium ID (hex) an MO drive reads by READ MEDIA SERIAL NUMBER, or undefined. */
async function mediumIdOf(sg: string): Promise<string | undefined> {
  try {
    const t = await openTransport(sg, { write: false });
    try {
      const buf = Buffer.alloc(68);
      const r = await t.execute({ cdb: Buffer.from([0xab, 0x01, 0, 0, 0, 0, 0, 0, 0, 68, 0, 0]), direction: 'in', data: buf, timeoutMs: 10_000 });
      if (r.status !== 0 || r.hostStatus !== 0) return undefined;
      return buf.subarray(4, 4 + Math.min(64, buf.readUInt32BE(0))).toString('hex');
    } finally {
      await t.close();
    }
  } catch {
    return undefined;
  }
}

// The iSCSI stage (run.sh puts its description in the initramfs when the host serves the LUNs): every drive whose
// INQUIRY names the emulator's MO drive is told apart by the medium ID of its disc; when none has the one wanted,
// the stage's checks fail rather than skip.
let iscsi: RigIscsi | undefined;
const served = new Map<string, ListedDevice>();
if (existsSync('/data/iscsi.json')) {
  const want = JSON.parse(readFileSync('/data/iscsi.json', 'utf8')) as Omit<RigIscsi, 'spec'>;
  for (const d of devices.filter((x) => x.vendor === want.vendor && x.product === want.product)) {
    const id = await mediumIdOf(d.sg);
    if (id) served.set(id, d);
  }
  data('iscsi-drives', { drives: Object.fromEntries([...served].map(([id, d]) => [id, d.sg])) });
  const mo = served.get(want.mediumId);
  iscsi = { ...want, ...(mo ? { spec: mo.sg } : {}) };
  if (want.faults) {
    const at = (id: string) => (served.get(id) ? { spec: served.get(id)!.sg } : {});
    iscsi.faults = { ...want.faults, mediumError: { ...want.faults.mediumError, ...at(want.faults.mediumError.mediumId) }, powerCut: { ...want.faults.powerCut, ...at(want.faults.powerCut.mediumId) } };
  }
}
let code = 1;
if (!cd || !sd || !hd) {
  process.stdout.write(`@@MOCOPY-DATA ${JSON.stringify({ kind: 'error', message: 'expected a CD-ROM, a scsi_debug and a QEMU HARDDISK' })}\n`);
} else {
  const rig: Rig = {
    mode: 'native',
    cd: { spec: cd.sg, role: 'qemu-cd', ...(cd.block ? { block: cd.block } : {}) },
    targets: [
      { spec: sd.sg, role: 'scsi_debug', ...(sd.block ? { block: sd.block } : {}) },
      { spec: hd.sg, role: 'qemu-hd', ...(hd.block ? { block: hd.block } : {}) },
    ],
    ledger: '/data/ledger.db',
    stationKey: '/data/station.key',
    programs: { 'HIL-APP-1': '/data/HIL-APP-1.bin', 'HIL-APP-2': '/data/HIL-APP-2.bin' },
    sg3: true,
    scsiDebugSysfs: '/sys/bus/pseudo/drivers/scsi_debug',
    ...(iscsi ? { iscsi } : {}),
    bench: process.env.MOCOPY_HIL_BENCH !== '0',
    work: '/tmp',
  };
  data('rig', { rig });
  const r = only && only !== 'suite' ? { status: 0 } : spawnSync(process.execPath, ['node_modules/mocha/bin/mocha.js', '--no-config', '--reporter', 'json-stream', '--timeout', '120000', 'dist/hil/suite/suite.spec.js'], {
    stdio: 'inherit', env: { ...process.env, MOCOPY_HIL_RIG: JSON.stringify(rig) }, cwd: '/app',
  });
  code = r.status ?? 1;
  // What the guest's kernel said about the iSCSI drive during the run (its scan, sense it logged, resets).
  const mo = iscsi?.spec ? devices.find((d) => d.sg === iscsi!.spec) : undefined;
  if (mo?.hctl) {
    const k = spawnSync('dmesg', [], { encoding: 'utf8' });
    const lines = (k.stdout ?? '').split('\n').filter((l) => l.includes(` ${mo.hctl}:`) || (mo.block && l.includes(`[${mo.block.replace('/dev/', '')}]`)));
    data('iscsi-kernel', { hctl: mo.hctl, lines });
  }
}

// The differential run (hil/virtual/differential.ts): scsi_debug is loaded again with a fresh, zero-filled store of
// the served differential disc's size (the suite has written to the first one), and both get the same CDBs.
if (existsSync('/data/differential.json') && (!only || only === 'differential')) {
  const cfg = JSON.parse(readFileSync('/data/differential.json', 'utf8')) as { mediumId: string; seed: number; count: number; window?: number; scsiDebug: string };
  const title = `differential: ${cfg.count} seeded CDBs (seed ${cfg.seed}) to scsi_debug and to the served MO, every answer compared`;
  const fail = (err: string) => process.stdout.write(JSON.stringify(['fail', { title, fullTitle: `differential ${title}`, duration: 0, err }]) + '\n');
  const mo = served.get(cfg.mediumId);
  const rm = spawnSync('rmmod', ['scsi_debug'], { encoding: 'utf8' });
  const ins = spawnSync('insmod', ['/mods/scsi_debug.ko', ...cfg.scsiDebug.split(' ')], { encoding: 'utf8' });
  let fresh: ListedDevice | undefined;
  for (let i = 0; i < 100 && !fresh; i++) {
    fresh = listDevices().find((d) => d.vendor === 'Linux' && d.product.startsWith('scsi_debug'));
    if (!fresh) await new Promise((r) => setTimeout(r, 100));
  }
  data('differential-setup', { scsiDebug: cfg.scsiDebug, rmmod: rm.status, insmod: ins.status, insmodErr: ins.stderr?.trim(), sd: fresh?.sg, mo: mo?.sg });
  if (!mo) fail(`no served MO drive has the differential disc (medium ID ${cfg.mediumId})`);
  else if (!fresh) fail(`scsi_debug did not come back (rmmod ${rm.status} ${rm.stderr?.trim() ?? ''}, insmod ${ins.status} ${ins.stderr?.trim() ?? ''})`);
  else {
    spawnSync(process.execPath, ['dist/hil/virtual/differential.js'], {
      stdio: 'inherit', cwd: '/app',
      env: { ...process.env, MOCOPY_HIL_DIFF: JSON.stringify({ sd: fresh.sg, mo: mo.sg, seed: cfg.seed, count: cfg.count, window: cfg.window }) },
    });
  }
}
process.stdout.write(`@@MOCOPY-DONE ${code}\n`);
