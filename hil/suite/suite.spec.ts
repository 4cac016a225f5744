/**
 * The hardware-in-the-loop suite. Natively (QEMU guest, lab rig) it checks mocopy's SCSI layer against a
 * real kernel's sg driver and targets nobody here wrote, and against sg3_utils on the same nodes; on the
 * host the same checks run against mocopy's emulator, and `observed` records feed the cross-check table.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
import { ScsiError, TransportError } from '../../lib/scsi/scsi-errors.js';
import { parseSense } from '../../lib/scsi/sense.js';
import type { ScsiCommand, Transport } from '../../lib/scsi/transport.js';
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
        const { loadNativeBinding } = await import('../../lib/scsi/native-binding.js');
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
          const r = await b.execute(h, cdb.read10(0, blocks), 1, Buffer.alloc(blocks * cap.blockSize), 10000);
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
      it(`iscsi-pcut: mocopy copy onto the disc served with ${f.powerCut.fault} loses its connection mid-copy and does not complete; once the host serves the image again, a second run completes the copy, which opens to the publisher's bytes`, async () => {
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
        assert.ok(back, 'the drive answered again within 90 s (the host serves the image again after the cut)');
        // The second run, as the hint says ("run the same command again"): it completes and opens to the original.
        const r = await copyThenOpen(spec, 'iscsi-pcut', f.contentId, f.scheme, f.file);
        assert.equal(r.alreadyPresent, false);
        assert.deepEqual(await onDisc(spec), [...f.before, f.contentId].sort());
      });
    });
  }

  if (native && rig.bench) {
    describe('benchmarks (ratios; absolute numbers under TCG mean little)', () => {
      it('sequential read and write: device API vs sg_dd, same device, 64 KiB per command', async () => {
        const d = rig.targets.find((t) => t.role === 'scsi_debug') ?? rig.targets[0]!;
        const dev = await openDevice(d.spec);
        const cap = await dev.capacity();
        const bytes = Math.min(16 << 20, cap.bytes);
        const blocks = bytes / cap.blockSize;
        const per = 65536 / cap.blockSize;
        let t0 = Date.now();
        for await (const _ of dev.readStream(0, blocks, { chunkBytes: 65536, inFlight: 1 })) void _;
        const oursRead = Date.now() - t0;
        t0 = Date.now();
        sh('sg_dd', [`if=${d.spec}`, 'of=/dev/null', `bs=${cap.blockSize}`, `bpt=${per}`, `count=${blocks}`]);
        const sgRead = Date.now() - t0;
        const src = Buffer.alloc(bytes, 0x5a);
        t0 = Date.now();
        await dev.writeStream(0, (async function* () { yield src; })(), { chunkBytes: 65536, inFlight: 1 });
        const oursWrite = Date.now() - t0;
        const file = join(rig.work, 'w.bin');
        writeFileSync(file, src);
        t0 = Date.now();
        sh('sg_dd', [`if=${file}`, `of=${d.spec}`, `bs=${cap.blockSize}`, `bpt=${per}`, `count=${blocks}`]);
        const sgWrite = Date.now() - t0;
        record('bench', { name: 'sequential read, device API / sg_dd (time ratio; <1 = faster)', device: d.role, mocopyMs: oursRead, sgddMs: sgRead, ratio: oursRead / sgRead });
        record('bench', { name: 'sequential write, device API / sg_dd (time ratio; <1 = faster)', device: d.role, mocopyMs: oursWrite, sgddMs: sgWrite, ratio: oursWrite / sgWrite });
        await dev.close();
      });
      it('TEST UNIT READY rate: addon vs a C program issuing SG_IO in a loop', async () => {
        const d = rig.targets.find((t) => t.role === 'scsi_debug') ?? rig.targets[0]!;
        const dev = await openDevice(d.spec);
        const N = 4000;
        for (const inflight of [1, 8]) {
          let left = N;
          const t0 = Date.now();
          await Promise.all(Array.from({ length: inflight }, async () => { while (left-- > 0) await dev.testUnitReady(); }));
          const ours = N / ((Date.now() - t0) / 1000);
          const c = Number(sh('/bin/tur', [d.spec, String(N), String(inflight)]).trim().split(' ')[1]);
          record('bench', { name: `TEST UNIT READY/s, ${inflight} in flight: addon / C`, device: d.role, mocopy: Math.round(ours), c: Math.round(c), ratio: ours / c });
        }
        await dev.close();
        assert.ok(existsSync('/bin/tur'));
      });
    });
  }
});
