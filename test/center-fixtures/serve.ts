// Runs the license center service for subprocess tests: node --import tsx test/center-fixtures/serve.ts LEDGER PORT
import { serveCenter } from '../../lib/center/server.js';

const [db, port] = process.argv.slice(2);
const running = await serveCenter({ db: db!, port: Number(port ?? 0), log: () => undefined });
process.stdout.write(`${running.url}\n`);
const stop = () => { void running.close().then(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
