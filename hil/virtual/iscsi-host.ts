/**
 * Host side of the virtual rig's iSCSI stage, run after QEMU exited and run.sh stopped the target with SIGTERM:
 * checks that `mocopy emu serve --iscsi` served QEMU's initiator and stopped cleanly, then opens the licensed
 * copies the guest made through the iSCSI LUN from the MO image itself (`mocopy open emu:IMAGE`) and compares
 * them with the publisher's files; replays the guest's differential sequence against the emulator in-process
 * (differential.ts replayInProcess), so the summary can tell the emulator's own answers from the path's. Prints mocha
 * json-stream lines and @@MOCOPY-DATA records, as the guest does, for summarize.ts.
 * usage: iscsi-host STATE_JSON   (written by run.sh; see IscsiStageState)
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { replayInProcess, sequence, shownText, type DiffSummary } from './differential.js';

export interface IscsiStageState {
  /** The CLI entry the checks run with this node (dist/cli/main.js). */
  cli: string;
  image: string;
  stationKey: string;
  /** The target's stdout (--json: ready line, event lines, stopped line) and stderr. */
  targetLog: string;
  targetErr: string;
  /** The target's exit status after SIGTERM, or why there is none (it needed SIGKILL; it was gone before SIGTERM). */
  targetExit: number | string;
  /** The initiator name QEMU was given (-iscsi initiator-name=). */
  initiator: string;
  /** QEMU's console log; QEMU's own messages (`qemu-system-x86_64: …`, e.g. its initiator's warnings) land there too. */
  consoleLog: string;
  copies: Array<{ contentId: string; scheme: 'a' | 'b'; file: string }>;
  work: string;
  /** Milliseconds from starting the target to its ready line, and from SIGTERM to its exit. */
  readyMs?: number;
  stopMs?: number;
  /** The fault discs (run.sh 5d): images before the boot, at the power cut, and now; the power-cut target's logs. */
  faults?: {
    copy: { contentId: string; scheme: 'a' | 'b'; file: string };
    before: string[];
    mediumError: { image: string; beforeImage: string; fault: string; reference: string };
    powerCut: { image: string; beforeImage: string; atCutImage: string; fault: string; logs: string[]; errs: string[]; cutExit: number | null; reservedMs: number | null; secondExit: number | string };
  };
}

/** Label, license region and directory of an MO image (the bytes before the data area), and the directory copies alone. */
const MO_HEADER = 4096;
const DATA_OFFSET = 327680;
const DIRECTORY_OFFSET = 2048 + 64 * 2048;
function metadata(image: string): Buffer {
  return readFileSync(image).subarray(MO_HEADER, MO_HEADER + DATA_OFFSET);
}

/** Events a healthy session with one well-behaved initiator does not produce. */
const NOTABLE = new Set(['internal-error', 'reject', 'cmdsn-dropped', 'data-out-unknown-task', 'command-refused', 'task-management']);
const STAGE = 'iSCSI stage on the host';

function emit(line: unknown): void {
  process.stdout.write(JSON.stringify(line) + '\n');
}
function data(kind: string, body: Record<string, unknown>): void {
  process.stdout.write(`@@MOCOPY-DATA ${JSON.stringify({ kind, ...body })}\n`);
}
function check(title: string, fn: () => void): void {
  const t0 = Date.now();
  const fullTitle = `${STAGE} ${title}`;
  try {
    fn();
    emit(['pass', { title, fullTitle, duration: Date.now() - t0 }]);
  } catch (e) {
    emit(['fail', { title, fullTitle, duration: Date.now() - t0, err: (e as Error).message }]);
  }
}

function readEvents(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  const out: Array<Record<string, unknown>> = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try { out.push(JSON.parse(line) as Record<string, unknown>); } catch { out.push({ event: 'unparsed', line }); }
  }
  return out;
}

