import { strict as assert } from 'node:assert';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { LedgerWriteError, SqliteLedger } from '../lib/center/ledger.js';
import { tempDir } from './helpers/fixtures.js';

// The SQLite ledger's group commit answers a batch of several only after an fsync of the -wal file on the libuv
// pool (lib/center/ledger/sqlite.ts commitBatch). These tests make that fsync fail, through the ledger's own
// descriptor, to show that nobody is answered before it has succeeded.
describe('SQLite ledger: the fsync off the event loop', () => {
  let t: ReturnType<typeof tempDir>;
  let ledger: SqliteLedger;
  beforeEach(() => {
    t = tempDir();
    ledger = SqliteLedger.open(join(t.dir, 'ledger.db'));
  });
  afterEach(async () => {
    await ledger.close().catch(() => undefined); // closes its -wal descriptor, /dev/null or not
    t.cleanup();
  });
  /** Points the ledger's -wal descriptor at /dev/null, where fsync fails (EINVAL). */
  const breakWalSync = () => {
    (ledger as unknown as { walFd: number | undefined }).walFd = openSync('/dev/null', 'r+');
  };
  const restoreWalSync = () => {
    const l = ledger as unknown as { walFd: number | undefined };
    closeSync(l.walFd!);
    l.walFd = undefined;
  };
  const spend = (nonce: string) => ledger.run((tx) => tx.spendNonce('st-1', nonce, Date.now()));

  it('a batch of several is answered after its fsync, and not at all when that fsync fails', async function () {
    if (process.platform !== 'linux') this.skip();
    assert.deepEqual(await Promise.all(['n1', 'n2', 'n3'].map(spend)), [true, true, true]);
    assert.ok(ledger.stats.items >= 3);
    breakWalSync();
    const failed = await Promise.allSettled(['n4', 'n5', 'n6'].map(spend));
    for (const r of failed) {
      assert.equal(r.status, 'rejected', 'answered although its fsync failed');
      assert.ok((r as PromiseRejectedResult).reason instanceof LedgerWriteError, String((r as PromiseRejectedResult).reason));
    }
    restoreWalSync();
    // Committed but never acknowledged: a retry finds what the ledger holds (the nonces are spent).
    assert.deepEqual(await Promise.all(['n4', 'n5', 'n6', 'n7'].map(spend)), [false, false, false, true]);
  });

  it('a batch of one syncs inside its COMMIT (the descriptor is not used), as does walSync: in-commit', async function () {
    if (process.platform !== 'linux') this.skip();
    breakWalSync();
    assert.equal(await spend('solo'), true);
    await ledger.close();
    ledger = SqliteLedger.open(join(t.dir, 'ledger.db'), { walSync: 'in-commit' });
    breakWalSync();
    assert.deepEqual(await Promise.all(['m1', 'm2', 'm3'].map(spend)), [true, true, true]);
  });
});
