// Runs the license center service for subprocess tests and benchmarks:
//   node --import tsx test/center-fixtures/serve.ts LEDGER PORT [quiet|ops FILE|bare]
// quiet (default): metrics on, log lines dropped; ops: metrics on, JSON log lines appended to FILE (as an
// operator's log would be); bare: no metrics, no logging (the benchmark's baseline).
import { serveCenter } from '../../lib/center/server.js';

const [db, port, mode = 'quiet', file] = process.argv.slice(2);
// MOCOPY_GROUP_WINDOW_MS: a fixed group-commit window instead of the adaptive one (for the benchmark's comparison).
const windowMs = process.env.MOCOPY_GROUP_WINDOW_MS ? Number(process.env.MOCOPY_GROUP_WINDOW_MS) : undefined;
// MOCOPY_WAL_SYNC=in-commit: the batch's fsync inside COMMIT, on the event loop (the benchmark's comparison).
const walSync = process.env.MOCOPY_WAL_SYNC === 'in-commit' ? 'in-commit' as const : undefined;
const running = await serveCenter({
  db: db!, port: Number(port ?? 0), ...(windowMs !== undefined || walSync ? { ledger: { ...(windowMs !== undefined ? { windowMs } : {}), ...(walSync ? { walSync } : {}) } } : {}),
  ...(mode === 'bare' ? { metrics: false, logLevel: 'silent' as const, log: () => undefined } : mode === 'ops' ? { logTo: file!, logFormat: 'json' as const } : { log: () => undefined }),
});
process.stdout.write(`${running.url}\n`);
const stop = () => { void running.close().then(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
