/** Placeholder replaced below. */
import type { Command } from 'commander';
export function registerHil(program: Command): void {
  program.command('hil').description('hardware-in-the-loop lab runner');
}
