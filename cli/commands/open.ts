/** `mocopy open TARGET --content ID --out FILE|-`: load a licensed copy for execution (FIG. 6 / FIG. 10). */
import { createWriteStream, renameSync, rmSync, statSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Command } from 'commander';
import { openCopy, readStationKey, resolveStationSettings } from '../../lib/index.js';
import { info, jsonOption, printJson, openDrive } from '../common.js';

export function register(program: Command): void {
  program.command('open')
    .argument('<target>', 'the drive holding the licensed copy: emu:DISC.mo, /dev/sg2, ...')
    .requiredOption('--content <id>', 'content ID of the copy to open')
    .option('--station-key <file>', "this station's key file (needed for scheme-A copies)")
    .requiredOption('--out <file>', 'where to write the program, or - for standard output')
    .option('--quirks <file>', 'medium-ID quirks file for the drive')
    .addOption(jsonOption())
    .description('check the copy\'s license against this disc and decrypt the program')
    .action(async (spec: string, o: { content: string; stationKey?: string; out: string; quirks?: string; json?: boolean }) => {
      const settings = resolveStationSettings(o.stationKey ? { stationKey: o.stationKey } : {});
      const stationKey = settings.stationKeyPath ? readStationKey(settings.stationKeyPath) : undefined;
      const dev = await openDrive(spec, { write: false, ...(o.quirks ? { quirksFile: o.quirks } : {}) });
      const toStdout = o.out === '-';
      // A device, FIFO or socket (/dev/null, a pipe to a loader) is written in place: renaming a finished file
      // over it would replace the device itself. Only a regular file (or a new one) goes through a temporary.
      const special = !toStdout && isSpecialFile(o.out);
      const tmp = toStdout || special ? '' : `${o.out}.partial-${process.pid}`;
      const sink = toStdout ? process.stdout : createWriteStream(special ? o.out : tmp, special ? { flags: 'w' } : { mode: 0o600 });
      try {
        const r = await openCopy({ target: dev, contentId: o.content, ...(stationKey ? { stationKey } : {}), out: sink, onEvent: (e) => { if (!o.json && !toStdout) info(`${e.step}: ${e.message}`); } });
        if (!toStdout) {
          sink.end();
          await finished(sink);
          if (tmp) renameSync(tmp, o.out);
        }
        if (o.json && !toStdout) printJson({ ok: true, content: o.content, scheme: r.scheme, bytes: r.bytes, out: o.out });
        else if (!toStdout) info(`opened ${o.content} (${r.bytes} bytes, scheme ${r.scheme.toUpperCase()}) to ${o.out}`);
      } catch (e) {
        // A refused or failed open leaves no partial plaintext behind.
        if (!toStdout) { sink.destroy(); if (tmp) rmSync(tmp, { force: true }); }
        throw e;
      } finally {
        await dev.close();
      }
    });
}

function isSpecialFile(path: string): boolean {
  try {
    const st = statSync(path);
    return !st.isFile() && !st.isDirectory();
  } catch {
    return false; // a new file
  }
}
