import { RefusedError } from '../errors.js';

/** Authenticated data failed its check: a tampered, truncated, reordered or wrongly keyed record or chunk. */
export class IntegrityError extends RefusedError {
  /** Where in the encrypted stream the failing part starts (0 = header), when the check knows it. */
  readonly streamOffset: number | undefined;
  constructor(message: string, hint?: string, at?: { streamOffset: number }) {
    super('E_INTEGRITY', message, hint ? { hint } : {});
    this.streamOffset = at?.streamOffset;
  }
}
