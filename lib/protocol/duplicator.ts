/**
 * Duplicator mode (`mocopy station run`): every MO drive waits for a disc, copies the program to it under its own
 * license, verifies it, ejects it and waits for the next — the way a technician feeds a production station. A disc
 * that already holds a valid copy is reported and ejected without a second bill; a refused disc (write-protected,
 * someone else's data) is ejected with its reason. Drives run independently: discs arrive at their own pace, so each
 * copy reads the master itself (the CD-ROM drive serves them in turn).
 */
import type { CenterClient } from '../center/types.js';
import type { Scheme, StationKey } from '../domain/index.js';
import { MocopyError } from '../errors.js';
import type { BlockDevice } from '../scsi/device-api.js';
import { ScsiError } from '../scsi/scsi-errors.js';
import { copyLicensed } from './station.js';
import { verifyDisc } from './verify-disc.js';

export type DriveState = 'waiting' | 'copying' | 'verifying' | 'ejecting' | 'stopped';
export type DiscOutcome = 'copied' | 'already' | 'refused' | 'failed';

export interface DuplicatorEvent {
  drive: number;
  spec: string;
  state: DriveState;
  mediumId?: string;
  bytes?: number;
  total?: number;
  /** When a disc is finished: what became of it, and why. */
  outcome?: DiscOutcome;
  message?: string;
  exitCode?: number;
}

export interface Tally { copied: number; already: number; refused: number; failed: number; billed: number }

export interface DuplicatorOptions {
  master: BlockDevice;
  targets: BlockDevice[];
  contentId: string;
  scheme: Scheme;
  center: CenterClient;
  stationKey: StationKey;
  onEvent?: (e: DuplicatorEvent) => void;
  /** Stop after this many discs in all (scripted runs); default: until the signal aborts. */
  maxDiscs?: number;
  /** TEST UNIT READY polling interval while a drive waits for a disc (default 250 ms). */
  pollMs?: number;
  signal?: AbortSignal;
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(done, ms);
  function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
  signal?.addEventListener('abort', done, { once: true });
});

export async function runDuplicator(o: DuplicatorOptions): Promise<Tally> {
  const tally: Tally = { copied: 0, already: 0, refused: 0, failed: 0, billed: 0 };
  let started = 0;
  const more = () => !o.signal?.aborted && (o.maxDiscs === undefined || started < o.maxDiscs);

  async function drive(i: number, dev: BlockDevice): Promise<void> {
    const emit = (e: Omit<DuplicatorEvent, 'drive' | 'spec'>) => o.onEvent?.({ drive: i, spec: dev.spec, ...e });
    while (more()) {
      emit({ state: 'waiting' });
      if (!(await waitForDisc(dev))) break;
      if (!more()) break;
      started++;
      const finished = (outcome: DiscOutcome, message: string, extra: Partial<DuplicatorEvent> = {}) => {
        tally[outcome]++;
        emit({ state: 'ejecting', outcome, message, ...extra });
      };
      try {
        const r = await copyLicensed({
          master: o.master, target: dev, contentId: o.contentId, scheme: o.scheme, center: o.center, stationKey: o.stationKey,
          ...(o.signal ? { signal: o.signal } : {}),
          onEvent: (e) => { if (e.message === 'progress') emit({ state: 'copying', bytes: e.bytes ?? 0, total: e.total ?? 0 }); },
        });
        if (r.alreadyPresent) {
          finished('already', `${o.contentId} is already on this disc: not billed again`, { mediumId: r.mediumId });
        } else {
          tally.billed++;
          emit({ state: 'verifying', mediumId: r.mediumId });
          const v = await verifyDisc({ target: dev, stationKey: o.stationKey, deep: true });
          const mine = v.results.find((x) => x.contentId === o.contentId);
          if (mine?.ok) finished('copied', `copied and verified (license ${r.licenseId})`, { mediumId: r.mediumId });
          else finished('failed', `verification failed: ${mine?.detail ?? 'no entry'}`, { mediumId: r.mediumId, exitCode: 5 });
        }
      } catch (e) {
        const err = e as MocopyError;
        const refused = err instanceof MocopyError && err.exitCode === 5;
        finished(refused ? 'refused' : 'failed', err.message ?? String(e), { exitCode: err instanceof MocopyError ? err.exitCode : 1 });
      }
      // Out it goes: the technician takes it and puts in the next (the changer of an emulated drive does).
      await dev.setRemovalPrevented(false).catch(() => undefined);
      await dev.eject().catch(() => undefined);
    }
    emit({ state: 'stopped' });
  }

  /** Polls TEST UNIT READY until a disc is in and ready; false if the run is stopping. */
  async function waitForDisc(dev: BlockDevice): Promise<boolean> {
    while (more()) {
      try {
        await dev.testUnitReady();
        return true;
      } catch (e) {
        // No medium (3A), becoming ready, a medium-changed attention the retry already reported: keep polling.
        if (!(e instanceof ScsiError)) throw e;
      }
      await sleep(o.pollMs ?? 250, o.signal);
    }
    return false;
  }

  await Promise.all(o.targets.map((d, i) => drive(i, d)));
  return tally;
}
