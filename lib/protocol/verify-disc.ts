/** `mocopy verify`: every license record on a disc checked against the drive's medium ID (and, deep, every extent). */
import { MocopyError } from '../errors.js';
import type { StationKey } from '../domain/index.js';
import { TargetDisc } from '../target/disc.js';
import type { BlockDevice } from '../scsi/device-api.js';
import { programKey, type LicensedCopy } from './open-copy.js';
import { sha256, takeBytes } from './pipeline.js';

export interface VerifyResult {
  contentId: string;
  scheme: 'a' | 'b';
  slot: number;
  ok: boolean;
  detail: string;
}

export async function verifyDisc(o: { target: BlockDevice; stationKey?: StationKey; deep?: boolean }): Promise<{ mediumId: string; results: VerifyResult[] }> {
  await o.target.testUnitReady();
  const disc = await TargetDisc.open(o.target);
  const mid = await o.target.mediumId();
  const results: VerifyResult[] = [];
  for (const entry of disc.directory.entries) {
    const r: VerifyResult = { contentId: entry.contentId, scheme: entry.scheme, slot: entry.slot, ok: false, detail: '' };
    try {
      const record = await disc.readSlot(entry.slot);
      if (!record || record.contentId !== entry.contentId) throw new Error('license record missing or does not match the directory');
      const copy: LicensedCopy = { disc, entry, record, mediumId: mid.id };
      programKey(copy, o.stationKey, o.target.spec);
      if (o.deep) {
        const h = sha256();
        for await (const b of takeBytes(o.target.readStream(disc.lbaOf(entry.offset), Math.ceil(entry.encryptedSize / disc.blockSize), { recycle: true }), entry.encryptedSize)) h.update(b);
        if (h.digest('hex') !== entry.sha256) throw new Error('the program on the disc does not match its recorded hash');
      }
      r.ok = true;
      r.detail = entry.scheme === 'a' ? 'CS verifies against this disc\'s IDk' : 'E_Mid(Ku) opens with this disc\'s Mid';
    } catch (e) {
      r.detail = e instanceof MocopyError || e instanceof Error ? e.message : String(e);
    }
    results.push(r);
  }
  return { mediumId: mid.id.toString('hex'), results };
}
