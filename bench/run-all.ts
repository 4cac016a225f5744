/** `npm run bench`: every benchmark, each printing ratios against a baseline measured in the same run. */
import * as addon from './addon-roundtrip.js';
import * as center from './center-issuance.js';
import * as centerPostgres from './center-postgres.js';
import * as centerOps from './center-ops.js';
import * as copy from './copy-throughput.js';
import * as crypto from './crypto-aead.js';
import * as emulator from './emulator-throughput.js';
import * as multi from './multi-target.js';

for (const b of [emulator, addon, crypto, copy, multi, center, centerPostgres, centerOps]) await b.run();
await (await import('./iscsi-throughput.js')).run(); // needs tgt + libiscsi-bin and root; skipped with a note otherwise
