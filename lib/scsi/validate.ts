/**
 * Argument checks shared by every Transport (native and emulated): a malformed command is a
 * programming error, rejected with TypeError before anything reaches a device.
 */
import type { ScsiCommand } from './transport.js';

export const MAX_CDB_LENGTH = 16;

export function validateCommand(cmd: ScsiCommand): void {
  if (!cmd || typeof cmd !== 'object') throw new TypeError('SCSI command must be an object');
  const { cdb, direction, data, timeoutMs } = cmd;
  if (!(cdb instanceof Uint8Array)) throw new TypeError('cdb must be a Buffer or Uint8Array');
  if (cdb.length === 0 || cdb.length > MAX_CDB_LENGTH) throw new TypeError(`cdb must be 1..${MAX_CDB_LENGTH} bytes, got ${cdb.length}`);
  if (direction !== 'none' && direction !== 'in' && direction !== 'out') throw new TypeError(`direction must be 'none', 'in' or 'out', got ${String(direction)}`);
  if (data !== undefined && !(data instanceof Uint8Array)) throw new TypeError('data must be a Buffer or Uint8Array');
  if (direction === 'none' && data !== undefined && data.length > 0) throw new TypeError("direction 'none' takes no data buffer");
  if (direction !== 'none' && (data === undefined || data.length === 0)) throw new TypeError(`direction '${direction}' needs a non-empty data buffer`);
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`timeoutMs must be a positive number, got ${String(timeoutMs)}`);
}
