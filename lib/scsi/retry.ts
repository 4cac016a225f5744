/**
 * The retry policy, in one place, so every command class behaves the same:
 *  - UNIT ATTENTION (medium changed 28h, reset 29h, ...): retried once, and reported to the caller
 *    through `onAttention` (the copy protocol aborts if the medium may have changed).
 *  - NOT READY, becoming ready (04/01, 04/07): waited out with bounded exponential backoff.
 *  - MEDIUM ERROR on a write: never retried silently; it surfaces.
 *  - Everything else surfaces at once.
 */
import { isBecomingReady, isUnitAttention, ScsiError } from './scsi-errors.js';

export interface RetryPolicy {
  /** Longest total wait for a drive that is becoming ready (ms). */
  maxBecomingReadyMs: number;
  /** First backoff step (ms); doubles up to `maxBackoffMs`. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Injectable for tests. */
  sleep: (ms: number) => Promise<void>;
}

export const defaultRetryPolicy: RetryPolicy = {
  maxBecomingReadyMs: 30_000,
  initialBackoffMs: 100,
  maxBackoffMs: 2_000,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

export function withRetry<T>(attempt: () => Promise<T>, policy: RetryPolicy, onAttention: (e: ScsiError) => void): Promise<T> {
  // The first attempt without an async frame of its own: most commands succeed at once.
  return attempt().catch((e: unknown) => retrying(e, attempt, policy, onAttention));
}

/**
 * What withRetry does once its first attempt has failed with `first`: for a caller that ran the first attempt
 * itself (the device layer's path for one command, one promise fewer).
 */
export async function retrying<T>(first: unknown, attempt: () => Promise<T>, policy: RetryPolicy, onAttention: (e: ScsiError) => void): Promise<T> {
  let attentionRetried = false;
  let waited = 0;
  let backoff = policy.initialBackoffMs;
  let e = first;
  for (;;) {
    if (isUnitAttention(e)) {
      onAttention(e as ScsiError);
      if (attentionRetried) throw e;
      attentionRetried = true;
    } else if (isBecomingReady(e) && waited < policy.maxBecomingReadyMs) {
      const step = Math.min(backoff, policy.maxBecomingReadyMs - waited);
      await policy.sleep(step);
      waited += step;
      backoff = Math.min(backoff * 2, policy.maxBackoffMs);
    } else {
      throw e;
    }
    try {
      return await attempt();
    } catch (next) {
      e = next;
    }
  }
}
