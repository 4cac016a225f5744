/**
 * Host side of the virtual rig's iSCSI stage, run after QEMU exited and run.sh stopped the target with SIGTERM:
 * checks that `mocopy emu serve --iscsi` served QEMU's initiator and stopped cleanly, then opens the licensed
 * copies the guest made through the iSCSI LUN from the MO image itself (`mocopy open emu:IMAGE`) and compares
 * them with the publisher's files. Prints mocha json-stream lines and @@MOCOPY-DATA records, as the guest
 * does, for summarize.ts.
 * usage: iscsi-host STATE_JSON   (written by run.sh; see IscsiStageState)
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

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

function main(): void {
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
  emit(['end', {}]);
}

main();
