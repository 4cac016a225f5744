/**
 * The lab runner for real drives: `mocopy hil check DEVICE...` (preflight) and
 * `mocopy hil run --master DEV --target DEV --yes` (the HIL suite and the copy protocol on real drives,
 * with per-command-class timings, a JSON report and JUnit XML for lab CI). See hil/README.md.
 */
import { writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ExitCode, RefusedError, UsageError } from '../../lib/errors.js';
import { TargetDisc } from '../../lib/target/disc.js';
import * as cdb from '../../lib/scsi/cdb.js';
import { ScsiDevice } from '../../lib/scsi/device.js';
import { probeMediumId } from '../../lib/scsi/medium-id.js';
import { isRealDeviceSpec, openDevice, openTransport } from '../../lib/drives/open.js';
import { peripheralTypeName } from '../../lib/scsi/parse.js';
import { isNoMedium } from '../../lib/scsi/scsi-errors.js';
import type { ScsiCommand, Transport } from '../../lib/scsi/transport.js';
import type { Rig } from '../suite/rig.js';

export interface Preflight {
  device: string;
  vendor: string;
  product: string;
  revision: string;
  type: string;
  removable: boolean;
  mediumPresent: boolean;
  writeProtected?: boolean;
  blockSize?: number;
  capacityBytes?: number;
  maxTransferBytes: number;
  mediumIdMethod?: string;
  quirk?: unknown;
  notes: string[];
}

export async function preflight(spec: string): Promise<Preflight> {
  const dev = await openDevice(spec, { write: false });
  try {
    const inq = await dev.inquiry();
    const p: Preflight = {
      device: spec, vendor: inq.vendor, product: inq.product, revision: inq.revision, type: peripheralTypeName(inq.peripheralType),
      removable: inq.removable, mediumPresent: true, maxTransferBytes: dev.transport.limits.maxTransferBytes, notes: [],
    };
    try {
      await dev.testUnitReady();
    } catch (e) {
      if (!isNoMedium(e)) throw e;
      p.mediumPresent = false;
      p.notes.push('no medium: insert a disc to check capacity, write protect and the medium ID');
      return p;
    }
    const cap = await dev.capacity();
    p.blockSize = cap.blockSize;
    p.capacityBytes = cap.bytes;
    p.writeProtected = await dev.isWriteProtected().catch(() => undefined);
    const probe = await probeMediumId(dev, inq);
    const ok = probe.attempts.filter((a) => a.ok).map((a) => a.method);
    p.notes.push(...probe.attempts.map((a) => `${a.ok ? 'ok  ' : 'fail'} ${a.method}: ${a.answer}`));
    if (probe.quirk) {
      p.mediumIdMethod = ok[0];
      p.quirk = probe.quirk;
    }
    return p;
  } finally {
    await dev.close();
  }
}

/** Times commands by class on one device (read-only classes always; WRITE only with `write`). */
async function commandTimings(spec: string, write: boolean): Promise<Record<string, { count: number; meanUs: number; p95Us: number }>> {
  const inner = await openTransport(spec, { write });
  const samples = new Map<string, number[]>();
  const timed: Transport = {
    path: inner.path, limits: inner.limits, close: () => inner.close(),
    async execute(c: ScsiCommand) {
      const r = await inner.execute(c);
      const k = cdb.opcodeName(c.cdb);
      (samples.get(k) ?? samples.set(k, []).get(k)!).push(r.durationUs);
      return r;
    },
  };
  const dev = new ScsiDevice(spec, timed);
  try {
    for (let i = 0; i < 50; i++) await dev.testUnitReady();
    for (let i = 0; i < 20; i++) await dev.inquiry().then(() => dev.unitSerial());
    const cap = await dev.capacity();
    const per = Math.max(1, Math.floor(65536 / cap.blockSize));
    for (let i = 0; i < 50; i++) await dev.read((i * per) % Math.max(1, cap.blockCount - per), per);
    if (write) {
      // The last blocks of the disc, put back as they were.
      const at = cap.blockCount - per;
      const saved = await dev.read(at, per);
      for (let i = 0; i < 10; i++) await dev.write(at, saved);
      await dev.sync();
    }
  } finally {
    await dev.close();
  }
  const out: Record<string, { count: number; meanUs: number; p95Us: number }> = {};
  for (const [k, v] of samples) {
    v.sort((a, b) => a - b);
    out[k] = { count: v.length, meanUs: Math.round(v.reduce((a, b) => a + b, 0) / v.length), p95Us: v[Math.min(v.length - 1, Math.floor(v.length * 0.95))]! };
  }
  return out;
}

interface TestResult { title: string; fullTitle: string; state: 'passed' | 'failed'; durationMs: number; error?: string }

async function runSuite(rig: Rig): Promise<TestResult[]> {
  process.env.MOCOPY_HIL_RIG = JSON.stringify(rig);
  const here = fileURLToPath(import.meta.url);
  const suite = join(here, '..', '..', 'suite', here.endsWith('.ts') ? 'suite.spec.ts' : 'suite.spec.js');
  // Loaded here, not at the top: every mocopy command imports this file, and only `hil run` needs mocha.
  const { default: Mocha } = await import('mocha');
  const mocha = new Mocha({ timeout: 120_000, reporter: 'dot' });
  mocha.addFile(suite);
  await mocha.loadFilesAsync();
  const results: TestResult[] = [];
  await new Promise<void>((resolve) => {
    const runner = mocha.run(() => resolve());
    runner.on('pass', (t) => results.push({ title: t.title, fullTitle: t.fullTitle(), state: 'passed', durationMs: t.duration ?? 0 }));
    runner.on('fail', (t, err) => results.push({ title: t.title, fullTitle: t.fullTitle(), state: 'failed', durationMs: t.duration ?? 0, error: String(err?.message ?? err) }));
  });
  return results;
}

