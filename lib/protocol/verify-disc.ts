/**
 * `mocopy verify`: every licensed copy on a disc checked against the drive's medium ID — the license
 * record (scheme A: CS recomputed from IDk with KEYc; scheme B: E_Mid(Ku) opens with Mid) — and, deep,
 * every copy's data authenticated chunk by chunk with its AEAD tags under the program key, exactly as
 * `open` would decrypt it. The directory's SHA-256 is the station's write-verify record, unkeyed: it is
 * never taken as proof of anything here.
 */
import { MocopyError, NotMocopyDiscError } from '../errors.js';
import type { StationKey } from '../domain/index.js';
import { IntegrityError } from '../crypto/errors.js';
import { decryptStream, Purpose, streamIdFor } from '../crypto/stream-aead.js';
import type { DirectoryEntry } from '../formats/disc-layout.js';
import type { BlockDevice } from '../scsi/device-api.js';
import { ScsiError, TransportError } from '../scsi/scsi-errors.js';
import { TargetDisc } from '../target/disc.js';
import { programKey, type LicensedCopy } from './open-copy.js';
import { takeBytes } from './pipeline.js';

export type CheckOutcome = 'ok' | 'failed' | 'not checked';

export interface VerifyResult {
  contentId: string;
  scheme: 'a' | 'b';
  slot: number;
  /** Every check made passed and none was left out. */
  ok: boolean;
  status: 'ok' | 'failed' | 'unchecked';
  checks: { license: CheckOutcome; data: CheckOutcome };
  detail: string;
  /** Byte offset on the disc where a data check failed. */
  failedAt?: number;
}

export async function verifyDisc(o: { target: BlockDevice; stationKey?: StationKey; deep?: boolean }): Promise<{ mediumId: string; results: VerifyResult[] }> {
  await o.target.testUnitReady();
  if ((await o.target.inquiry()).peripheralType === 0x05) throw new NotMocopyDiscError(o.target.spec, 'this is a CD-ROM drive; licensed copies are on MO discs');
  const disc = await TargetDisc.open(o.target);
  // A disc without our layout is not "a healthy disc with 0 copies": say what it is.
  if (disc.label.kind !== 'ours') throw new NotMocopyDiscError(o.target.spec, disc.label.kind === 'blank' ? 'it is blank' : disc.label.reason);
  const mid = await o.target.mediumId();
  const results: VerifyResult[] = [];
  for (const entry of disc.directory.entries) results.push(await verifyCopy(disc, entry, mid.id, o));
  return { mediumId: mid.id.toString('hex'), results };
}

async function verifyCopy(disc: TargetDisc, entry: DirectoryEntry, mediumId: Buffer, o: { target: BlockDevice; stationKey?: StationKey; deep?: boolean }): Promise<VerifyResult> {
  const r: VerifyResult = { contentId: entry.contentId, scheme: entry.scheme, slot: entry.slot, ok: false, status: 'failed', checks: { license: 'not checked', data: 'not checked' }, detail: '' };
  const notes: string[] = [];
  try {
    const record = await disc.readSlot(entry.slot);
    if (!record || record.contentId !== entry.contentId || record.scheme !== entry.scheme) throw new Error('license record missing or does not match the directory');
    if (entry.scheme === 'a' && !o.stationKey) {
      // CS, Kd and therefore the tags are all under the station key: nothing of this copy can be checked.
      notes.push('certificate and data not checked: a scheme-A copy needs the station key (--station-key)');
    } else {
      const copy: LicensedCopy = { disc, entry, record, mediumId };
      const key = programKey(copy, o.stationKey, o.target.spec);
      r.checks.license = 'ok';
      notes.push(entry.scheme === 'a' ? 'CS verifies against this disc\'s IDk' : 'E_Mid(Ku) opens with this disc\'s Mid');
      if (o.deep) {
        await authenticateData(o.target, disc, entry, key);
        r.checks.data = 'ok';
        notes.push(`all ${entry.encryptedSize} bytes authenticated`);
      } else {
        notes.push('data not read (use --deep)');
      }
    }
  } catch (e) {
    // The drive failing is not the copy failing a check: it surfaces as the device error it is (exit 3/4).
    if (e instanceof ScsiError || e instanceof TransportError) throw e;
    if (r.checks.license === 'ok') r.checks.data = 'failed';
    else r.checks.license = 'failed';
    if (e instanceof IntegrityError && e.streamOffset !== undefined) r.failedAt = entry.offset + e.streamOffset;
    const where = r.failedAt !== undefined ? ` at disc byte ${r.failedAt}` : '';
    r.detail = `${entry.contentId}${where}: ${e instanceof MocopyError || e instanceof Error ? e.message : String(e)}`;
    return r;
  }
  const unchecked = r.checks.license === 'not checked' || (o.deep && r.checks.data === 'not checked');
  r.status = unchecked ? 'unchecked' : 'ok';
  r.ok = !unchecked;
  r.detail = notes.join('; ');
  return r;
}

/** Reads the copy and checks every chunk's tag (and the header, length and finality) with the program key. */
async function authenticateData(target: BlockDevice, disc: TargetDisc, entry: DirectoryEntry, key: Uint8Array): Promise<void> {
  const blocks = Math.ceil(entry.encryptedSize / disc.blockSize);
  const cipher = takeBytes(target.readStream(disc.lbaOf(entry.offset), blocks, { recycle: true }), entry.encryptedSize);
  let plain = 0;
  for await (const b of decryptStream(key, cipher, { streamId: streamIdFor(entry.contentId), purpose: entry.scheme === 'a' ? Purpose.MASTER : Purpose.DISC_COPY })) plain += b.length;
  if (plain !== entry.plainSize) throw new IntegrityError(`the copy decrypts to ${plain} bytes, the directory says ${entry.plainSize}`);
}
