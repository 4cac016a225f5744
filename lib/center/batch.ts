/**
 * Group commit: work submitted in the same event-loop turn runs in ONE SQLite transaction (each item
 * in its own savepoint, so one refusal does not undo the others), and every caller is answered only
 * after that transaction committed (synchronous=FULL). One fsync serves many licenses.
 */
import type Database from 'better-sqlite3';
import { isStorageFailure, LedgerWriteError } from './ledger.js';

interface Item<T> { fn: () => T; resolve: (v: T) => void; reject: (e: unknown) => void; result?: T; error?: unknown; failed?: boolean }

export class GroupCommit {
  private pending: Array<Item<unknown>> = [];
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  /** Commits so far and items per commit, for the benchmark and tests. */
  readonly stats = { commits: 0, items: 0 };

  /**
   * `windowMs`: how long the first request of a batch waits for company. A durable commit costs about
   * one fsync (~0.3-3 ms), so waiting about that long lets one fsync serve every request arriving meanwhile.
   */
  constructor(
    private readonly db: Database.Database,
    private readonly opts: { maxBatch?: number; windowMs?: number } = {},
  ) {}

  private get maxBatch(): number {
    return this.opts.maxBatch ?? 256;
  }

  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve, reject } as Item<unknown>);
      if (this.pending.length >= this.maxBatch) {
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        this.scheduled = false;
        setImmediate(() => this.flush());
      } else if (!this.scheduled) {
        this.scheduled = true;
        // Every batch waits the window: measured here, skipping it for "lone" requests lost a third of the
        // throughput under load (requests arrive one by one even when many stations are active), while the
        // cost to a single station is at most `windowMs` per license on a copy that takes minutes.
        this.timer = setTimeout(() => this.flush(), this.opts.windowMs ?? 2);
      }
    });
  }

  /**
   * Like `run`, but `spend` is kept even when `fn` refuses: `fn` runs in a savepoint of its own inside the
   * item, so its refusal rolls back only its own writes. A nonce is spent this way: a request refused for
   * any reason after authentication can never be replayed later, when the reason may be gone.
   * If `spend` throws, nothing of the item is kept and `fn` does not run.
   */
  async runSpending<T>(spend: () => void, fn: () => T): Promise<T> {
    const r = await this.run(() => {
      spend();
      try {
        return { ok: true as const, value: this.db.transaction(fn)() };
      } catch (error) {
        return { ok: false as const, error };
      }
    });
    if (!r.ok) throw r.error;
    return r.value;
  }

  private flush(): void {
    this.scheduled = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        this.db.transaction(() => {
          for (const item of batch) {
            try {
              item.result = this.db.transaction(item.fn)();
            } catch (e) {
              item.failed = true;
              item.error = e;
            }
          }
        })();
      } catch (e) {
        // The batch's commit failed: nobody in it was issued or billed. Storage failures are named as such.
        const err = isStorageFailure(e) ? new LedgerWriteError(this.db.name, e) : e;
        for (const item of batch) item.reject(err);
        continue;
      }
      this.stats.commits++;
      this.stats.items += batch.length;
      for (const item of batch) {
        if (item.failed) item.reject(item.error);
        else item.resolve(item.result);
      }
    }
  }
}