function junit(results: TestResult[], name: string): string {
  const esc = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
  const failures = results.filter((r) => r.state === 'failed').length;
  const cases = results.map((r) => `  <testcase classname="${esc(name)}" name="${esc(r.fullTitle)}" time="${(r.durationMs / 1000).toFixed(3)}">${r.state === 'failed' ? `<failure message="${esc(r.error ?? '')}"/>` : ''}</testcase>`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="${esc(name)}" tests="${results.length}" failures="${failures}">\n${cases.join('\n')}\n</testsuite>\n`;
}

export function registerHil(program: Command): void {
  const hil = program.command('hil').description('hardware-in-the-loop lab runner for real drives (hil/README.md)');
  hil.command('check')
    .argument('<devices...>', 'drives to check: /dev/sgN, \\\\.\\CdRom0, emu:IMAGE ...')
    .option('--json', 'JSON output')
    .description('preflight: type, removable, medium, write protect, capacity, block size, max transfer, a medium-ID method with a quirk entry')
    .action(async (devices: string[], o: { json?: boolean }) => {
      const results: Preflight[] = [];
      for (const d of devices) results.push(await preflight(d));
      if (o.json) return void process.stdout.write(JSON.stringify({ devices: results }, null, 2) + '\n');
      for (const p of results) {
        process.stdout.write(`${p.device}: ${p.vendor} ${p.product} ${p.revision} — ${p.type}${p.removable ? ', removable' : ''}\n`);
        process.stdout.write(`  medium ${p.mediumPresent ? 'present' : 'absent'}${p.blockSize ? `, ${p.capacityBytes} bytes in ${p.blockSize}-byte blocks` : ''}${p.writeProtected ? ', write-protected' : ''}; max transfer ${p.maxTransferBytes} bytes\n`);
        for (const n of p.notes) process.stdout.write(`  ${n}\n`);
        if (p.quirk) process.stdout.write(`  medium ID by ${p.mediumIdMethod}; quirk entry:\n${JSON.stringify(p.quirk, null, 2).replace(/^/gm, '    ')}\n`);
      }
    });
  hil.command('run')
    .requiredOption('--master <device>', 'the CD-ROM drive holding a mocopy master')
    .requiredOption('--target <device>', 'the MO drive with a disc the suite may write to')
    .option('--yes', 'allow the destructive steps on the target (writes, a licensed copy)')
    .option('--force', "write even to a target disc that holds data that is not mocopy's")
    .option('--center-db <ledger>', 'ledger registering the master\'s contents (enables the copy protocol part)')
    .option('--station-key <file>', 'station key for the copy protocol part')
    .option('--report <file>', 'write a JSON report')
    .option('--junit <file>', 'write JUnit XML')
    .description('run the HIL suite and the copy protocol against real drives')
    .action(async (o: { master: string; target: string; yes?: boolean; force?: boolean; centerDb?: string; stationKey?: string; report?: string; junit?: string }) => {
      if (!o.yes) throw new UsageError('hil run writes to the target disc: confirm with --yes');
      const t = await openDevice(o.target);
      try {
        await t.testUnitReady();
        const disc = await TargetDisc.open(t);
        if (disc.label.kind === 'foreign' && !o.force) {
          throw new RefusedError('E_FOREIGN_DISC', `${o.target}: ${disc.label.reason}; refusing to write over it`, { hint: 'use a blank disc, or --force if its data may be destroyed' });
        }
      } finally {
        await t.close();
      }
      const work = mkdtempSync(join(tmpdir(), 'mocopy-hil-'));
      const started = new Date().toISOString();
      try {
        const masterCheck = await preflight(o.master);
        const targetCheck = await preflight(o.target);
        const timings = { master: await commandTimings(o.master, false), target: await commandTimings(o.target, true) };
        const { listDevices } = await import('../../lib/scsi/list-devices.js');
        const blockOf = (spec: string) => listDevices().find((d) => d.sg === spec)?.block;
        const rig: Rig = {
          mode: isRealDeviceSpec(o.master) ? 'native' : 'emulator',
          cd: { spec: o.master, role: `${masterCheck.vendor} ${masterCheck.product}`.trim(), ...(blockOf(o.master) ? { block: blockOf(o.master)! } : {}) },
          targets: [{ spec: o.target, role: `${targetCheck.vendor} ${targetCheck.product}`.trim() }],
          ...(o.centerDb && o.stationKey ? { ledger: o.centerDb, stationKey: o.stationKey, programs: {} } : {}),
          work,
        };
        const results = await runSuite(rig);
        const failed = results.filter((r) => r.state === 'failed').length;
        const report = { started, finished: new Date().toISOString(), master: masterCheck, target: targetCheck, timings, results, passed: results.length - failed, failed };
        if (o.report) writeFileSync(o.report, JSON.stringify(report, null, 2) + '\n');
        if (o.junit) writeFileSync(o.junit, junit(results, 'mocopy-hil'));
        process.stdout.write(`\nhil run: ${results.length - failed} passed, ${failed} failed\n`);
        if (failed) process.exitCode = ExitCode.REFUSED;
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
}
