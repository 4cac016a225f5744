/**
 * The copying station [patent: manager application MA at the end user's site]: copies one program
 * from the master (CD-ROM drive) to the target (MO drive) under a license the center signed for
 * the pair (content ID, medium ID) — scheme A (FIG. 2-5, claims 1-4) or scheme B (FIG. 7-9).
 *
 * The copy is a sequence of named phases; what differs between the schemes lives in scheme-a.ts
 * (S1–S7) and scheme-b.ts (S11–S17), and everything done to the target in target-copy.ts.
 * Everything that can refuse is checked before anything is written or billed.
 */
import { randomUUID } from 'node:crypto';
import { RefusedError } from '../errors.js';
import { licenseAnswers, type License, type Scheme, type StationKey } from '../domain/index.js';
import type { CenterClient } from '../center/types.js';
import type { CatalogEntry } from '../formats/catalog.js';
import { findContent, openMaster, type OpenedMaster } from '../master/read.js';
import { BufferPool } from '../scsi/buffer-pool.js';
import type { BlockDevice, StreamOptions } from '../scsi/device-api.js';
import type { EventSink, StationEvent } from './events.js';
import { schemeA } from './scheme-a.js';
import { schemeB } from './scheme-b.js';
import type { ProgramKeys, SchemeSteps } from './scheme-steps.js';
import { TargetCopy, type Placement } from './target-copy.js';
import { fanOut } from './fan-out.js';

export interface CopyOptions {
  master: BlockDevice;
  target: BlockDevice;
  contentId: string;
  scheme: Scheme;
  center: CenterClient;
  stationKey: StationKey;
  onEvent?: EventSink;
  /**
   * Commands in flight per drive (default 4: the copy moves 1 MiB per command, so 4 MiB are queued per drive —
   * enough to keep a drive busy — and each more in flight is another MiB of the station's memory).
   */
  inFlight?: number;
  /** Aborting (Ctrl-C at the station) stops the transfer; the slot is restored and the disc unlocked as on any failure. */
  signal?: AbortSignal;
}

export interface CopyResult {
  contentId: string;
  scheme: Scheme;
  mediumId: string;
  mediumIdMethod: string;
  licenseId: string;
  slot: number;
  offset: number;
  plainSize: number;
  encryptedSize: number;
  alreadyPresent: boolean;
  seconds: number;
}

export const SCHEME_STEPS: Record<Scheme, SchemeSteps> = { a: schemeA, b: schemeB };

export interface MultiCopyOptions extends Omit<CopyOptions, 'target' | 'onEvent'> {
  targets: BlockDevice[];
  /** Events of target `index` (the shared master stream's own steps go to every target). */
  onEvent?: (index: number, e: StationEvent) => void;
  /** Chunks a fast target may run ahead of the slowest (default 4). */
  aheadChunks?: number;
}

/** What became of one target: its copy, or the error that stopped it (the other targets went on). */
export type TargetOutcome = { spec: string; ok: true; result: CopyResult } | { spec: string; ok: false; error: unknown };

/** A target whose license record is written and checked: ready for the program. */
interface Prepared {
  index: number;
  target: TargetCopy;
  at: Placement;
  keys: ProgramKeys;
  licenseId: string;
  mediumId: string;
  mediumIdMethod: string;
}

/**
 * Copies one program from one master to one target (FIG. 4 / FIG. 9). Throws the target's error.
 */
export async function copyLicensed(o: CopyOptions): Promise<CopyResult> {
  const { target, onEvent, ...rest } = o;
  const [outcome] = await copyToTargets({ ...rest, targets: [target], ...(onEvent ? { onEvent: (_i: number, e: StationEvent) => onEvent(e) } : {}) });
  if (!outcome!.ok) throw outcome!.error;
  return outcome!.result;
}

/**
 * Copies one program from one master to several targets: each disc gets its own license (one request per disc,
 * bound to its medium ID), the master is read once and its stream fans out to every target (scheme B re-encrypts it
 * per target under that disc's Ku). A target that is refused or fails drops out with its own error; the others
 * finish. Each target follows exactly the single-target phases, with the same crash-consistent commit.
 */
