/** Whether this process was started as the mocopy command itself, not as a test or a program importing the CLI. */
import { realpathSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

export function isMocopyProcess(): boolean {
  if (!process.argv[1]) return false;
  const here = fileURLToPath(import.meta.url);
  try {
    // main.js next to this file in dist/, main.ts under tsx.
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(new URL(`./main${extname(here)}`, import.meta.url)));
  } catch {
    return false;
  }
}
