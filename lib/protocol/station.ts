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
import type { BlockDevice, StreamOptions } from '../scsi/device-api.js';
import type { EventSink } from './events.js';
import { schemeA } from './scheme-a.js';
import { schemeB } from './scheme-b.js';
import type { SchemeSteps } from './scheme-steps.js';
import { TargetCopy } from './target-copy.js';

export interface CopyOptions {
  master: BlockDevice;
  target: BlockDevice;
  contentId: string;
  scheme: Scheme;
  center: CenterClient;
  stationKey: StationKey;
  onEvent?: EventSink;
  /** Commands in flight per drive (default 4). */
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

export async function copyLicensed(o: CopyOptions): Promise<CopyResult> {
  const t0 = Date.now();
  const emit: EventSink = o.onEvent ?? (() => undefined);
  const flow = SCHEME_STEPS[o.scheme];
  const io: StreamOptions = { inFlight: o.inFlight ?? 4, ...(o.signal ? { signal: o.signal } : {}) };
  const result = (r: Omit<CopyResult, 'contentId' | 'scheme' | 'seconds'>): CopyResult => ({ contentId: o.contentId, scheme: o.scheme, ...r, seconds: (Date.now() - t0) / 1000 });

  // Phase: check the master — it holds the content, and allows this scheme.
  const { master, entry } = await checkMaster(o.master, o.contentId, flow);
  // Phase: check the target — ready, writable, blank or ours.
  const target = await TargetCopy.check(o.target);
  try {
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
      return result({ mediumId, mediumIdMethod: mid.method, licenseId, slot: existing.slot, offset: existing.offset, plainSize: existing.plainSize, encryptedSize: existing.encryptedSize, alreadyPresent: true });
    }
    const at = target.place(flow.encryptedSize(entry));

    // Phase [S1 send]/[S2] or [S11 send]/[S12-S14]: the license center signs the pair and bills.
    const license = await obtainLicense(o.center, o.scheme, o.contentId, mediumId);
    flow.licenseIssued(license, emit);
    o.signal?.throwIfAborted();

    try {
      // Phase [S3-S6]/[S15]: the license record is written to the disc, read back and checked.
      const keys = await flow.installLicense(target, at, license, o.stationKey, emit);
      // Phase [S7]/[S16-S17]: the program streams from the master to the target.
      emit({ step: flow.step.write, message: `${flow.writing} to the target at byte ${at.offset}`, bytes: 0, total: at.encryptedSize });
      const source = flow.targetStream(flow.masterStream(master, entry, keys, io, emit), entry, keys);
      const hash = await target.writeProgram(at, source, (n) => emit({ step: flow.step.write, message: 'progress', bytes: n, total: at.encryptedSize }), io);
      // Phase: read back, verify, and commit in the disc directory.
      await target.verifyAndCommit(at, { contentId: o.contentId, name: entry.name, scheme: o.scheme, plainSize: entry.size }, hash, io);
      emit({ step: flow.step.write, message: `verified and committed in the disc directory (generation ${target.disc.directory.generation})` });
      return result({ mediumId, mediumIdMethod: mid.method, licenseId: license.licenseId, slot: at.slot, offset: at.offset, plainSize: entry.size, encryptedSize: at.encryptedSize, alreadyPresent: false });
    } catch (e) {
      await target.abandon(e);
      throw e;
    }
  } finally {
    await target.release();
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