/** A pool for buffers read from the master and written as they are to the target, when both move the same bytes per command. */
async function transferPool(master: BlockDevice, target: BlockDevice, io: StreamOptions): Promise<BufferPool | undefined> {
  const [read, write] = await Promise.all([master.streamChunkBytes(io), target.streamChunkBytes(io)]);
  return read === write ? new BufferPool(read, 2 * (io.inFlight ?? 4) + 2) : undefined;
}

export async function copyToTargets(o: MultiCopyOptions): Promise<TargetOutcome[]> {
  const t0 = Date.now();
  const flow = SCHEME_STEPS[o.scheme];
  const io: StreamOptions = { inFlight: o.inFlight ?? 4, ...(o.signal ? { signal: o.signal } : {}) };
  const emitTo = (i: number): EventSink => (e) => o.onEvent?.(i, e);
  const result = (r: Omit<CopyResult, 'contentId' | 'scheme' | 'seconds'>): CopyResult => ({ contentId: o.contentId, scheme: o.scheme, ...r, seconds: (Date.now() - t0) / 1000 });
  const outcomes: TargetOutcome[] = o.targets.map((d) => ({ spec: d.spec, ok: false, error: new Error('not started') }));
  const fail = (i: number, error: unknown) => { outcomes[i] = { spec: o.targets[i]!.spec, ok: false, error }; };

  // Phase: check the master — it holds the content, and allows this scheme. Nothing can go on without it.
  const { master, entry } = await checkMaster(o.master, o.contentId, flow);

  // Per target, side by side: check it, read its medium ID, obtain its license, write and check the record.
  const opened: TargetCopy[] = [];
  const prepared: Prepared[] = [];
  try {
    await Promise.all(o.targets.map(async (device, i) => {
      try {
        const target = await TargetCopy.check(device);
        opened.push(target);
        const ready = await prepareTarget(target, i);
        if ('done' in ready) outcomes[i] = { spec: device.spec, ok: true, result: ready.done };
        else prepared.push(ready);
      } catch (e) {
        fail(i, e);
      }
    }));
    prepared.sort((x, y) => x.index - y.index);
    if (prepared.length === 0) return outcomes;

    // Phase [S7]/[S16-S17]: the program streams from the master, read once, to every prepared target.
    for (const p of prepared) emitTo(p.index)({ step: flow.step.write, message: `${flow.writing} to the target at byte ${p.at.offset}`, bytes: 0, total: p.at.encryptedSize });
    const broadcast: EventSink = (e) => { for (const p of prepared) emitTo(p.index)(e); };
    // One target fed the master's own buffers: they go back to the master's reader once written, so a copy of any
    // size reuses a few megabytes. Several targets share each buffer, so there each is left to the collector.
    const pool = prepared.length === 1 && flow.passesMasterBuffers ? await transferPool(o.master, prepared[0]!.target.device, io) : undefined;
    if (pool) io.pool = pool;
    const shared = flow.masterStream(master, entry, prepared[0]!.keys, io, broadcast);
    const branches = prepared.length === 1 ? [shared] : fanOut(shared, prepared.length, o.aheadChunks ?? 4);
    await Promise.all(prepared.map(async (p, k) => {
      const emit = emitTo(p.index);
      try {
        const source = flow.targetStream(branches[k]!, entry, p.keys);
        const hash = await p.target.writeProgram(p.at, source, (n) => emit({ step: flow.step.write, message: 'progress', bytes: n, total: p.at.encryptedSize }), io);
        // Phase: read back, verify, and commit in the disc directory.
        await p.target.verifyAndCommit(p.at, { contentId: o.contentId, name: entry.name, scheme: o.scheme, plainSize: entry.size }, hash, io);
        emit({ step: flow.step.write, message: `verified and committed in the disc directory (generation ${p.target.disc.directory.generation})` });
        outcomes[p.index] = { spec: p.target.spec, ok: true, result: result({ mediumId: p.mediumId, mediumIdMethod: p.mediumIdMethod, licenseId: p.licenseId, slot: p.at.slot, offset: p.at.offset, plainSize: entry.size, encryptedSize: p.at.encryptedSize, alreadyPresent: false }) };
      } catch (e) {
        await p.target.abandon(e);
        fail(p.index, e);
      }
    }));
    return outcomes;
  } finally {
    await Promise.all(opened.map((t) => t.release()));
  }

  async function prepareTarget(target: TargetCopy, i: number): Promise<Prepared | { done: CopyResult }> {
    const emit = emitTo(i);
    // Phase [S1]/[S11]: the medium ID from the drive's non-rewritable zone; the disc is locked in and guarded.
    const mid = await target.readMediumId();
    const mediumId = mid.id.toString('hex');
    emit({ step: flow.step.readIds, message: `read ${flow.names.mediumId} = ${mediumId} from the target's medium-ID zone (${mid.method})${mid.standIn ? ' [LAB STAND-IN]' : ''} and ${flow.names.contentId} = ${o.contentId} from the master` });

    const existing = target.existingCopy(o.contentId, o.scheme);
    if (existing) {
      let licenseId = '';
      if (!(await target.hasLicenseRecord(existing))) {
        // Committed, but its license record is gone (a write that failed after the commit, a damaged slot): the
        // center answers the same license again without a new bill, and the record is written back.
        const license = await obtainLicense(o.center, o.scheme, o.contentId, mediumId);
        await flow.installLicense(target, { slot: existing.slot, offset: existing.offset, encryptedSize: existing.encryptedSize }, license, o.stationKey, emit);
        target.keepLicenseRecord();
        licenseId = license.licenseId;
      }
      emit({ step: flow.step.write, message: `content ${o.contentId} is already on this disc (slot ${existing.slot})${licenseId ? '; its license record was written again' : '; nothing to do'}` });
      return { done: result({ mediumId, mediumIdMethod: mid.method, licenseId, slot: existing.slot, offset: existing.offset, plainSize: existing.plainSize, encryptedSize: existing.encryptedSize, alreadyPresent: true }) };
    }
    const at = target.place(flow.encryptedSize(entry));

    // Phase [S1 send]/[S2] or [S11 send]/[S12-S14]: the license center signs the pair and bills.
    const license = await obtainLicense(o.center, o.scheme, o.contentId, mediumId);
    flow.licenseIssued(license, emit);
    try {
      o.signal?.throwIfAborted();
      // Phase [S3-S6]/[S15]: the license record is written to the disc, read back and checked.
      const keys = await flow.installLicense(target, at, license, o.stationKey, emit);
      return { index: i, target, at, keys, licenseId: license.licenseId, mediumId, mediumIdMethod: mid.method };
    } catch (e) {
      await target.abandon(e);
      throw e;
    }
  }
}

/** The master holds the content and allows the scheme. */
export async function checkMaster(device: BlockDevice, contentId: string, flow: SchemeSteps): Promise<{ master: OpenedMaster; entry: CatalogEntry }> {
  const master = await openMaster(device);
  const entry = findContent(master, contentId);
  if (!entry.schemes.includes(flow.scheme)) {
    throw new RefusedError('E_SCHEME_NOT_ALLOWED', `content ${contentId} may not be copied under scheme ${flow.scheme.toUpperCase()} (the master allows ${entry.schemes.join(', ').toUpperCase()})`);
  }
  return { master, entry };
}

/** One request per disc; a license for another request is refused. */
export async function obtainLicense(center: CenterClient, scheme: Scheme, contentId: string, mediumId: string): Promise<License> {
  const request = { requestId: randomUUID(), scheme, contentId, mediumId };
  const license = await center.requestLicense(request);
  if (!licenseAnswers(license, request)) throw new RefusedError('E_LICENSE_MISMATCH', 'the license center answered with a license for another request');
  return license;
}
