/**
 * Runs inside the QEMU guest (as /init's last step): finds the virtual drives through sysfs, describes
 * the rig, and runs the HIL mocha suite on them through the native transport. Output goes to the serial
 * console: mocha's json-stream lines and @@MOCOPY-DATA records, then @@MOCOPY-DONE <exit code>.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { listDevices } from '../../lib/scsi/list-devices.js';
import type { Rig, RigIscsi } from '../suite/rig.js';

const devices = listDevices();
process.stdout.write(`@@MOCOPY-DATA ${JSON.stringify({ kind: 'devices', devices })}\n`);
const cd = devices.find((d) => d.peripheralType === 5);
const sd = devices.find((d) => d.vendor === 'Linux' && d.product.startsWith('scsi_debug'));
const hd = devices.find((d) => d.product.startsWith('QEMU HARDDISK'));
// The iSCSI stage (run.sh puts its description in the initramfs when the host serves the LUN): the drive is
// the one whose INQUIRY names the emulator's MO drive; when none does, the stage's checks fail rather than skip.
let iscsi: RigIscsi | undefined;
if (existsSync('/data/iscsi.json')) {
  const want = JSON.parse(readFileSync('/data/iscsi.json', 'utf8')) as Omit<RigIscsi, 'spec'>;
  const mo = devices.find((d) => d.vendor === want.vendor && d.product === want.product);
  iscsi = { ...want, ...(mo ? { spec: mo.sg } : {}) };
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
  process.stdout.write(`@@MOCOPY-DATA ${JSON.stringify({ kind: 'rig', rig })}\n`);
  const r = spawnSync(process.execPath, ['node_modules/mocha/bin/mocha.js', '--no-config', '--reporter', 'json-stream', '--timeout', '120000', 'dist/hil/suite/suite.spec.js'], {
    stdio: 'inherit', env: { ...process.env, MOCOPY_HIL_RIG: JSON.stringify(rig) }, cwd: '/app',
  });
  code = r.status ?? 1;
  // What the guest's kernel said about the iSCSI drive during the run (its scan, sense it logged, resets).
  const mo = iscsi?.spec ? devices.find((d) => d.sg === iscsi!.spec) : undefined;
  if (mo?.hctl) {
    const k = spawnSync('dmesg', [], { encoding: 'utf8' });
    const lines = (k.stdout ?? '').split('\n').filter((l) => l.includes(` ${mo.hctl}:`) || (mo.block && l.includes(`[${mo.block.replace('/dev/', '')}]`)));
    process.stdout.write(`@@MOCOPY-DATA ${JSON.stringify({ kind: 'iscsi-kernel', hctl: mo.hctl, lines })}\n`);
  }
}
process.stdout.write(`@@MOCOPY-DONE ${code}\n`);
