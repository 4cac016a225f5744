/**
 * The hardware-in-the-loop suite. Natively (QEMU guest, lab rig) it checks mocopy's SCSI layer against a
 * real kernel's sg driver and targets nobody here wrote, and against sg3_utils on the same nodes; on the
 * host the same checks run against mocopy's emulator, and `observed` records feed the cross-check table.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { LocalCenterClient } from '../../lib/center/local-client.js';
import { readStationKey } from '../../lib/center/station-key.js';
import { openMaster } from '../../lib/master/index.js';
import { openCopy } from '../../lib/protocol/open-copy.js';
import { copyLicensed } from '../../lib/protocol/station.js';
import * as cdb from '../../lib/scsi/cdb.js';
import { ScsiDevice } from '../../lib/scsi/device.js';
import { NoMediumIdError, readMediumId } from '../../lib/scsi/medium-id.js';
import { openDevice } from '../../lib/drives/open.js';
import { listDevices } from '../../lib/scsi/list-devices.js';
import { loadNativeBinding } from '../../lib/scsi/native-binding.js';
import { openNative, type NativeTransport } from '../../lib/scsi/native-transport.js';
import { ScsiError, TransportError } from '../../lib/scsi/scsi-errors.js';
import { parseSense } from '../../lib/scsi/sense.js';
import type { ScsiCommand, ScsiResult, Transport } from '../../lib/scsi/transport.js';
import { loadRig, record } from './rig.js';

const rig = loadRig();
const native = rig.mode === 'native';
const all = [{ ...rig.cd, kind: 'cd' as const }, ...rig.targets.map((t) => ({ ...t, kind: 'target' as const }))];

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
async function senseTuple(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'GOOD';
  } catch (e) {
    if (e instanceof ScsiError) return `${e.senseKey.toString(16)}/${e.asc.toString(16).padStart(2, '0')}/${e.ascq.toString(16).padStart(2, '0')}`;
    if (e instanceof TransportError) return `transport:${e.code}`;
    throw e;
  }
}
function counting(inner: Transport): Transport & { count: number } {
  const t = { path: inner.path, limits: inner.limits, count: 0, execute: (c: ScsiCommand) => { t.count++; return inner.execute(c); }, close: () => inner.close() };
  return t;
}

/**
 * One licensed copy from the rig's master to `targetSpec` under `scheme`, then `open` on the same drive; the
 * opened bytes must be the publisher's (`original`, when given). Records what happened for the host.
 */
async function copyThenOpen(targetSpec: string, role: string, contentIdGiven: string | undefined, scheme: 'a' | 'b', original: string | undefined) {
  const station = readStationKey(rig.stationKey!);
  const master = await openDevice(rig.cd.spec, { write: false });
  const target = await openDevice(targetSpec);
  const center = new LocalCenterClient(rig.ledger!, station);
  try {
    const contentId = contentIdGiven ?? (await openMaster(master)).catalog.contents[0]!.contentId;
    const t0 = Date.now();
    const r = await copyLicensed({ master, target, contentId, scheme, center, stationKey: station });
    const copyMs = Date.now() - t0;
    const parts: Buffer[] = [];
    const t1 = Date.now();
    await openCopy({ target, contentId, stationKey: station, out: new Writable({ write(c, _e, cb) { parts.push(c); cb(); } }) });
    const openMs = Date.now() - t1;
    const opened = Buffer.concat(parts);
    const sha256 = createHash('sha256').update(opened).digest('hex');
    record('observed', { check: 'copy', role, value: { scheme, mediumIdMethod: r.mediumIdMethod, bytes: r.plainSize } });
    record('copy', { role, contentId, scheme, mediumId: r.mediumId, licenseId: r.licenseId, slot: r.slot, bytes: r.plainSize, sha256, copyMs, openMs });
    assert.equal(opened.length, r.plainSize);
    if (original) assert.equal(sha256, createHash('sha256').update(readFileSync(original)).digest('hex'));
    return r;
  } finally {
    await master.close();
    await target.close();
    await center.close();
  }
}

