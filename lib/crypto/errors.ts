import { RefusedError } from '../errors.js';

/** Authenticated data failed its check: a tampered, truncated, reordered or wrongly keyed record or chunk. */
export class IntegrityError extends RefusedError {
  constructor(message: string, hint?: string) {
    super('E_INTEGRITY', message, hint ? { hint } : {});
  }
}
