/** The console's factory without loading it (Eta, its views) until `center serve` asks for one. */
import type { LicenseCenter } from '../center.js';
import type { ConsoleHandler } from '../server.js';
import type { ConsoleOptions } from './console.js';

export async function createConsoleLazily(center: LicenseCenter, opts: ConsoleOptions = {}): Promise<ConsoleHandler> {
  return (await import('./console.js')).createConsole(center, opts);
}