describe(`HIL suite (${rig.mode})`, function () {
  this.timeout(120_000);

  describe('identity and shapes', () => {
    for (const d of all) {
      it(`${d.role}: INQUIRY, READ CAPACITY and unit serial${native && rig.sg3 ? ' match sg3_utils' : ''}`, async () => {
        const dev = await openDevice(d.spec);
        try {
          const inq = await dev.inquiry();
          const cap = await dev.capacity();
          const serial = await dev.unitSerial();
          record('observed', { check: 'inquiry-shape', role: d.role, value: { pdt: inq.peripheralType, rmb: inq.removable, blockSize: cap.blockSize } });
          if (native && rig.sg3) {
            const inqText = sh('sg_inq', [d.spec]);
            assert.match(inqText, new RegExp(`PDT=${inq.peripheralType}\\b`));
            assert.match(inqText, new RegExp(`RMB=${inq.removable ? 1 : 0}\\b`));
            assert.match(inqText, new RegExp(`Vendor identification: ${inq.vendor}`));
            assert.match(inqText, new RegExp(`Product identification: ${inq.product.replace(/[()]/g, '.')}`));
            const rc = sh('sg_readcap', [d.spec]);
            assert.match(rc, new RegExp(`Last (LBA|logical block address)=${cap.blockCount - 1}\\b`));
            assert.match(rc, new RegExp(`(Logical block length|Block size)=${cap.blockSize} bytes`));
            if (serial) assert.match(sh('sg_vpd', ['-p', 'sn', d.spec]), new RegExp(`Unit serial number: ${serial.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
          }
        } finally {
          await dev.close();
        }
      });
    }
    for (const d of all) {
      it(`${d.role}: the bytes mocopy reads are the bytes sg_dd reads`, async function () {
        const dev = await openDevice(d.spec);
        try {
          const cap = await dev.capacity();
          const n = Math.min(256, cap.blockCount);
          const ours = await dev.read(0, n);
          if (native && rig.sg3) {
            // A fresh file per device: sg_dd does not truncate an existing output file.
            const out = join(rig.work, `sgdd-${d.role}.bin`);
            rmSync(out, { force: true });
            sh('sg_dd', [`if=${d.spec}`, `of=${out}`, `bs=${cap.blockSize}`, `count=${n}`]);
            assert.ok(readFileSync(out).equals(ours));
          } else {
            assert.equal(ours.length, n * cap.blockSize);
          }
        } finally {
          await dev.close();
        }
      });
    }
  });

  describe('sense paths', () => {
    for (const d of all) {
      it(`${d.role}: READ past the last LBA -> ILLEGAL REQUEST 21/00`, async () => {
        const dev = await openDevice(d.spec);
        const cap = await dev.capacity();
        const t = await senseTuple(dev.dataIn(cdb.read10(cap.blockCount, 1), cap.blockSize));
        record('observed', { check: 'read-past-end', role: d.role, value: t });
        await dev.close();
        assert.equal(t, '5/21/00');
      });
      it(`${d.role}: unsupported opcode -> 20/00, invalid CDB field -> 24/00`, async () => {
        const dev = await openDevice(d.spec);
        const op = await senseTuple(dev.run(Buffer.from([0xd9, 0, 0, 0, 0, 0]), 'none', undefined, 5000));
        const field = await senseTuple(dev.dataIn(cdb.inquiry({ evpd: true, page: 0xc7, alloc: 64 }), 64));
        record('observed', { check: 'bad-opcode', role: d.role, value: op });
        record('observed', { check: 'bad-field', role: d.role, value: field });
        await dev.close();
        assert.equal(op, '5/20/00');
        assert.equal(field, '5/24/00');
      });
    }
    it(`${rig.cd.role}: WRITE to the CD-ROM is refused`, async () => {
      const dev = await openDevice(rig.cd.spec);
      const t = await senseTuple(dev.run(cdb.write10(0, 1), 'out', Buffer.alloc(2048), 5000));
      record('observed', { check: 'write-to-cd', role: rig.cd.role, value: t });
      await dev.close();
      assert.ok(/^(5\/20|5\/24|7\/27|5\/30|5\/21)/.test(t), `refused with ${t}`);
    });
    for (const d of rig.targets) {
      it(`${d.role}: READ MEDIA SERIAL NUMBER; without it, a clear error and then the quirk path`, async () => {
        const dev = await openDevice(d.spec);
        const t = await senseTuple(dev.dataIn(cdb.readMediaSerialNumber(4), 4));
        record('observed', { check: 'read-media-serial-number', role: d.role, value: t });
        if (t === 'GOOD') {
          const id = await dev.mediumId();
          assert.equal(id.standIn, false);
        } else {
          assert.equal(t, '5/20/00');
          await assert.rejects(readMediumId(dev, { type: 'read-media-serial-number' }), (e: NoMediumIdError) => /gives no medium ID by READ MEDIA SERIAL NUMBER/.test(e.message));
          const id = await dev.mediumId(); // the built-in quirk: unit serial as a lab stand-in
          assert.equal(id.standIn, true);
          assert.ok(id.id.length > 0);
          record('observed', { check: 'medium-id-standin', role: d.role, value: id.method });
        }
        await dev.close();
      });
    }
  });

  describe('concurrency and limits', () => {
    for (const d of rig.targets.slice(0, 1).concat([{ ...rig.cd }])) {
      it(`${d.role}: 64 commands in flight on one handle and on a second handle agree with sequential reads`, async () => {
        const a = await openDevice(d.spec);
        const b = await openDevice(d.block && native ? d.block : d.spec, { write: false });
        try {
          const cap = await a.capacity();
          const n = Math.min(64, cap.blockCount);
          const seq = await a.read(0, n);
          const par = await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? b : a).read(i, 1)));
          assert.ok(Buffer.concat(par).equals(seq));
        } finally {
          await a.close();
          await b.close();
        }
      });
    }
    it('a transfer larger than the device limit is split by the reported limit', async () => {
      const d = rig.targets[0]!;
      const probe = await openDevice(d.spec);
      const limit = probe.transport.limits.maxTransferBytes;
      const cap = await probe.capacity();
      await probe.close();
      const spy = counting(await (await import('../../lib/drives/open.js')).openTransport(d.spec));
      const dev = new ScsiDevice(d.spec, spy);
      const blocks = Math.min(cap.blockCount, Math.ceil((2.5 * limit) / cap.blockSize));
      await dev.capacity(); // not counted: only the READs are
      spy.count = 0;
      const big = await dev.read(0, blocks);
      record('observed', { check: 'max-transfer', role: d.role, value: { limit, blocks, commands: spy.count } });
      assert.equal(big.length, blocks * cap.blockSize);
      assert.equal(spy.count, Math.ceil((blocks * cap.blockSize) / (Math.floor(limit / cap.blockSize) * cap.blockSize)));
      const again = Buffer.concat(await Promise.all(Array.from({ length: Math.ceil(blocks / 8) }, (_, i) => dev.read(i * 8, Math.min(8, blocks - i * 8)))));
      assert.ok(again.equals(big));
      await dev.close();
    });
  });

  if (native) {
    describe('block nodes and the kernel\'s rules', () => {
      if (rig.cd.block) {
        it(`${rig.cd.role}: the block node ${rig.cd.block} answers INQUIRY like the sg node`, async () => {
          const sr = await openDevice(rig.cd.block!, { write: false });
          assert.equal((await sr.inquiry()).peripheralType, 5);
          await sr.close();
        });
      }
      const hd = rig.targets.find((t) => t.block?.startsWith('/dev/sd'));
      if (hd) {
        it(`${hd.role}: the block node refuses READ MEDIA SERIAL NUMBER to a process without CAP_SYS_RAWIO (EPERM -> use /dev/sgN)`, () => {
          execFileSync('chmod', ['666', hd.block!]);
          const script = `process.setgid(65534); process.setuid(65534);
            const { openDevice } = await import(${JSON.stringify(join(process.cwd(), 'dist/lib/drives/open.js'))});
            const cdb = await import(${JSON.stringify(join(process.cwd(), 'dist/lib/scsi/cdb.js'))});
            const d = await openDevice(${JSON.stringify(hd.block)});
            await d.inquiry();
            try { await d.dataIn(cdb.readMediaSerialNumber(4), 4); console.log('NO-ERROR'); } catch (e) { console.log(JSON.stringify({ code: e.code, hint: e.hint })); }`;
          const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
          record('observed', { check: 'block-node-eperm', role: hd.role, value: r.stdout.trim() });
          const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
          assert.equal(out.code, 'EPERM');
          assert.match(out.hint, /\/dev\/sgN/);
        });
      }
    });

    describe('transfer limits', () => {
      it('the kernel refuses a transfer far beyond the queue limit (which is why mocopy splits by it)', async () => {
        const d = rig.targets.find((t) => t.role === 'scsi_debug') ?? rig.targets[0]!;
        const { executeUnbound, loadNativeBinding } = await import('../../lib/scsi/native-binding.js');
        const { hintForErrno } = await import('../../lib/scsi/native-transport.js');
        const b = loadNativeBinding();
        const h = b.open(d.spec, { write: true });
        const lim = b.limits(h);
        const probe = await openDevice(d.spec);
        const cap = await probe.capacity();
        await probe.close();
        // Far past every limit the kernel reports (queue max_hw_sectors, sg reserved size): 64 MiB or the whole device.
        const blocks = Math.min(cap.blockCount, Math.floor((64 << 20) / cap.blockSize), 0xffff);
        let code: string | undefined;
        try {
          const r = await executeUnbound(b, h, cdb.read10(0, blocks), 1, Buffer.alloc(blocks * cap.blockSize), 10000);
          code = `status ${r.status} host ${r.hostStatus}`;
        } catch (e) {
          code = (e as NodeJS.ErrnoException).code;
        } finally {
          b.close(h);
        }
        record('observed', { check: 'over-limit-transfer', role: d.role, value: { bytes: blocks * cap.blockSize, limit: lim, kernel: code } });
        assert.ok(['EIO', 'ENOMEM', 'EINVAL', 'EOVERFLOW'].includes(code!), `kernel answered ${code}`);
        assert.match(hintForErrno(code, d.spec, 'execute', 'READ(10)')!, /max transfer/);
      });
    });

    if (rig.scsiDebugSysfs) {
      describe('timeouts', () => {
        it('a command the target never answers times out as a typed TransportError (E_TIMEOUT)', async () => {
          const d = rig.targets.find((t) => t.role === 'scsi_debug')!;
          const dev = await openDevice(d.spec);
          await dev.testUnitReady();
          const sys = rig.scsiDebugSysfs!;
          writeFileSync(join(sys, 'every_nth'), '1');
          writeFileSync(join(sys, 'opts'), '4'); // SDEBUG_OPT_TIMEOUT: ignore every nth command
          const t0 = Date.now();
          let err: unknown;
          try {
            await new ScsiDevice(d.spec, dev.transport, { timeouts: { quick: 1500 } }).testUnitReady();
          } catch (e) {
            err = e;
          } finally {
            writeFileSync(join(sys, 'opts'), '0');
            writeFileSync(join(sys, 'every_nth'), '0');
          }
          record('observed', { check: 'timeout', role: d.role, value: { code: (err as TransportError)?.code, hostStatus: (err as TransportError)?.hostStatus, ms: Date.now() - t0 } });
          assert.ok(err instanceof TransportError, `got ${String(err)}`);
          assert.equal(err.code, 'E_TIMEOUT');
          // The device is still usable afterwards.
          for (let i = 0; i < 5; i++) { try { await dev.testUnitReady(); break; } catch { await new Promise((r) => setTimeout(r, 500)); } }
          await dev.close();
        });
      });
    }
  }

  if (rig.ledger && rig.stationKey && rig.programs) {
    describe('the copy protocol on these drives', () => {
      const schemes = ['a', 'b'] as const;
      rig.targets.forEach((t, i) => {
        const scheme = schemes[i % 2]!;
        const ids = Object.keys(rig.programs!);
        it(`scheme ${scheme.toUpperCase()}: a program from ${rig.cd.role} to ${t.role}, then open gives the original bytes`, async () => {
          // With no originals given (a lab master), the first program of the master's catalog is copied.
          const contentId = ids.length ? ids[i % ids.length]! : undefined;
          await copyThenOpen(t.spec, t.role, contentId, scheme, contentId ? rig.programs![contentId] : undefined);
        });
      });
    });
  }

  if (native && rig.iscsi) {
    const mo = rig.iscsi;
    const need = (): string => {
      if (!mo.spec) throw new Error(`no /dev/sgN answers INQUIRY as ${mo.vendor} / ${mo.product}: the iSCSI LUN is not attached`);
      return mo.spec;
    };
    describe('iSCSI MO drive (mocopy emu serve --iscsi through QEMU\'s initiator)', () => {
      it(`iscsi-mo: sg_inq shows peripheral device type 7 (optical memory), ${mo.vendor} / ${mo.product}, and mocopy's INQUIRY agrees`, async () => {
        const spec = need();
        const text = sh('sg_inq', [spec]);
        record('observed', { check: 'iscsi-sg_inq', role: 'iscsi-mo', value: text.split('\n').filter((l) => /PDT=|identification|device type/.test(l)).map((l) => l.trim()) });
        assert.match(text, /PDT=7\b/);
        const named = /Peripheral device type: (.+?)\]?$/m.exec(text);
        if (named) assert.match(named[1]!, /optical memory/);
        assert.match(text, /RMB=1\b/);
        assert.match(text, new RegExp(`Vendor identification: ${mo.vendor}\\b`));
        assert.match(text, new RegExp(`Product identification: ${mo.product}\\b`));
        const dev = await openDevice(spec);
        try {
          const inq = await dev.inquiry();
          assert.equal(inq.peripheralType, 7);
          assert.equal(inq.removable, true);
          assert.equal(inq.vendor, mo.vendor);
          assert.equal(inq.product, mo.product);
        } finally {
          await dev.close();
        }
      });
      it('iscsi-mo: sg_rmsn -r (READ MEDIA SERIAL NUMBER, raw) prints the image\'s medium ID', () => {
        const raw = execFileSync('sg_rmsn', ['-r', need()], { stdio: ['ignore', 'pipe', 'pipe'] });
        record('observed', { check: 'iscsi-sg_rmsn', role: 'iscsi-mo', value: raw.toString('hex') });
        assert.equal(raw.toString('hex'), mo.mediumId);
      });
      it('iscsi-mo: mocopy reads the same medium ID through SG_IO by READ MEDIA SERIAL NUMBER, the default method (no stand-in)', async () => {
        const dev = await openDevice(need());
        try {
          assert.deepEqual(await dev.mediumIdMethod(), { type: 'read-media-serial-number' });
          const id = await dev.mediumId();
          record('observed', { check: 'iscsi-medium-id', role: 'iscsi-mo', value: { id: id.id.toString('hex'), method: id.method, standIn: id.standIn } });
          assert.equal(id.standIn, false);
          assert.equal(id.method, 'read-media-serial-number');
          assert.equal(id.id.toString('hex'), mo.mediumId);
        } finally {
          await dev.close();
        }
      });
      for (const c of mo.copies) {
        it(`iscsi-mo: scheme ${c.scheme.toUpperCase()}: ${c.contentId} from ${rig.cd.role} to the iSCSI MO, then open in the guest gives the publisher's bytes`, async () => {
          const r = await copyThenOpen(need(), 'iscsi-mo', c.contentId, c.scheme, c.file);
          assert.equal(r.mediumIdMethod, 'read-media-serial-number');
          assert.equal(r.mediumId, mo.mediumId);
        });
      }
    });
  }

  if (native && rig.iscsi?.faults && rig.ledger && rig.stationKey) {
    // Faults through the kernel: discs the host serves with a device-spec fault (docs/emulator.md), each already
    // holding the copies `f.before`. The copy that meets the fault is made by mocopy's own CLI, as at a station
    // (so its exit code counts); what is on the disc afterwards is read through the library (node starts slowly under TCG).
    const f = rig.iscsi.faults;
    const cli = join(process.cwd(), 'dist/cli/main.js');
    type CliError = { code: string; message: string; exitCode: number; hint?: string | null };
    const copyByCli = (spec: string, timeout = 200_000) => {
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [cli, 'copy', rig.cd.spec, spec, '--content', f.contentId, '--scheme', f.scheme, '--center-db', rig.ledger!, '--station-key', rig.stationKey!, '--json'], { encoding: 'utf8', timeout });
      const lines = (r.stdout ?? '').trim().split('\n').filter(Boolean);
      let last: { error?: CliError; ok?: boolean; [k: string]: unknown } = {};
      try { last = JSON.parse(lines.at(-1) ?? '{}'); } catch { last = { unparsed: lines.at(-1) }; }
      return { status: r.status, signal: r.signal, last, stderr: (r.stderr ?? '').trim().slice(0, 400), ms: Date.now() - t0 };
    };
    const onDisc = async (spec: string): Promise<string[]> => {
      const { verifyDisc } = await import('../../lib/protocol/verify-disc.js');
      const dev = await openDevice(spec, { write: false });
      try {
        return (await verifyDisc({ target: dev, stationKey: readStationKey(rig.stationKey!) })).results.map((x) => x.contentId).sort();
      } finally {
        await dev.close();
      }
    };
    const needFault = (d: { spec?: string; mediumId: string }, what: string): string => {
      if (!d.spec) throw new Error(`no /dev/sgN has the ${what} disc (medium ID ${d.mediumId}): its LUN is not attached`);
      return d.spec;
    };
    /**
     * What failed, past the device's name: the command, its CDB without the transfer length (each device splits a
     * stream by its own transfer limit), the sense.
     */
    const failure = (m: string | undefined) => {
      const x = /^.*?: (\S+) \[([0-9a-f ]+)\] failed: (.*)$/s.exec(m ?? '');
      if (!x) return m;
      const b = Buffer.from(x[2]!.replace(/ /g, ''), 'hex');
      const [at, n] = b.length === 10 ? [7, 2] : b.length === 12 ? [6, 4] : b.length === 16 ? [10, 4] : [4, 1];
      b.fill(0, at, at + n);
      return `${x[1]} [${b.toString('hex')} with the transfer length left out] failed: ${x[3]}`;
    };
    describe('iSCSI MO drive faults (device-spec faults behind the wire, through QEMU\'s initiator)', function () {
      this.timeout(300_000);
      it(`iscsi-fault: mocopy copy onto the disc served with ${f.mediumError.fault} stops with the typed SCSI error the in-process emulator gives (03/0C/00, exit 4), and the disc keeps only what it had`, async () => {
        const spec = needFault(f.mediumError, 'medium-error');
        const ref = JSON.parse(readFileSync(f.mediumError.reference, 'utf8')) as { exit: number; last: { error?: CliError } };
        const r = copyByCli(spec);
        const after = await onDisc(spec);
        record('observed', { check: 'iscsi-fault-copy', role: 'iscsi-fault', value: { exit: r.status, error: r.last.error, ms: r.ms, reference: ref, onDisc: after } });
        assert.equal(r.status, 4, `mocopy copy exited ${r.status}: ${JSON.stringify(r.last)} ${r.stderr}`);
        assert.equal(r.last.error?.code, 'E_SCSI_CHECK');
        assert.match(r.last.error!.message, /failed: MEDIUM ERROR: .*\(0C\/00\)/);
        assert.equal(r.status, ref.exit, 'the same exit code as against the in-process emulator');
        assert.equal(r.last.error?.code, ref.last.error?.code);
        assert.equal(failure(r.last.error?.message), failure(ref.last.error?.message), 'the same command, LBA and sense as against the in-process emulator');
        assert.deepEqual(after, [...f.before].sort(), 'verify finds no new copy');
      });
      it(`iscsi-pcut: mocopy copy onto the disc served with ${f.powerCut.fault} loses its connection mid-copy; served again after the cut, the drive reports its power-on and the copy stops with E_MEDIUM_CHANGED (exit 5); a second run completes the copy, which opens to the publisher's bytes`, async () => {
        const spec = needFault(f.powerCut, 'power-cut');
        const first = copyByCli(spec);
        // The host serves the image again once the cut has happened (run.sh): wait until the drive answers.
        const t0 = Date.now();
        let back = false;
        while (!back && Date.now() - t0 < 90_000) {
          const t = await openDevice(spec).catch(() => undefined);
          try {
            if (t) { await new ScsiDevice(spec, t.transport, { timeouts: { quick: 5000 } }).testUnitReady(); back = true; }
          } catch { /* not yet */ } finally {
            await t?.close();
          }
          if (!back) await new Promise((r) => setTimeout(r, 1000));
        }
        const waitedMs = Date.now() - t0;
        record('observed', { check: 'iscsi-pcut-first', role: 'iscsi-pcut', value: { exit: first.status, signal: first.signal, last: first.last, ms: first.ms, waitedMs } });
        assert.notEqual(first.status, 0, `the first run completed (exit 0): the cut came too late to interrupt it (${JSON.stringify(first.last)})`);
        // The drive served again reports its power-on (run.sh: --power-on); QEMU's initiator, logging in again,
        // passes it up, and the swap guard stops the copy at once rather than at the read-back.
        assert.equal(first.last.error?.code, 'E_MEDIUM_CHANGED', `the first run stopped otherwise: ${JSON.stringify(first.last)}`);
        assert.match(first.last.error!.message, /\(29\/00\)/);
        assert.equal(first.status, 5);
        assert.ok(back, 'the drive answered again within 90 s (the host serves the image again after the cut)');
        // The second run, as the hint says ("run the same command again"): it completes and opens to the original.
        const r = await copyThenOpen(spec, 'iscsi-pcut', f.contentId, f.scheme, f.file);
        assert.equal(r.alreadyPresent, false);
        assert.deepEqual(await onDisc(spec), [...f.before, f.contentId].sort());
      });
    });
  }

  if (native && rig.bench) {
    // Throughput and round-trip rates against sg3_utils' sg_dd and a C SG_IO loop (hil/bench/tur.c) on the same
    // device and bytes. Each figure is the best of 3 alternating runs (interference under TCG only slows a run down).
    // Besides the 'bench' lines, 'guest-bench' records ({ name, value, unit, baseline, ratio, goal }) become
    // $MOCOPY_HIL_WORK/guest-bench.json on the host (summarize.ts). Nothing here is asserted on time.
    describe('benchmarks (ratios; absolute numbers under TCG mean little)', function () {
      this.timeout(900_000);
      const IN_FLIGHT = [1, 2, 4, 8];
      const REPS = 3;
      const roles = ['scsi_debug', 'qemu-hd'];
      const suffix = (role: string) => (role === 'scsi_debug' ? '' : `.${role}`);
      const ms = async (f: () => Promise<unknown> | unknown) => { const t0 = performance.now(); await f(); return performance.now() - t0; };
      const guestBench = (name: string, value: number, unit: string, baseline: number, goal: number, extra: Record<string, unknown> = {}) =>
        record('guest-bench', { name, value, unit, baseline, ratio: value / baseline, goal, ...extra });
      /** Runs every config REPS times, alternating, and keeps each one's best (lowest) time. */
      const bestOf = async (configs: Array<[string, () => Promise<number>]>) => {
        const best: Record<string, number> = {};
        for (let rep = 0; rep < REPS; rep++) for (const [k, f] of configs) best[k] = Math.min(best[k] ?? Infinity, await f());
        return best;
      };
      for (const role of roles) {
        const d = rig.targets.find((t) => t.role === role);
        if (!d) continue;
        it(`${role}: sequential read and write of 16 MiB at 64 KiB per command: device API (sg-async with 1/2/4/8 in flight; worker mode for reference) vs sg_dd`, async () => {
          const asyncDev = new ScsiDevice(d.spec, await openNative(d.spec));
          const workerDev = new ScsiDevice(d.spec, await openNative(d.spec, { async: false }));
          try {
            assert.equal((asyncDev.transport as NativeTransport).mode, 'sg-async');
            const cap = await asyncDev.capacity();
            await workerDev.capacity();
            const bytes = Math.min(16 << 20, Math.floor(cap.bytes / 2 / 65536) * 65536);
            const blocks = bytes / cap.blockSize;
            const lba = cap.blockCount - blocks; // the device's tail: what the copy tests wrote at the start stays
            const per = 65536 / cap.blockSize;
            const src = Buffer.alloc(bytes, 0x5a);
            const file = join(rig.work, `bench-${role}.bin`);
            writeFileSync(file, src);
            const sgdd = ['bs=' + cap.blockSize, `bpt=${per}`, `count=${blocks}`];
            const readWith = (dev: ScsiDevice, n: number, recycle = false) => () => ms(async () => { for await (const _ of dev.readStream(lba, blocks, { chunkBytes: 65536, inFlight: n, recycle })) void _; });
            const writeWith = (dev: ScsiDevice, n: number) => () => ms(() => dev.writeStream(lba, (async function* () { yield src; })(), { chunkBytes: 65536, inFlight: n }));
            const reads = await bestOf([
              ['sg_dd', () => ms(() => sh('sg_dd', [`if=${d.spec}`, 'of=/dev/null', ...sgdd, `skip=${lba}`]))],
              ...IN_FLIGHT.map((n) => [`async${n}`, readWith(asyncDev, n)] as [string, () => Promise<number>]),
              // readStream's recycle option: a ring of inFlight + 1 buffers instead of a new one per chunk (as sg_dd's one buffer)
              ...IN_FLIGHT.map((n) => [`recycle${n}`, readWith(asyncDev, n, true)] as [string, () => Promise<number>]),
              ['worker1', readWith(workerDev, 1)], ['worker4', readWith(workerDev, 4)],
            ]);
            const writes = await bestOf([
              ['sg_dd', () => ms(() => sh('sg_dd', [`if=${file}`, `of=${d.spec}`, ...sgdd, `seek=${lba}`]))],
              ...IN_FLIGHT.map((n) => [`async${n}`, writeWith(asyncDev, n)] as [string, () => Promise<number>]),
              ['worker1', writeWith(workerDev, 1)], ['worker4', writeWith(workerDev, 4)],
            ]);
            const mbs = (t: number) => bytes / 1e6 / (t / 1000);
            const ratio = (t: Record<string, number>, k: string) => t.sg_dd! / t[k]!;
            for (const [what, t] of [['read', reads], ['write', writes]] as const) {
              for (const k of Object.keys(t).filter((x) => x !== 'sg_dd')) {
                const n = Number(k.replace(/\D/g, ''));
                const mode = k.startsWith('worker') ? 'worker' : 'sg-async';
                const variant = k.replace(/\d+$/, '');
                record('bench', { name: `sequential ${what}, device API ${mode}${variant === 'recycle' ? ' (recycle)' : ''} ${n} in flight / sg_dd (throughput ratio; >1 = faster)`, device: role, mocopyMs: Math.round(t[k]!), sgddMs: Math.round(t.sg_dd!), ratio: ratio(t, k) });
                guestBench(`guest.seq${what}.vs_sgdd${variant === 'async' ? '' : `.${variant}`}.inflight${n}${suffix(role)}`, mbs(t[k]!), 'MB/s', mbs(t.sg_dd!), 1.0, { device: role, mode, inFlight: n, ...(variant === 'recycle' ? { recycle: true } : {}) });
              }
            }
            // The headline: the queue depth with the best read and write together (geometric mean of the two ratios).
            const score = (n: number) => Math.sqrt(ratio(reads, `async${n}`) * ratio(writes, `async${n}`));
            const bestN = IN_FLIGHT.reduce((a, n) => (score(n) > score(a) ? n : a), IN_FLIGHT[0]!);
            guestBench(`guest.seqread.vs_sgdd${suffix(role)}`, mbs(reads[`async${bestN}`]!), 'MB/s', mbs(reads.sg_dd!), 1.0, { device: role, mode: 'sg-async', inFlight: bestN });
            guestBench(`guest.seqwrite.vs_sgdd${suffix(role)}`, mbs(writes[`async${bestN}`]!), 'MB/s', mbs(writes.sg_dd!), 1.0, { device: role, mode: 'sg-async', inFlight: bestN });
          } finally {
            await asyncDev.close();
            await workerDev.close();
          }
        });
        it(`${role}: TEST UNIT READY/s with 1 and 8 in flight: device API (sg-async; worker mode, no completion inside execute() and the bare transport for reference) vs a C program issuing SG_IO in a loop`, async () => {
          const asyncT = await openNative(d.spec);
          const noReapT = await openNative(d.spec, { syncReap: false });
          const workerT = await openNative(d.spec, { async: false });
          const devs = { async: new ScsiDevice(d.spec, asyncT), noreap: new ScsiDevice(d.spec, noReapT), worker: new ScsiDevice(d.spec, workerT) };
          const N = 4000;
          const tur = cdb.testUnitReady();
          try {
            for (const dv of Object.values(devs)) await dv.testUnitReady().catch(() => dv.testUnitReady()); // a pending UNIT ATTENTION goes first
            for (const inflight of [1, 8]) {
              const loop = (one: () => Promise<unknown>) => () => ms(async () => {
                let left = N;
                await Promise.all(Array.from({ length: inflight }, async () => { while (left-- > 0) await one(); }));
              });
              const t = await bestOf([
                ['c', async () => N / Number(sh('/bin/tur', [d.spec, String(N), String(inflight)]).trim().split(' ')[1]) * 1000],
                ['async', loop(() => devs.async.testUnitReady())],
                ['transport', loop(() => asyncT.execute({ cdb: tur, direction: 'none', timeoutMs: 10_000 }))],
                ['noreap', loop(() => devs.noreap.testUnitReady())],
                ['worker', loop(() => devs.worker.testUnitReady())],
                // The device API's batch call: `inflight` TURs handed over in one call, the next batch when all are back.
                ...(inflight > 1 ? [['batch', () => ms(async () => {
                  for (let left = N; left > 0; left -= inflight) await Promise.all(devs.async.runBatch(Array.from({ length: inflight }, () => ({ cdb: cdb.testUnitReady(), direction: 'none' as const, timeoutMs: 10_000 }))));
                })] as [string, () => Promise<number>]] : []),
              ]);
              const rate = (k: string) => N / (t[k]! / 1000);
              const goal = inflight === 1 ? 0.25 : 0.5;
              for (const [k, label, tail] of [['async', 'device API, sg-async', ''], ['transport', 'bare transport, sg-async', '.transport'], ['noreap', 'device API, sg-async, completions only through the event loop', '.noreap'], ['worker', 'device API, worker mode', '.worker'], ['batch', `device API, sg-async, runBatch of ${inflight}`, '.batch']] as const) {
                if (t[k] === undefined) continue;
                record('bench', { name: `TEST UNIT READY/s, ${inflight} in flight: ${label} / C`, device: role, mocopy: Math.round(rate(k)), c: Math.round(rate('c')), ratio: rate(k) / rate('c') });
                guestBench(`guest.tur${inflight}.vs_c${tail}${suffix(role)}`, rate(k), 'commands/s', rate('c'), goal, { device: role, inFlight: inflight });
              }
            }
            record('async', { check: 'bench-queue', role, value: { async: asyncT.info(), noreap: noReapT.info() } });
          } finally {
            await asyncT.close();
            await noReapT.close();
            await workerT.close();
          }
          assert.ok(existsSync('/bin/tur'));
        });
      }
    });
  }

  if (native && rig.scsiDebugSysfs && rig.targets.some((t) => t.role === 'scsi_debug')) {
    // The sg asynchronous interface (native/sg_async_linux.cc, the addon's sg-async mode) against a real kernel:
    // ordering, a full queue, timeouts, close and a signal storm with commands in flight, and last (it deletes the
    // device and scans it back) a device that disappears mid-queue. scsi_debug's `delay` (jiffies) keeps commands
    // in the target long enough; it is put back to 0 after each use.
    describe('async sg path (the sg driver\'s write()/read() interface, scsi_debug)', function () {
      this.timeout(120_000);
      const d = rig.targets.find((t) => t.role === 'scsi_debug')!;
      const sys = rig.scsiDebugSysfs!;
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      /** scsi_debug refuses a new delay (EBUSY) while it holds commands: retried. */
      const setDelay = async (jiffies: number) => {
        const t0 = Date.now();
        for (;;) {
          try {
            writeFileSync(join(sys, 'delay'), String(jiffies));
            return;
          } catch (e) {
            if (Date.now() - t0 > 20_000) throw e;
            await sleep(50);
          }
        }
      };
      const AT = 1000;
      const N = 64;
      let bs = 2048;
      const pattern = (lba: number) => {
        const b = Buffer.alloc(bs);
        for (let i = 0; i < bs; i += 4) b.writeUInt32BE((Math.imul(lba, 0x9e3779b1) + i) >>> 0, i);
        return b;
      };
      const read1 = (t: Transport, lba: number) => {
        const buf = Buffer.alloc(bs);
        return t.execute({ cdb: cdb.read10(lba, 1), direction: 'in', data: buf, timeoutMs: 10_000 }).then((r) => ({ r, buf, lba }));
      };
      const settleWithin = <T>(ps: Array<Promise<T>>, ms: number): Promise<Array<PromiseSettledResult<T>>> =>
        Promise.race([Promise.allSettled(ps), sleep(ms).then(() => { throw new Error(`not every one of ${ps.length} commands settled within ${ms} ms`); })]);
      const outcome = (r: PromiseSettledResult<unknown>) => (r.status === 'fulfilled' ? 'ok' : r.reason instanceof TransportError ? `TransportError:${r.reason.code}` : `other:${String(r.reason)}`);

      before(async () => {
        await setDelay(0);
        // The known pattern, written through the worker mode (read back by sg-async below).
        const dev = new ScsiDevice(d.spec, await openNative(d.spec, { async: false }));
        try {
          bs = (await dev.capacity()).blockSize;
          await dev.write(AT, Buffer.concat(Array.from({ length: N }, (_, i) => pattern(AT + i))));
        } finally {
          await dev.close();
        }
      });

      it('the sg node runs in sg-async mode; its block node, and the sg node opened with async: false, in the worker mode, saying why', async () => {
        const a = await openNative(d.spec);
        const w = await openNative(d.spec, { async: false });
        const b = d.block ? await openNative(d.block, { write: false }) : undefined;
        const ro = await openNative(d.spec, { write: false });
        try {
          assert.equal(ro.mode, 'worker');
          assert.match(ro.fallbackReason!, /read-only/);
          record('async', { check: 'mode', role: d.role, value: { [d.spec]: a.mode, [d.block ?? '-']: b?.mode, blockReason: b?.fallbackReason, offReason: w.fallbackReason } });
          assert.equal(a.mode, 'sg-async');
          assert.equal(a.fallbackReason, undefined);
          assert.equal(w.mode, 'worker');
          assert.match(w.fallbackReason!, /turned off/);
          if (b) {
            assert.equal(b.mode, 'worker');
            assert.match(b.fallbackReason!, /block node/);
          }
        } finally {
          await a.close();
          await w.close();
          await b?.close();
          await ro.close();
        }
      });

      it('mocopy -v says how a drive\'s commands run: queued in the sg driver (raw, read-write), the thread pool and why (info, read-only)', () => {
        const cli = (args: string[]) => spawnSync(process.execPath, ['dist/cli/main.js', ...args], { encoding: 'utf8', cwd: '/app' });
        const raw = cli(['-v', 'raw', d.spec, '00 00 00 00 00 00']);
        const info = cli(['-v', 'info', d.spec]);
        const quiet = cli(['info', d.spec]);
        record('async', { check: 'cli-verbose', role: d.role, value: { raw: raw.stderr.trim(), info: info.stderr.trim() } });
        assert.ok(raw.status === 0 || raw.status === 4, raw.stderr); // 4: a CHECK CONDITION the device may still have pending
        assert.match(raw.stderr, new RegExp(`^mocopy: ${d.spec}: commands queued in the sg driver`, 'm'));
        assert.equal(info.status, 0, info.stderr);
        assert.match(info.stderr, new RegExp(`^mocopy: ${d.spec}: commands run on the libuv thread pool: .*read-only`, 'm'));
        assert.match(info.stdout, /^queue\s+worker$/m);
        assert.doesNotMatch(quiet.stderr, /thread pool|sg driver/);
      });

      for (const syncReap of [true, false]) {
        it(`64 concurrent READ(10)s of distinct LBAs each return their own block (completions ${syncReap ? 'collected inside execute() or' : 'only'} through the event loop)`, async () => {
          const t = await openNative(d.spec, { syncReap });
          try {
            const order = Array.from({ length: N }, (_, i) => (i * 37) % N);
            const res = await Promise.all(order.map((i) => read1(t, AT + i)));
            for (const { r, buf, lba } of res) {
              assert.deepEqual([r.status, r.hostStatus, r.residual], [0, 0, 0], `LBA ${lba}`);
              assert.ok(buf.equals(pattern(lba)), `LBA ${lba}: wrong bytes`);
            }
            const info = t.info()!;
            record('async', { check: `ordering-${syncReap ? 'reap' : 'noreap'}`, role: d.role, value: info });
            assert.equal(info.inFlight, 0);
            assert.equal(info.waiting, 0);
            if (!syncReap) assert.equal(info.syncCompleted, 0);
          } finally {
            await t.close();
          }
        });
      }

      for (const jiffies of [0, 2]) {
        it(`executeBatch: 40 READ(10)s handed over in batches of 16 (scsi_debug delay ${jiffies}: ${jiffies ? 'answered through the event loop, the rest waiting in the FIFO' : 'answered inside the call, from the result slab'}) each return their own block; a malformed one is refused alone`, async () => {
          await setDelay(jiffies);
          const t = await openNative(d.spec);
          try {
            const lbas = Array.from({ length: 40 }, (_, i) => AT + ((i * 7) % N));
            const bufs = lbas.map(() => Buffer.alloc(bs));
            const cmds: ScsiCommand[] = lbas.map((lba, i) => ({ cdb: cdb.read10(lba, 1), direction: 'in', data: bufs[i]!, timeoutMs: 10_000 }));
            cmds[9] = { cdb: cdb.read10(AT, 1), direction: 'in', timeoutMs: 10_000 } as ScsiCommand; // no buffer
            const before = t.info()!;
            const res = await Promise.allSettled(t.executeBatch(cmds));
            const info = t.info()!;
            record('async', { check: `batch-delay${jiffies}`, role: d.role, value: info });
            res.forEach((r, i) => {
              if (i === 9) {
                assert.ok(r.status === 'rejected' && r.reason instanceof TypeError, 'the malformed command is refused');
                return;
              }
              assert.equal(r.status, 'fulfilled', `command ${i}: ${r.status === 'rejected' ? String(r.reason) : ''}`);
              assert.equal((r as PromiseFulfilledResult<ScsiResult>).value.status, 0);
              assert.ok(bufs[i]!.equals(pattern(lbas[i]!)), `command ${i} (LBA ${lbas[i]}): wrong bytes`);
            });
            assert.equal(info.submitted! - before.submitted!, 39);
            assert.equal(info.inFlight, 0);
            if (jiffies === 0) assert.ok(info.syncCompleted! - before.syncCompleted! > 0, 'answers collected inside the call');
            else assert.ok(info.polledCompleted! - before.polledCompleted! > 0, 'answers through the event loop');
          } finally {
            await t.close();
            await setDelay(0);
          }
        });
      }

      it('a full queue: 40 commands at once on one handle (the kernel holds 16 per descriptor); the rest wait in the FIFO, all complete correctly, and the listener (-v) is told at close', async () => {
        await setDelay(2);
        const notes: string[] = [];
        const t = await openNative(d.spec, { onQueueNote: (m) => notes.push(m) });
        let closed = false;
        try {
          const res = await Promise.all(Array.from({ length: 40 }, (_, i) => read1(t, AT + ((i * 5) % N))));
          for (const { r, buf, lba } of res) {
            assert.equal(r.status, 0);
            assert.ok(buf.equals(pattern(lba)), `LBA ${lba}: wrong bytes`);
          }
          const info = t.info()!;
          record('async', { check: 'full-queue', role: d.role, value: info });
          assert.ok(info.queueFull! > 0, 'the kernel refused a command for a full queue (EDOM) at least once');
          assert.ok(info.maxWaiting! > 0, 'commands waited in the FIFO');
          assert.ok(info.maxInFlight! <= 16);
          assert.equal(info.submitted, 40);
          await t.close();
          closed = true;
          record('async', { check: 'full-queue-note', role: d.role, value: notes });
          assert.match(notes.at(-1) ?? '', new RegExp(`refused ${info.queueFull} of 40 commands for a full queue \\(16 per descriptor\\)`));
        } finally {
          if (!closed) await t.close();
          await setDelay(0);
        }
      });

      it('a command past its short timeout (200 ms): the kernel aborts it, and sg-async and the worker mode report the same typed error (TransportError E_TIMEOUT, DID_TIME_OUT)', async () => {
        const got: Record<string, { cls: string; code?: string; timedOut?: boolean; hostStatus?: number; ms: number }> = {};
        for (const mode of ['sg-async', 'worker'] as const) {
          const t = await openNative(d.spec, mode === 'worker' ? { async: false } : {});
          assert.equal(t.mode, mode);
          const dev = new ScsiDevice(d.spec, t, { timeouts: { quick: 200 } });
          await dev.testUnitReady().catch(() => undefined);
          writeFileSync(join(sys, 'every_nth'), '1');
          writeFileSync(join(sys, 'opts'), '4'); // SDEBUG_OPT_TIMEOUT: ignore every nth command
          const t0 = Date.now();
          let err: unknown;
          try {
            await dev.testUnitReady();
          } catch (e) {
            err = e;
          } finally {
            writeFileSync(join(sys, 'opts'), '0');
            writeFileSync(join(sys, 'every_nth'), '0');
          }
          const te = err as TransportError | undefined;
          got[mode] = { cls: err === undefined ? 'none' : (err as Error).constructor.name, code: te?.code, timedOut: te?.timedOut, hostStatus: te?.hostStatus, ms: Date.now() - t0 };
          for (let i = 0; i < 20; i++) { try { await dev.testUnitReady(); break; } catch { await sleep(250); } }
          await t.close();
        }
        record('async', { check: 'timeout', role: d.role, value: got });
        assert.equal(got['sg-async']!.cls, 'TransportError');
        assert.equal(got['sg-async']!.code, 'E_TIMEOUT');
        assert.equal(got['sg-async']!.timedOut, true);
        assert.equal(got['sg-async']!.hostStatus, 0x03);
        assert.deepEqual([got.worker!.cls, got.worker!.code, got.worker!.timedOut, got.worker!.hostStatus], [got['sg-async']!.cls, got['sg-async']!.code, got['sg-async']!.timedOut, got['sg-async']!.hostStatus]);
      });

      it('close() with 8 commands in flight: each settles (resolved, or rejected with a TransportError ECANCELED), nothing hangs, the handle is freed and the next open works', async () => {
        const b = loadNativeBinding();
        const before = b.openHandles();
        await setDelay(25);
        let results: Array<PromiseSettledResult<{ buf: Buffer; lba: number }>>;
        const t = await openNative(d.spec);
        try {
          const ps = Array.from({ length: 8 }, (_, i) => read1(t, AT + i));
          assert.equal(t.info()!.inFlight, 8);
          await t.close();
          results = await settleWithin(ps, 10_000);
        } finally {
          await setDelay(0);
        }
        record('async', { check: 'close-in-flight', role: d.role, value: results.map(outcome) });
        for (const r of results) {
          if (r.status === 'fulfilled') assert.ok(r.value.buf.equals(pattern(r.value.lba)));
          else assert.ok(r.reason instanceof TransportError && r.reason.code === 'ECANCELED', outcome(r));
        }
        assert.equal(b.openHandles(), before, 'the handle is gone');
        const again = await openNative(d.spec);
        try {
          const { r, buf } = await read1(again, AT + 3);
          assert.equal(r.status, 0);
          assert.ok(buf.equals(pattern(AT + 3)));
        } finally {
          await again.close();
        }
      });

      it('a signal storm (SIGUSR2 every 1 ms, a no-op handler) during 2000 commands, 8 in flight: every one completes with the right bytes', async () => {
        const t = await openNative(d.spec);
        let signals = 0;
        const onSignal = () => { signals++; };
        process.on('SIGUSR2', onSignal);
        const storm = setInterval(() => process.kill(process.pid, 'SIGUSR2'), 1);
        let bad = 0;
        try {
          let next = 0;
          await Promise.all(Array.from({ length: 8 }, async () => {
            while (next < 2000) {
              const lba = AT + (next++ % N);
              const { r, buf } = await read1(t, lba);
              if (r.status !== 0 || !buf.equals(pattern(lba))) bad++;
            }
          }));
        } finally {
          clearInterval(storm);
          await sleep(20);
          process.off('SIGUSR2', onSignal);
          record('async', { check: 'signal-storm', role: d.role, value: { signals, bad, queue: t.info() } });
          await t.close();
        }
        assert.equal(bad, 0);
        assert.ok(signals > 0, 'signals were delivered');
      });

      // Last: it deletes the device (and scans it back).
      it('the device disappears mid-queue (scsi_debug device deleted with 24 commands outstanding): every one rejects with a TransportError naming the errno, in bounded time; then a rescan brings the device back', async function () {
        this.timeout(180_000);
        const hctl = basename(realpathSync(`/sys/class/scsi_generic/${basename(d.spec)}/device`));
        const host = hctl.split(':')[0]!;
        await setDelay(250); // about 1 s (HZ 250): the commands are still in the target when it goes
        const t = await openNative(d.spec);
        let results: Array<PromiseSettledResult<unknown>> = [];
        let settledMs = -1;
        let after: string | undefined;
        let deleteExit: number | null = null;
        try {
          const ps = Array.from({ length: 24 }, (_, i) => read1(t, AT + i));
          const t0 = Date.now();
          const del = spawn('sh', ['-c', `echo 1 > /sys/class/scsi_device/${hctl}/device/delete`], { stdio: 'ignore' });
          const exited = new Promise<number | null>((r) => del.on('exit', (c) => r(c)));
          results = await settleWithin(ps, 30_000);
          settledMs = Date.now() - t0;
          after = await t.execute({ cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: 5000 }).then(() => 'ok', (e) => (e instanceof TransportError ? `TransportError:${e.code}` : String(e)));
          deleteExit = await Promise.race([exited, sleep(60_000).then(() => null)]);
        } finally {
          const info = t.info();
          await t.close();
          await setDelay(0).catch(() => undefined);
          record('async', { check: 'device-gone', role: d.role, value: { hctl, outcomes: results.map(outcome), settledMs, after, info, deleteExit } });
        }
        // The device back, for whatever runs after the suite.
        writeFileSync(`/sys/class/scsi_host/host${host}/scan`, '- - -');
        let back: string | undefined;
        for (let i = 0; i < 100 && !back; i++) {
          back = listDevices().find((x) => x.vendor === 'Linux' && x.product.startsWith('scsi_debug'))?.sg;
          if (!back) await sleep(200);
        }
        record('async', { check: 'device-rescanned', role: d.role, value: { sg: back, was: d.spec } });
        for (const r of results) {
          assert.equal(r.status, 'rejected', outcome(r));
          const e = (r as PromiseRejectedResult).reason;
          assert.ok(e instanceof TransportError, outcome(r));
          assert.ok(['ENODEV', 'ENXIO', 'EIO', 'ESHUTDOWN'].includes(e.code), outcome(r));
        }
        assert.match(after ?? '', /^TransportError:(ENODEV|ENXIO|EIO|ESHUTDOWN)$/);
        assert.ok(back, 'scsi_debug came back after the rescan');
        const dev = await openDevice(back!);
        try {
          await dev.testUnitReady().catch(() => dev.testUnitReady());
        } finally {
          await dev.close();
        }
      });
    });
  }
});
