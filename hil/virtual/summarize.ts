/**
 * Host side of the virtual rig: reads the guest's console log and the host's emulator run, prints the
 * summary (checks run/passed/failed per group, benchmark ratios), the iSCSI stage one check a line (the
 * guest's checks on the iSCSI MO drive and iscsi-host.ts's checks on the host) and the emulator cross-check
 * table, and exits non-zero on any failure, a missing result or a guest that did not finish.
 * usage: summarize GUEST_CONSOLE_LOG EMULATOR_LOG CROSSCHECK_MD_OUT [ISCSI_HOST_LOG]
 * With MOCOPY_HIL_GUEST_BENCH=FILE (run.sh: $MOCOPY_HIL_WORK/guest-bench.json) the guest's benchmark figures are
 * also written there as a JSON array of { name, value, unit, baseline, ratio, goal } (and what they were measured on).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { DELIBERATE, type DiffSummary, type Example } from './differential.js';

interface TestLine { title: string; fullTitle: string; err?: string; duration?: number }
interface Parsed { tests: Array<{ ok: boolean } & TestLine>; data: Array<Record<string, unknown>>; done: number | undefined; end?: Record<string, number> }

export function parse(text: string): Parsed {
  const out: Parsed = { tests: [], data: [], done: undefined };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^.*?(\["(?:pass|fail|end|start)"|@@MOCOPY)/, '$1');
    if (line.startsWith('@@MOCOPY-DONE')) out.done = Number(line.split(' ')[1]);
    else if (line.startsWith('@@MOCOPY-DATA ')) { try { out.data.push(JSON.parse(line.slice(14))); } catch { /* torn line */ } }
    else if (line.startsWith('["')) {
      try {
        const [ev, body] = JSON.parse(line) as [string, Record<string, unknown>];
        if (ev === 'pass' || ev === 'fail') {
          out.tests.push({ ok: ev === 'pass', title: String(body.title), fullTitle: String(body.fullTitle), ...(body.err ? { err: String(body.err) } : {}), ...(typeof body.duration === 'number' ? { duration: body.duration } : {}) });
        }
        if (ev === 'end') out.end = body as Record<string, number>;
      } catch { /* torn line */ }
    }
  }
  return out;
}

/** Which emulator drive stands for which real device in the cross-check. */
const PAIRS: Array<[string, string]> = [['qemu-cd', 'emulator-cd'], ['scsi_debug', 'emulator-mo-2048'], ['qemu-hd', 'emulator-mo-512']];
const CHECKS = ['inquiry-shape', 'read-past-end', 'bad-opcode', 'bad-field', 'write-to-cd', 'read-media-serial-number'];
/** Deliberate, documented differences (docs/hil-crosscheck.md). */
const EXPLAINED: Record<string, string> = {
  'inquiry-shape/qemu-hd': 'QEMU has no optical-memory device type: its scsi-hd (PDT 0, fixed, 512-byte blocks) stands in for an MO drive; the emulator models a real MO drive (PDT 7, removable).',
  'read-media-serial-number/scsi_debug': 'scsi_debug implements no READ MEDIA SERIAL NUMBER; the emulator models the MO medium-ID zone an MO drive serves.',
  'read-media-serial-number/qemu-hd': 'QEMU implements no READ MEDIA SERIAL NUMBER; the emulator models the MO medium-ID zone.',
};

/** The guest's iSCSI-stage checks (suite.spec.ts: describe 'iSCSI MO drive …'), listed one a line. */
const isIscsi = (t: TestLine) => /^HIL suite \(\w+\) iSCSI MO drive /.test(t.fullTitle);
/** The differential run's check (differential.ts). */
const isDiff = (t: TestLine) => t.fullTitle.startsWith('differential ');
const secs = (ms: number | undefined) => (ms === undefined ? '   -  ' : `${(ms / 1000).toFixed(1).padStart(5)} s`);

