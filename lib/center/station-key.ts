/**
 * The station key file: the station's ID, its center's ID and its user key KU. Written once
 * (never overwritten) with mode 0600; a key file that others can read is refused, as ssh does.
 */
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { ExitCode, MocopyError, UsageError } from '../errors.js';
import type { StationKey } from './types.js';

const FORMAT = 'mocopy-station-key';

export class StationKeyError extends MocopyError {
  constructor(message: string, hint?: string) {
    super('E_STATION_KEY', message, { exitCode: ExitCode.USAGE, ...(hint ? { hint } : {}) });
  }
}

export function writeStationKey(path: string, key: StationKey): void {
  const body = JSON.stringify({ format: FORMAT, version: 1, stationId: key.stationId, centerId: key.centerId, key: key.key.toString('hex') }, null, 1) + '\n';
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${path} exists already: a station key file is written once and never overwritten`, 'choose another --key-out path');
    throw new UsageError(`cannot write the station key file ${path}: ${(e as Error).message}`);
  }
  try {
    writeSync(fd, body);
  } finally {
    closeSync(fd);
  }
}

export function readStationKey(path: string): StationKey {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new StationKeyError(`cannot read the station key file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      'give --station-key FILE, set MOCOPY_STATION_KEY, or put "stationKey" in the config file');
  }
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    throw new StationKeyError(`the station key file ${path} is readable by other users (mode ${(st.mode & 0o777).toString(8)})`, `run \`chmod 600 ${path}\``);
  }
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new StationKeyError(`${path} is not a station key file (not JSON)`);
  }
  if (o === null || typeof o !== 'object' || o.format !== FORMAT || o.version !== 1 || typeof o.stationId !== 'string' || typeof o.centerId !== 'string' ||
      typeof o.key !== 'string' || !/^[0-9a-f]{64}$/.test(o.key)) {
    throw new StationKeyError(`${path} is not a valid station key file`);
  }
  return { stationId: o.stationId, centerId: o.centerId, key: Buffer.from(o.key, 'hex') };
}
