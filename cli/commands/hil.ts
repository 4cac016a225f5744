/** `mocopy hil check | run`: the hardware-in-the-loop lab runner for real drives (hil/README.md). */
import type { Command } from 'commander';
import { registerHil } from '../../hil/lab/runner.js';

export function register(program: Command): void {
  registerHil(program);
}
