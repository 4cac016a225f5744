/**
 * System tools some suites need (genisoimage, xorriso, …). On a machine without one, the test is skipped and
 * listed at the end of the run as not run, with the Debian package that brings it (`npm run setup:system`
 * installs them all). With MOCOPY_TEST_ALL=1 (set by .ci/run) a missing tool fails the test instead.
 */
import { spawnSync } from 'node:child_process';

const notRun = new Map<string, Set<string>>();
let reporting = false;

export function haveTool(tool: string): boolean {
  const r = spawnSync(tool, ['--version'], { stdio: 'ignore' });
  return r.error === undefined;
}

export function requireTool(ctx: Mocha.Context, tool: string, pkg: string): void {
  if (haveTool(tool)) return;
  if (process.env.MOCOPY_TEST_ALL === '1') throw new Error(`${tool} is missing and MOCOPY_TEST_ALL=1 (apt-get install ${pkg}, or npm run setup:system)`);
  const title = ctx.test?.fullTitle() ?? 'a test';
  if (!notRun.has(pkg)) notRun.set(pkg, new Set());
  notRun.get(pkg)!.add(`${title} (needs ${tool})`);
  if (!reporting) {
    reporting = true;
    process.on('exit', () => {
      const lines = [...notRun].flatMap(([p, tests]) => [`  package ${p}:`, ...[...tests].map((t) => `    - ${t}`)]);
      process.stdout.write(`\nNot run (a system tool is missing; \`npm run setup:system\` installs them on Debian/Ubuntu):\n${lines.join('\n')}\n`);
    });
  }
  ctx.skip();
}
