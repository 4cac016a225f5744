/** `mocopy copy MASTER TARGET --content ID`: the technician's command at a copying station. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { copyLicensed, createProgress, openDevice, RefusedError, validateContentId } from '../../lib/index.js';
import { jsonOption, out, stationContext } from '../common.js';

export function register(program: Command): void {
  program.command('copy')
    .argument('<master>', 'the master drive (CD-ROM): emu:MASTER.iso, /dev/sr0, /dev/sg1, ...')
    .argument('<target>', 'the target drive (MO): emu:DISC.mo, /dev/sg2, ...')
    .requiredOption('--content <id>', 'content ID of the program to copy')
    .option('--center <url>', 'license center service URL')
    .option('--center-db <ledger>', 'local license center ledger (in-process center)')
    .option('--station-key <file>', 'this station\'s key file')
    .addOption(new Option('--scheme <scheme>', 'licensing scheme: a (certificate, claims 1-4) or b (medium-bound key, FIG. 7-10)').choices(['a', 'b', 'A', 'B']))
    .option('--quirks <file>', 'medium-ID quirks file for the target drive')
    .addOption(jsonOption())
    .description('copy a program from the master to the target disc under a license signed for this disc')
    .action(async (masterSpec: string, targetSpec: string, o: { content: string; center?: string; centerDb?: string; stationKey?: string; scheme?: string; quirks?: string; json?: boolean }) => {
      validateContentId(o.content);
      const ctx = await stationContext({ ...(o.center ? { center: o.center } : {}), ...(o.centerDb ? { centerDb: o.centerDb } : {}), ...(o.stationKey ? { stationKey: o.stationKey } : {}), ...(o.scheme ? { scheme: o.scheme } : {}) });
      const scheme = ctx.settings.scheme ?? 'a';
      const progress = createProgress({ json: !!o.json });
      const master = await openDevice(masterSpec, { write: false });
      try {
        const target = await openDevice(targetSpec, { write: true, ...(o.quirks ? { quirksFile: o.quirks } : {}) });
        try {
          let began = false;
          // Ctrl-C or a stop request ends the transfer through the same path as a failure: the license
          // slot is put back, the disc unlocked, and the directory never committed — the disc is as it was.
          const stop = new AbortController();
          const onSignal = () => stop.abort(new RefusedError('E_INTERRUPTED', 'the copy was interrupted; the disc is as it was', { hint: 'run the same command again to copy (the license is not billed twice)' }));
          process.once('SIGINT', onSignal);
          process.once('SIGTERM', onSignal);
          const result = await copyLicensed({
            master, target, contentId: o.content, scheme, center: ctx.center, stationKey: ctx.stationKey, signal: stop.signal,
            onEvent: (e) => {
              if (e.message === 'progress') {
                if (!began) { progress.begin(e.step, e.total ?? 0); began = true; }
                progress.update(e.bytes ?? 0);
                return;
              }
              if (began) { progress.done(); began = false; }
              progress.step(e.step, e.message, e.total !== undefined ? { total: e.total } : undefined);
            },
          });
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          progress.done();
          // One JSON document per line, like the progress events before it.
          if (o.json) process.stdout.write(JSON.stringify({ event: 'result', ok: true, ...result }) + '\n');
          else out(result.alreadyPresent
            ? `${o.content} is already on ${targetSpec}`
            : `copied ${o.content} (${result.plainSize} bytes, scheme ${scheme.toUpperCase()}) to ${targetSpec} in ${result.seconds.toFixed(1)} s; license ${result.licenseId}`);
        } finally {
          await target.close();
        }
      } finally {
        progress.done();
        await master.close();
        await ctx.center.close();
      }
    });
}