function groupOf(fullTitle: string): string {
  if (/^HIL suite \(\w+\) async sg path /.test(fullTitle)) return 'async sg path';
  const m = /^HIL suite \(\w+\) (.+?) (\S+:|scheme|a transfer|the CD|TEST UNIT|sequential|a command)/.exec(fullTitle);
  return m ? m[1]! : fullTitle.split(' ').slice(3, 5).join(' ');
}

type DiffExample = Example;

/** One guest benchmark figure (suite.spec.ts 'guest-bench' records), as written to guest-bench.json. */
interface GuestFigure { name: string; value: number; unit: string; baseline: number; ratio: number; goal: number; inFlight?: number; device?: string; mode?: string }
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

/** The differential run's section: its check line, the figures, the deliberate rows, every unexplained group. */
function differential(guest: Parsed, host: Parsed, say: (s?: string) => void): { failed: boolean; md: string } {
  const t = guest.tests.find(isDiff);
  const s = guest.data.find((d) => d.kind === 'differential') as unknown as (DiffSummary & { totalMs?: number }) | undefined;
  const setup = guest.data.find((d) => d.kind === 'differential-setup') as Record<string, unknown> | undefined;
  const groups = guest.data.filter((d) => d.kind === 'differential-unexplained') as unknown as Array<{ signature: string; count: number; examples: DiffExample[] }>;
  const rows = guest.data.filter((d) => d.kind === 'differential-row') as unknown as Array<{ row: string; count: number; examples: DiffExample[] }>;
  type Tally = { answers: Record<string, number>; asSd: number; asMo: number; of: number };
  const local = host.data.find((d) => d.kind === 'differential-local') as { faithful?: boolean; ms?: number; rows?: Record<string, Tally>; groups?: Record<string, Tally> } | undefined;
  const inProcess = (t: Tally | undefined) => (t ? `${Object.entries(t.answers).map(([k, v]) => `${k} ×${v}`).join('; ')} (as scsi_debug: ${t.asSd}, as the served MO: ${t.asMo}, of ${t.of})` : '-');
  say('\n=== differential run: the guest kernel\'s scsi_debug vs the served MO (QEMU\'s iSCSI initiator), the same seeded CDBs through SG_IO');
  let failed = false;
  if (!t) { say('  FAIL: the differential run did not report (see the console log)'); failed = true; }
  else {
    say(`  ${t.ok ? 'ok  ' : 'FAIL'} ${secs(t.duration)}  ${t.title}`);
    if (!t.ok) { say(`                 ${t.err}`); failed = true; }
  }
  if (setup) say(`  scsi_debug reloaded (${String(setup.scsiDebug)}) as ${String(setup.sd ?? '-')}; served MO ${String(setup.mo ?? '-')}`);
  if (!s) return { failed: true, md: '' };
  say(`  commands compared ${s.commands}: agreed ${s.agreed}, deliberate ${s.deliberate}, unexplained ${s.unexplained}`);
  say(`  media (${s.geometry.blocks} blocks of ${s.geometry.blockSize} bytes) equal on both sides at the end: ${s.mediaEqual ? 'yes' : `NO (${s.mismatched.join(', ')})`}; rewrites after a write one side refused: ${s.resyncs}`);
  say(`  time: ${(s.ms / 1000).toFixed(1)} s for the ${s.commands} commands (${(s.ms / s.commands).toFixed(2)} ms each; ${s.alone} of them alone, in ${(s.aloneMs / 1000).toFixed(1)} s, the others up to ${s.window} in flight)${s.totalMs ? `, ${(s.totalMs / 1000).toFixed(1)} s with the set-up and the final media check` : ''}; one TEST UNIT READY alone: scsi_debug ${s.turMs.sd} ms, served MO ${s.turMs.mo} ms`);
  if (local) say(`  the in-process replay on the host (no QEMU, no iSCSI) took ${((local.ms ?? 0) / 1000).toFixed(1)} s; its answers are shown as "in-process" below`);
  say('  deliberate, by row (docs/hil-crosscheck.md, "Differential run"):');
  for (const r of DELIBERATE) {
    const t = local?.rows?.[r.id];
    say(`    ${String(s.byRow[r.id] ?? 0).padStart(5)}  ${r.id.padEnd(22)} ${r.command}${t ? ` [in-process as scsi_debug ${t.asSd}, as the served MO ${t.asMo}]` : ''}`);
  }
  if (groups.length) say('  unexplained, by kind (nobody has explained these: see the examples):');
  for (const g of groups) {
    say(`    ${String(g.count).padStart(5)}  ${g.signature}`);
    for (const e of g.examples.slice(0, 2)) say(`           #${e.n} ${e.cdb}: scsi_debug ${e.sd} | served MO ${e.mo}`);
    if (local?.groups?.[g.signature]) say(`           in-process: ${inProcess(local.groups[g.signature])}`);
  }
  const esc = (x: string) => x.replace(/\|/g, '\\|');
  const md = [
    `\n## Differential run (seed ${s.seed}, ${s.commands} CDBs)\n`,
    `Compared ${s.commands}: agreed ${s.agreed}, deliberate ${s.deliberate}, unexplained ${s.unexplained}; media equal at the end: ${s.mediaEqual ? 'yes' : 'no'}.\n`,
    '| row | count | example CDB | scsi_debug | served MO | in-process emulator |', '|---|---|---|---|---|---|',
    ...DELIBERATE.map((r) => {
      const e = rows.find((x) => x.row === r.id)?.examples[0];
      return `| ${r.id} | ${s.byRow[r.id] ?? 0} | ${e ? `\`${e.cdb}\`` : '-'} | ${e ? esc(e.sd) : '-'} | ${e ? esc(e.mo) : '-'} | ${esc(inProcess(local?.rows?.[r.id]))} |`;
    }),
    ...(groups.length ? ['\n### Unexplained\n', '| count | kind | example CDB | scsi_debug | served MO | in-process emulator |', '|---|---|---|---|---|---|',
      ...groups.map((g) => { const e = g.examples[0]!; return `| ${g.count} | ${esc(g.signature)} | \`${e.cdb}\` | ${esc(e.sd)} | ${esc(e.mo)} | ${esc(inProcess(local?.groups?.[g.signature]))} |`; })] : []),
  ].join('\n') + '\n';
  return { failed, md };
}

