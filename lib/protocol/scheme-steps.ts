/**
 * What differs between the two schemes, as one interface the station's phases call: how the license
 * becomes a record on the disc and the keys the program needs, what is read from the master, and
 * what each target receives. scheme-a.ts (FIG. 4, S1–S7) and scheme-b.ts (FIG. 9, S11–S17) implement it.
 */
import { RefusedError } from '../errors.js';
import type { License, Scheme, StationKey } from '../domain/index.js';
import type { CatalogEntry } from '../formats/catalog.js';
import type { OpenedMaster } from '../master/read.js';
import type { StreamOptions } from '../scsi/device-api.js';
import type { EventSink } from './events.js';
import type { Placement, TargetCopy } from './target-copy.js';

/** The keys the program stream needs once a license is installed on a target. */
export interface ProgramKeys {
  /** Opens the master's program: Kd (scheme A), Ka (scheme B). The same for every target of one content. */
  master: Uint8Array;
  /** Encrypts the copy for this target: Ku (scheme B only; scheme A copies the ciphertext as is). */
  target?: Uint8Array;
}

export interface SchemeSteps {
  readonly scheme: Scheme;
  /** The patent's step numbers: reading the IDs, and writing/committing the program. */
  readonly step: { readIds: string; write: string };
  /** Names of the medium ID and content ID in this scheme's figures. */
  readonly names: { mediumId: string; contentId: string };
  /** Bytes the copy takes on the target. */
  encryptedSize(entry: CatalogEntry): number;
  /** Report what the center did (its steps happen there). */
  licenseIssued(license: License, emit: EventSink): void;
  /** Write the license record on the target, read it back and check it; the keys the program needs. */
  installLicense(target: TargetCopy, at: Placement, license: License, stationKey: StationKey, emit: EventSink): Promise<ProgramKeys>;
  /** What is read from the master, checked on the way (shared by every target). */
  masterStream(master: OpenedMaster, entry: CatalogEntry, keys: ProgramKeys, opts: StreamOptions, emit: EventSink): AsyncIterable<Buffer>;
  /** What one target receives from the master stream. */
  targetStream(source: AsyncIterable<Buffer>, entry: CatalogEntry, keys: ProgramKeys): AsyncIterable<Buffer>;
  /**
   * The target receives the master's read buffers themselves, and nothing keeps one after passing it on: with one
   * target, the writer can hand each buffer back to the reader (BufferPool) once it is on the disc.
   */
  readonly passesMasterBuffers: boolean;
  /** Words for the writing step. */
  readonly writing: string;
}

export function certificateRefusal(device: string, detail: string): RefusedError {
  return new RefusedError('E_CERTIFICATE_MISMATCH', `${device}: the license certificate does not verify (${detail}); nothing was copied and the disc is as it was`, {
    hint: 'check that the station key belongs to this station and that the disc was not changed; then run the copy again',
  });
}
