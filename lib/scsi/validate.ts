/**
 * Argument checks shared by every Transport (native and emulated): a malformed command is a
 * programming error, rejected with TypeError before anything reaches a device.
 */
import type { ScsiCommand, ScsiResult } from './transport.js';

export const MAX_CDB_LENGTH = 16;
/** Command timeouts outside this range are programming errors (the addon checks the same range). */
export const MIN_TIMEOUT_MS = 1;
export const MAX_TIMEOUT_MS = 24 * 60 * 60 * 1000;
/** SPC: sense data is at most 252 bytes (additional length 244 + 8). */
export const MAX_SENSE_BYTES = 252;

export function validateCommand(cmd: ScsiCommand): void {
  if (!cmd || typeof cmd !== 'object') throw new TypeError('SCSI command must be an object');
  const { cdb, direction, data, timeoutMs } = cmd;
  if (!(cdb instanceof Uint8Array)) throw new TypeError('cdb must be a Buffer or Uint8Array');
  if (cdb.length === 0 || cdb.length > MAX_CDB_LENGTH) throw new TypeError(`cdb must be 1..${MAX_CDB_LENGTH} bytes, got ${cdb.length}`);
  if (direction !== 'none' && direction !== 'in' && direction !== 'out') throw new TypeError(`direction must be 'none', 'in' or 'out', got ${String(direction)}`);
  if (data !== undefined && !(data instanceof Uint8Array)) throw new TypeError('data must be a Buffer or Uint8Array');
  if (direction === 'none' && data !== undefined && data.length > 0) throw new TypeError("direction 'none' takes no data buffer");
  if (direction !== 'none' && (data === undefined || data.length === 0)) throw new TypeError(`direction '${direction}' needs a non-empty data buffer`);
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < MIN_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS) {
    throw new TypeError(`timeoutMs must be a finite number of milliseconds from ${MIN_TIMEOUT_MS} to ${MAX_TIMEOUT_MS} (24 h), got ${String(timeoutMs)}`);
  }
}

/**
 * What is wrong with a transport's answer to `cmd`, if anything: a residual outside [0, data length]
 * or not an integer. Transports are backends we do not all control (a caller's own, a lying drive's).
 */
export function answerProblem(cmd: ScsiCommand, result: ScsiResult): string | undefined {
  const len = cmd.direction === 'none' ? 0 : cmd.data?.length ?? 0;
  if (!Number.isSafeInteger(result.residual) || result.residual < 0 || result.residual > len) {
    return `residual ${String(result.residual)} is outside 0..${len}, the bytes asked for`;
  }
  if (!(result.sense instanceof Uint8Array)) return 'no sense buffer';
  return undefined;
}