/** `mocopy verify emu:IMAGE`: the content IDs of the licensed copies on the disc, sorted. */
function onDisc(state: IscsiStageState, image: string): string[] {
  const r = spawnSync(process.execPath, [state.cli, 'verify', `emu:${image}`, '--station-key', state.stationKey, '--json'], { encoding: 'utf8' });
  try {
    return ((JSON.parse(r.stdout) as { results?: Array<{ contentId: string }> }).results ?? []).map((x) => x.contentId).sort();
  } catch {
    throw new Error(`mocopy verify emu:${image} exited ${r.status}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  }
}

/** The fault discs after the guest's copies onto them (the guest checks what its station reported). */
function faultChecks(state: IscsiStageState): void {
  const f = state.faults;
  if (!f) return;
  const before = [...f.before].sort();
  check(`host: the medium-error disc (${f.mediumError.fault}) after the guest's failed copy: label, license region and directory byte for byte as before the boot; verify lists ${before.join(', ')} only`, () => {
    const was = metadata(f.mediumError.beforeImage);
    const now = metadata(f.mediumError.image);
    const ids = onDisc(state, f.mediumError.image);
    data('fault-disc', { fault: f.mediumError.fault, metadataUnchanged: was.equals(now), onDisc: ids });
    if (!was.equals(now)) {
      let at = 0;
      while (at < was.length && was[at] === now[at]) at++;
      throw new Error(`the disc's metadata changed at byte ${at} (${at < 2048 ? 'label' : at < DIRECTORY_OFFSET ? 'license region' : 'directory'})`);
    }
    if (JSON.stringify(ids) !== JSON.stringify(before)) throw new Error(`verify lists ${ids.join(', ') || 'nothing'}`);
  });
  const pc = f.powerCut;
  const events = pc.logs.flatMap((l) => readEvents(l));
  const cut = events.filter((e) => e.event === 'connection-closed' && /power cut/.test(String(e.reason)));
  check(`host: the power cut (${pc.fault}) dropped QEMU's connection, and the image as the cut left it holds the previous directory: directory copies byte for byte as before the copy, verify lists ${before.join(', ')} only (crash consistent)`, () => {
    if (!cut.length) throw new Error(`the power-cut target logged no connection dropped by a power cut (events: ${[...new Set(events.map((e) => e.event))].join(', ')})`);
    if (!existsSync(pc.atCutImage)) throw new Error('no image was kept at the cut (run.sh did not see it happen)');
    const was = metadata(pc.beforeImage);
    const at = metadata(pc.atCutImage);
    const ids = onDisc(state, pc.atCutImage);
    data('power-cut', {
      drops: cut.length, reservedMs: pc.reservedMs, cutExit: pc.cutExit, onDiscAtCut: ids,
      directoryUnchanged: was.subarray(DIRECTORY_OFFSET).equals(at.subarray(DIRECTORY_OFFSET)),
      licenseRegionUnchanged: was.subarray(2048, DIRECTORY_OFFSET).equals(at.subarray(2048, DIRECTORY_OFFSET)),
      labelUnchanged: was.subarray(0, 2048).equals(at.subarray(0, 2048)),
    });
    if (!was.subarray(DIRECTORY_OFFSET).equals(at.subarray(DIRECTORY_OFFSET))) throw new Error('the directory copies changed before the cut');
    if (JSON.stringify(ids) !== JSON.stringify(before)) throw new Error(`verify lists ${ids.join(', ') || 'nothing'} on the image at the cut`);
  });
  check(`host: the same image, served again without the fault, took the second run: verify lists ${[...before, f.copy.contentId].sort().join(', ')}, open gives ${f.copy.contentId}'s publisher bytes, and its target stopped cleanly`, () => {
    const ids = onDisc(state, pc.image);
    const want = [...before, f.copy.contentId].sort();
    if (JSON.stringify(ids) !== JSON.stringify(want)) throw new Error(`verify lists ${ids.join(', ') || 'nothing'}`);
    const out = join(state.work, `opened-pcut-${f.copy.contentId}.bin`);
    rmSync(out, { force: true });
    const r = spawnSync(process.execPath, [state.cli, 'open', `emu:${pc.image}`, '--content', f.copy.contentId, '--station-key', state.stationKey, '--out', out, '--json'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mocopy open exited ${r.status}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
    const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    if (sha(out) !== sha(f.copy.file)) throw new Error('the opened bytes are not the publisher\'s');
    if (pc.secondExit !== 0) throw new Error(`the target serving the image again exited ${JSON.stringify(pc.secondExit)}`);
  });
}

/** The guest's @@MOCOPY-DATA records of `kind` prefix from its console log. */
function guestData(consoleLog: string, prefix: string): Array<Record<string, unknown>> {
  if (!existsSync(consoleLog)) return [];
  const out: Array<Record<string, unknown>> = [];
  for (const raw of readFileSync(consoleLog, 'utf8').split(/\r?\n/)) {
    const i = raw.indexOf('@@MOCOPY-DATA ');
    if (i < 0) continue;
    try {
      const d = JSON.parse(raw.slice(i + 14)) as Record<string, unknown>;
      if (String(d.kind).startsWith(prefix)) out.push(d);
    } catch { /* torn line */ }
  }
  return out;
}

/**
 * The differential sequence again, one command at a time, to the emulator in-process: for every command the guest
 * counted under a row or as unexplained, what the emulator itself answers (without QEMU and the iSCSI target).
 */
async function differentialReplay(state: IscsiStageState): Promise<void> {
  const recs = guestData(state.consoleLog, 'differential');
  const s = recs.find((d) => d.kind === 'differential') as unknown as DiffSummary | undefined;
  if (!s) return;
  const sets = recs.filter((d) => d.kind === 'differential-row' || d.kind === 'differential-unexplained') as Array<{ kind: string; row?: string; signature?: string; indices: number[]; sd?: string[]; mo?: string[] }>;
  const want = new Set(sets.flatMap((x) => x.indices));
  let faithful = false;
  let detail = '';
  const t0 = Date.now();
  try {
    const r = await replayInProcess({ seed: s.seed, count: s.commands, blocks: s.geometry.blocks, blockSize: s.geometry.blockSize, writes: s.writes, image: join(state.work, 'differential-local.mo') }, want);
    const cmds = sequence(s.seed, s.commands, s.geometry.blocks, s.geometry.blockSize);
    // The in-process answers to a set's commands (the commonest four), and how many are scsi_debug's or the served MO's
    // (status, sense, residual and the compared view of the data alike).
    const tally = (x: (typeof sets)[number]) => {
      const m = new Map<string, number>();
      let asSd = 0, asMo = 0;
      x.indices.forEach((n, i) => {
        const a = r.answers.get(n);
        if (!a) return;
        const k = shownText(cmds[n]!, a);
        m.set(k, (m.get(k) ?? 0) + 1);
        if (k === x.sd?.[i]) asSd++;
        if (k === x.mo?.[i]) asMo++;
      });
      return { answers: Object.fromEntries([...m].sort((p, q) => q[1] - p[1]).slice(0, 4)), asSd, asMo, of: x.indices.length };
    };
    faithful = r.modelSha256 === s.modelSha256;
    detail = `replayed ${s.commands} commands in ${r.ms} ms; media hash ${r.modelSha256.slice(0, 16)} (guest ${s.modelSha256.slice(0, 16)})`;
    data('differential-local', {
      ms: r.ms, faithful, modelSha256: r.modelSha256,
      rows: Object.fromEntries(sets.filter((x) => x.row).map((x) => [x.row!, tally(x)])),
      groups: Object.fromEntries(sets.filter((x) => x.signature).map((x) => [x.signature!, tally(x)])),
    });
  } catch (e) {
    detail = (e as Error).stack ?? String(e);
  }
  const title = 'host: the differential sequence replayed against the emulator in-process ends with the media the guest\'s run ended with (so its answers stand for the emulator\'s own)';
  emit([faithful ? 'pass' : 'fail', { title, fullTitle: `${STAGE} ${title}`, duration: Date.now() - t0, ...(faithful ? {} : { err: detail }) }]);
}

async function main(): Promise<void> {
  const state = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as IscsiStageState;
  const events = readEvents(state.targetLog);
  const stderr = existsSync(state.targetErr) ? readFileSync(state.targetErr, 'utf8').trim() : '';
  const notable = events.filter((e) => NOTABLE.has(String(e.event)));
  const closes = events.filter((e) => e.event === 'connection-closed').map((e) => String(e.reason));
  const qemu = existsSync(state.consoleLog) ? readFileSync(state.consoleLog, 'utf8').split(/\r?\n/).filter((l) => /^qemu-system[\w-]*: /.test(l)) : [];
  const counts: Record<string, number> = {};
  for (const e of events) counts[String(e.event)] = (counts[String(e.event)] ?? 0) + 1;
  data('iscsi-target', { exit: state.targetExit, readyMs: state.readyMs, stopMs: state.stopMs, events: counts, notable, closes, stderr, qemu });

  check(`target: served QEMU's initiator (${state.initiator}) and stopped cleanly on SIGTERM`, () => {
    const problems: string[] = [];
    if (!events.some((e) => e.event === 'ready')) problems.push('no ready line');
    if (!events.some((e) => e.event === 'login' && e.complete === true && e.status === 0 && e.initiator === state.initiator)) problems.push(`no completed login from ${state.initiator}`);
    if (state.targetExit !== 0) problems.push(`exit ${state.targetExit}`);
    if (events.at(-1)?.event !== 'stopped') problems.push('no "stopped" line last');
    const internal = notable.filter((e) => e.event === 'internal-error');
    if (internal.length) problems.push(`internal errors: ${JSON.stringify(internal)}`);
    if (problems.length) throw new Error(problems.join('; ') + (stderr ? `; stderr: ${stderr.slice(0, 400)}` : ''));
  });

  for (const c of state.copies) {
    check(`host: open emu:IMAGE --content ${c.contentId} (scheme ${c.scheme.toUpperCase()}, written by the guest through iSCSI) gives the publisher's bytes`, () => {
      const out = join(state.work, `opened-${c.contentId}.bin`);
      rmSync(out, { force: true });
      const r = spawnSync(process.execPath, [state.cli, 'open', `emu:${state.image}`, '--content', c.contentId, '--station-key', state.stationKey, '--out', out, '--json'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mocopy open exited ${r.status}: ${(r.stderr || r.stdout).trim().slice(0, 400)}`);
      const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
      const got = sha(out);
      const want = sha(c.file);
      data('host-open', { contentId: c.contentId, scheme: c.scheme, sha256: got, result: JSON.parse(r.stdout) as unknown });
      if (got !== want) throw new Error(`opened ${readFileSync(out).length} bytes with sha256 ${got}; the publisher's file has ${want}`);
    });
  }
  faultChecks(state);
  await differentialReplay(state);
  emit(['end', {}]);
}

await main();