function main(): number {
  const [guestLog, emuLog, mdOut, iscsiLog] = process.argv.slice(2);
  const guest = parse(readFileSync(guestLog!, 'utf8'));
  const emu = parse(readFileSync(emuLog!, 'utf8'));
  // The iSCSI stage ran when run.sh passes its host log (absent file: the host side never got to run).
  const host: Parsed | undefined = iscsiLog === undefined ? undefined : existsSync(iscsiLog) ? parse(readFileSync(iscsiLog, 'utf8')) : { tests: [], data: [], done: undefined };
  let failed = false;
  const say = (s = '') => process.stdout.write(s + '\n');
  say('\n=== virtual HIL rig: real Linux kernel (QEMU), SG_IO through the mocopy addon');
  if (guest.done === undefined) { say('FAIL: the guest did not finish (hang, crash or timeout): see the console log'); failed = true; }
  const boot = guest.data.find((d) => d.kind === 'boot');
  if (boot) say(`  guest kernel up ${boot.uptime ?? '?'} s when its SCSI devices were there (${String(boot.sg).trim()})`);
  const groups = new Map<string, { pass: number; fail: number }>();
  for (const t of guest.tests.filter((x) => !isIscsi(x) && !isDiff(x))) {
    const g = groupOf(t.fullTitle);
    const e = groups.get(g) ?? { pass: 0, fail: 0 };
    if (t.ok) e.pass++; else e.fail++;
    groups.set(g, e);
  }
  for (const [g, e] of groups) say(`  ${g.padEnd(40)} ${e.pass} passed, ${e.fail} failed`);
  for (const t of guest.tests.filter((x) => !x.ok && !isIscsi(x) && !isDiff(x))) { say(`  FAILED: ${t.fullTitle}\n          ${t.err}`); failed = true; }
  if (guest.tests.length === 0) { say('FAIL: no check ran in the guest'); failed = true; }
  say(`  guest: ${guest.tests.filter((t) => t.ok).length} passed, ${guest.tests.filter((t) => !t.ok).length} failed`);
  const benches = guest.data.filter((d) => d.kind === 'bench');
  if (benches.length) {
    say('\n  benchmarks in the guest (TCG):');
    for (const b of benches) say(`    ${String(b.name).padEnd(64)} ${JSON.stringify(Object.fromEntries(Object.entries(b).filter(([k]) => !['kind', 'name'].includes(k)).map(([k, v]) => [k, typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(3)) : v])))}`);
  }
  const figures = guest.data.filter((d) => d.kind === 'guest-bench').map(({ kind: _k, ...rest }) => rest as unknown as GuestFigure);
  if (figures.length) {
    say('\n  guest figures (guest-bench.json): our rate / the baseline\'s (sg_dd, the C SG_IO loop), beside the goal');
    for (const f of [...figures].sort((a, b) => a.name.localeCompare(b.name))) {
      const below = !(f.ratio >= f.goal);
      say(`    ${f.name.padEnd(44)} ${fmt(f.value).padStart(9)} vs ${fmt(f.baseline).padStart(9)} ${f.unit.padEnd(10)} ratio ${f.ratio.toFixed(3).padStart(6)}  goal ${f.goal.toFixed(2)}${below ? '  below goal' : ''}${f.inFlight !== undefined ? `  (${f.inFlight} in flight)` : ''}`);
    }
  }
  if (process.env.MOCOPY_HIL_GUEST_BENCH && figures.length) writeFileSync(process.env.MOCOPY_HIL_GUEST_BENCH, JSON.stringify(figures, null, 1) + '\n');
  if (host) {
    say('\n=== iSCSI stage: `mocopy emu serve --iscsi` on the host -> QEMU\'s initiator (libiscsi) -> scsi-generic -> the guest\'s /dev/sgN');
    const target = host.data.find((d) => d.kind === 'iscsi-target') as { readyMs?: number; stopMs?: number; exit?: unknown; events?: Record<string, number>; notable?: unknown[]; closes?: string[]; stderr?: string; qemu?: string[] } | undefined;
    const gi = guest.tests.filter(isIscsi);
    for (const t of [...gi, ...host.tests]) {
      say(`  ${t.ok ? 'ok  ' : 'FAIL'} ${secs(t.duration)}  ${t.title}`);
      if (!t.ok) { say(`                 ${t.err}`); failed = true; }
    }
    if (gi.length === 0) { say('  FAIL: no iSCSI check ran in the guest'); failed = true; }
    if (host.tests.length === 0) { say('  FAIL: the host side of the iSCSI stage did not run (see iscsi-host.log)'); failed = true; }
    if (target) {
      say(`  target events: ${Object.entries(target.events ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; connections closed: ${(target.closes ?? []).join(' | ') || 'none'}`);
      for (const e of target.notable ?? []) say(`  target: ${JSON.stringify(e)}`);
      if (target.stderr) say(`  target stderr: ${target.stderr.split('\n').slice(0, 5).join(' / ')}`);
      for (const l of (target.qemu ?? []).slice(0, 10)) say(`  QEMU: ${l}`);
    }
    // The fault checks: what the station in the guest reported, and what the host saw of the power cut.
    const obs = (check: string) => (guest.data.find((d) => d.kind === 'observed' && d.check === check) as { value?: Record<string, unknown> } | undefined)?.value;
    const fault = obs('iscsi-fault-copy') as { exit?: number; error?: { code: string; message: string }; reference?: { exit: number } } | undefined;
    if (fault) say(`  medium error: the guest's mocopy copy exited ${fault.exit} (${fault.error?.code}: ${fault.error?.message ?? '-'}); in-process it exits ${fault.reference?.exit}`);
    const first = obs('iscsi-pcut-first') as { exit?: number; last?: { error?: { code: string; message: string } }; ms?: number; waitedMs?: number } | undefined;
    const cut = host.data.find((d) => d.kind === 'power-cut') as { drops?: number; reservedMs?: number; licenseRegionUnchanged?: boolean; onDiscAtCut?: string[] } | undefined;
    if (first || cut) {
      say(`  power cut: QEMU's connection dropped ${cut?.drops ?? '?'} time(s) (its initiator logs in again at once); the host served the image again ${cut?.reservedMs ?? '?'} ms after the cut; at the cut the disc held ${(cut?.onDiscAtCut ?? []).join(', ') || '-'} (license region ${cut?.licenseRegionUnchanged ? 'unchanged' : 'with the new record: written FUA before the data, not in the directory'})`);
      if (first) say(`             the guest's first run exited ${first.exit} after ${((first.ms ?? 0) / 1000).toFixed(1)} s (${first.last?.error?.code ?? '-'}: ${first.last?.error?.message ?? JSON.stringify(first.last)})`);
    }
    const kernel = guest.data.find((d) => d.kind === 'iscsi-kernel') as { hctl: string; lines: string[] } | undefined;
    if (kernel) {
      say(`  guest kernel on ${kernel.hctl}: ${kernel.lines.length} line(s)`);
      for (const l of kernel.lines.slice(0, 20)) say(`    ${l.trim()}`);
    }
    const sum = (ts: TestLine[]) => ts.reduce((a, t) => a + (t.duration ?? 0), 0);
    say(`  time: target ready ${target?.readyMs ?? '-'} ms; guest checks ${secs(sum(gi)).trim()}; target stop ${target?.stopMs ?? '-'} ms; host checks ${secs(sum(host.tests)).trim()}`);
  }

  const diffMd = host ? differential(guest, host, say) : undefined;
  if (diffMd?.failed) failed = true;

  say(`\n=== emulator cross-check (same suite on the host): ${emu.tests.filter((t) => t.ok).length} passed, ${emu.tests.filter((t) => !t.ok).length} failed`);
  for (const t of emu.tests.filter((x) => !x.ok)) { say(`  FAILED: ${t.fullTitle}\n          ${t.err}`); failed = true; }
  const val = (p: Parsed, check: string, role: string) => {
    const d = p.data.find((x) => x.kind === 'observed' && x.check === check && x.role === role);
    return d === undefined ? undefined : JSON.stringify(d.value);
  };
  const rows: string[] = ['| check | real device | real answer | emulator | emulator answer | verdict |', '|---|---|---|---|---|---|'];
  let unexplained = 0;
  for (const check of CHECKS) {
    for (const [real, em] of PAIRS) {
      const a = val(guest, check, real);
      const b = val(emu, check, em);
      if (a === undefined && b === undefined) continue;
      const key = `${check}/${real}`;
      const verdict = a === b ? 'match' : EXPLAINED[key] ? `deliberate: ${EXPLAINED[key]}` : 'DIFFERS (emulator bug?)';
      if (a !== b && !EXPLAINED[key]) unexplained++;
      rows.push(`| ${check} | ${real} | ${a ?? '-'} | ${em} | ${b ?? '-'} | ${verdict} |`);
    }
  }
  const table = rows.join('\n');
  say(table);
  if (mdOut) writeFileSync(mdOut, `# Emulator cross-check (generated by npm run hil:virtual)\n\n${table}\n${diffMd?.md ?? ''}`);
  if (unexplained) { say(`FAIL: ${unexplained} unexplained difference(s) between the real targets and the emulator`); failed = true; }
  const hostTests = host?.tests ?? [];
  say(failed ? '\nvirtual HIL rig: FAILED' : `\nvirtual HIL rig: OK (${guest.tests.length} checks in the guest, ${hostTests.length ? `${hostTests.length} iSCSI-stage checks on the host, ` : ''}${emu.tests.length} on the emulator)`);
  // The plain closing line CI reads.
  const everything = [...guest.tests, ...hostTests, ...emu.tests];
  const passed = everything.filter((t) => t.ok).length;
  const fails = everything.filter((t) => !t.ok).length + (failed && everything.every((t) => t.ok) ? 1 : 0);
  say(`hil: ${passed} passed, ${fails} failed`);
  return failed ? 1 : 0;
}

process.exitCode = main();
