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
  requireCapability(ctx, haveTool(tool), tool, pkg);
}

/** Like requireTool, for a capability found some other way (binaries off PATH, a Python module). */
export function requireCapability(ctx: Mocha.Context, available: boolean, tool: string, pkg: string): void {
  if (available) return;
  if (process.env.MOCOPY_TEST_ALL === '1') throw new Error(`${tool} is missing and MOCOPY_TEST_ALL=1 (apt-get install ${pkg}, or npm run setup:system)`);
  // Called from a before() hook it skips the whole suite: name the suite, not the hook.
  const runnable = ctx.test;
  const title = runnable && (runnable as { type?: string }).type === 'hook' && runnable.parent ? `${runnable.parent.fullTitle()} (all its tests)` : runnable?.fullTitle() ?? 'a test';
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

/** A Python 3 that can import `module`: Debian's /usr/bin/python3 first (where apt installs python3-*), then python3 on PATH. */
export function pythonWith(module: string): string | undefined {
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(module)) throw new Error(`not a Python module name: ${module}`);
  for (const python of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(python, ['-c', `import ${module}`], { stdio: 'ignore' });
    if (r.error === undefined && r.status === 0) return python;
  }
  return undefined;
}

/** Like requireTool, for "python3 with module X": returns the interpreter, or skips (fails under MOCOPY_TEST_ALL=1). */
export function requirePythonModule(ctx: Mocha.Context, module: string, pkg: string): string {
  const python = pythonWith(module);
  requireCapability(ctx, python !== undefined, `python3 with the ${module} module`, pkg);
  return python!;
}
