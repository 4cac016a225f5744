/**
 * `npm run iscsi:conformance`: serves an emulated MO drive over iSCSI and runs libiscsi's conformance suite
 * against it (`iscsi-test-cu --dataloss -t ALL`, Debian package libiscsi-bin). Prints every skipped test with
 * its reason, checks that each reason is explained in docs/iscsi.md, and ends with `N passed, N failed, N skipped`.
 * Exit 1 on any failure or unexplained skip.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createMoImage, serveEmulatedDrives } from '../lib/index.js';

const ROOT = resolve(import.meta.dirname, '..');
const IQN = 'iqn.2026-11.org.mocopy:conformance';

export interface SuiteResult {
  name: string;
  outcome: 'passed' | 'failed' | 'skipped';
  detail: string;
}

/** CUnit's output: "Suite: S", "  Test: T ...<log>passed|FAILED"; text after the verdict on that line is the next suite's setup. */
export function parseCunit(text: string): SuiteResult[] {
  const out: SuiteResult[] = [];
  let suite = '';
  let cur: { name: string; log: string[] } | undefined;
  for (const line of text.split('\n')) {
    const s = /^Suite: (.+)$/.exec(line);
    if (s) { suite = s[1]!.trim(); continue; }
    const t = /^ {2}Test: (.+?) \.\.\.(.*)$/.exec(line);
    let rest = line;
    if (t) { cur = { name: `${suite}.${t[1]}`, log: [] }; rest = t[2]!; }
    if (!cur) continue;
    const verdict = /^(.*?)(?<!\[)(passed|FAILED)(?!\])/.exec(rest);
    if (verdict) {
      cur.log.push(verdict[1]!);
      const log = cur.log.join('\n');
      const skip = /\[SKIPPED\] ([^\n]*)/.exec(log);
      const fail = /\[FAILED\] ([^\n]*)/.exec(log);
      if (verdict[2] === 'FAILED') out.push({ name: cur.name, outcome: 'failed', detail: fail?.[1] ?? log.trim().split('\n').pop() ?? '' });
      else out.push({ name: cur.name, outcome: skip ? 'skipped' : 'passed', detail: skip?.[1]?.trim() ?? '' });
      cur = undefined;
    } else {
      cur.log.push(rest);
    }
  }
  return out;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', rej);
    p.on('close', (code) => { clearTimeout(timer); res({ code, out }); });
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-conformance-'));
  const image = join(dir, 'mo.img');
  createMoImage(image, { mediumId: Buffer.from('MOCOPY-CONFORMANCE'), capacityBytes: 64 << 20, blockSize: 2048 });
  const served = await serveEmulatedDrives({ mo: [image], iqn: IQN, host: '127.0.0.1', port: 0 });
  const url = `iscsi://${served.portal}/${IQN}/0`;
  const t0 = Date.now();
  let results: SuiteResult[];
  let raw: string;
  try {
    const r = await run('iscsi-test-cu', ['--dataloss', '-t', 'ALL', url], 15 * 60_000);
    raw = r.out;
    results = parseCunit(r.out);
  } finally {
    await served.close();
  }
  const log = join(dir, 'iscsi-test-cu.log');
  writeFileSync(log, raw);
  const docs = readFileSync(join(ROOT, 'docs', 'iscsi.md'), 'utf8');
  const passed = results.filter((r) => r.outcome === 'passed').length;
  const failed = results.filter((r) => r.outcome === 'failed');
  const skipped = results.filter((r) => r.outcome === 'skipped');
  const reasons = new Map<string, string[]>();
  for (const s of skipped) reasons.set(s.detail, [...(reasons.get(s.detail) ?? []), s.name]);
  const unexplained: string[] = [];
  console.log(`iscsi-test-cu against ${url}: ${results.length} tests in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log('skipped, by the reason the suite gives:');
  for (const [reason, tests] of [...reasons].sort((a, b) => b[1].length - a[1].length)) {
    const explained = docs.includes(reason);
    if (!explained) unexplained.push(reason);
    console.log(`  ${String(tests.length).padStart(3)}  ${reason}${explained ? '' : '   <-- not explained in docs/iscsi.md'}`);
    console.log(`       ${tests.join(', ')}`);
  }
  for (const f of failed) console.log(`FAILED ${f.name}: ${f.detail}`);
  if (results.length === 0) console.log(raw.slice(-3000));
  console.log(`full log: ${log}`);
  console.log(`${passed} passed, ${failed.length} failed, ${skipped.length} skipped`);
  if (failed.length > 0 || unexplained.length > 0 || results.length === 0) process.exitCode = 1;
  else rmSync(dir, { recursive: true, force: true });
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) await main();
