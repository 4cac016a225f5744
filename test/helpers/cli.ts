import { spawnSync } from 'node:child_process';

/** Runs the mocopy CLI from source (no build needed), isolated from the user's config file. */
export function mocopy(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
    encoding: 'utf8', env: { ...process.env, MOCOPY_CONFIG: '/nonexistent/mocopy.json', ...env }, timeout: 170_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
