/**
 * V8 heap settings for the commands that stream a whole program (copy, open, verify), set when the mocopy
 * process starts one of them. A copy allocates a steady stream of short-lived objects; left to its defaults, V8
 * grows the young generation to 2 × 16 MiB and lets the old one reach four times what is live before collecting
 * it, which made the copy command's peak RSS grow with the program (161 MiB at 1 GiB against 136 MiB at 64 MiB).
 * Kept at its first size, and with the old generation collected at 1.5 × live, the copy stays near 100 MiB at
 * any size, for some 15–20% more CPU time (bench/copy-rss.ts prints both). The center and the other commands
 * keep V8's defaults. MOCOPY_LEAN_HEAP=0 turns this off.
 */
import v8 from 'node:v8';
import { isMocopyProcess } from './entry.js';

export const LEAN_HEAP_COMMANDS = new Set(['copy', 'open', 'verify']);

export function useLeanHeap(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.MOCOPY_LEAN_HEAP === '0') return false;
  // Both flags are read by V8 each time it sizes a generation, so setting them now (after start) takes effect.
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  v8.setFlagsFromString('--heap-growing-percent=50');
  return true;
}

// Imported first by main.ts, so this runs before the other modules load: the young generation grows while they do.
if (LEAN_HEAP_COMMANDS.has(process.argv[2] ?? '') && isMocopyProcess()) useLeanHeap();
