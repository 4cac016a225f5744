// The bin must be executable for `npx mocopy` after `npm ci` (tsc does not set modes).
const fs = require('node:fs');
const path = require('node:path');
const bin = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (fs.existsSync(bin)) fs.chmodSync(bin, 0o755);
// The operators' console's templates and assets are not TypeScript: tsc does not copy them.
for (const sub of ['views', 'static']) {
  const from = path.join(__dirname, '..', 'lib', 'center', 'console', sub);
  const to = path.join(__dirname, '..', 'dist', 'lib', 'center', 'console', sub);
  if (fs.existsSync(from)) fs.cpSync(from, to, { recursive: true });
}
