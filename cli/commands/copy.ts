/** `mocopy copy MASTER TARGET --content ID` (or `--target DEV` repeated): the technician's command at a copying station. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { copyLicensed, copyToTargets, createProgress, ExitCode, MocopyError, RefusedError, UsageError, validateContentId } from '../../lib/index.js';
import { jsonOption, out, stationContext, stationFlagsOf, withStationDrives, openDrive } from '../common.js';

export function register(program: Command): void {
  program.command('copy')
    .argument('<master>', 'the master drive (CD-ROM): emu:MASTER.iso, /dev/sr0, /dev/sg1, ...')
    .argument('[target]', 'the target drive (MO): emu:DISC.mo, /dev/sg2, ...')
    .option('--target <dev>', 'a target drive; repeat for several MO drives fed from one master read', (v: string, p: string[] = []) => [...p, v])
    .requiredOption('--content <id>', 'content ID of the program to copy')
    .option('--center <url>', 'license center service URL')
    .option('--center-db <ledger>', 'local license center ledger (in-process center)')
    .option('--station-key <file>', 'this station\'s key file')
    .addOption(new Option('--scheme <scheme>', 'licensing scheme: a (certificate, claims 1-4) or b (medium-bound key, FIG. 7-10)').choices(['a', 'b', 'A', 'B']))
    .option('--quirks <file>', 'medium-ID quirks file for the target drive')
    .addOption(jsonOption())
    .description('copy a program from the master to the target disc under a license signed for this disc')
    .action(async (masterSpec: string, targetArg: string | undefined, o: { target?: string[]; content: string; center?: string; centerDb?: string; stationKey?: string; scheme?: string; quirks?: string; json?: boolean }) => {
      validateContentId(o.content);
      const targets = [...(targetArg ? [targetArg] : []), ...(o.target ?? [])];
      if (targets.length === 0) throw new UsageError('no target drive: give TARGET or --target DEV (repeat --target for several drives)');
      if (new Set(targets).size !== targets.length) throw new UsageError('the same target drive is given twice');
      if (targets.length > 1) return copyMany(masterSpec, targets, o);
      const targetSpec = targets[0]!;
      const ctx = await stationContext(stationFlagsOf(o));
      const scheme = ctx.settings.scheme ?? 'a';
      const progress = createProgress({ json: !!o.json });
      const master = await openDrive(masterSpec, { write: false });
      try {
        const target = await openDrive(targetSpec, { write: true, ...(o.quirks ? { quirksFile: o.quirks } : {}) });
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

/**
 * Several targets: one master read, one license per disc. Each target's outcome is printed; the exit code is 0 when
 * every target got its copy, else that of the first target (in command-line order) that did not.
 */
async function copyMany(masterSpec: string, specs: string[], o: { content: string; center?: string; centerDb?: string; stationKey?: string; scheme?: string; quirks?: string; json?: boolean }): Promise<void> {
  await withStationDrives(stationFlagsOf(o), masterSpec, specs, 'the copy was interrupted; the discs are as they were', async ({ ctx, scheme, master, targets, signal }) => {
    const lastPct = specs.map(() => -1);
    const outcomes = await copyToTargets({
      master, targets, contentId: o.content, scheme, center: ctx.center, stationKey: ctx.stationKey, signal,
      onEvent: (i, e) => {
        if (o.json) {
          if (e.message === 'progress') {
            const pct = e.total ? Math.floor((100 * (e.bytes ?? 0)) / e.total) : 0;
            if (pct === lastPct[i]) return;
            lastPct[i] = pct;
          }
          process.stdout.write(JSON.stringify({ event: e.message === 'progress' ? 'progress' : 'step', target: specs[i], ...e }) + '\n');
        } else if (e.message !== 'progress') {
          process.stderr.write(`[${specs[i]}] ${e.step.padEnd(4)} ${e.message}\n`);
        }
      },
    });
    let exit: number = ExitCode.OK;
    for (const r of outcomes) {
      if (r.ok) {
        if (o.json) process.stdout.write(JSON.stringify({ event: 'result', target: r.spec, ok: true, ...r.result }) + '\n');
        else out(r.result.alreadyPresent ? `${r.spec}: ${o.content} is already on this disc` : `${r.spec}: copied ${o.content} (${r.result.plainSize} bytes, scheme ${scheme.toUpperCase()}) in ${r.result.seconds.toFixed(1)} s; license ${r.result.licenseId}`);
      } else {
        const err = r.error as Error;
        const code = r.error instanceof MocopyError ? r.error.exitCode : ExitCode.INTERNAL;
        if (exit === ExitCode.OK) exit = code;
        if (o.json) process.stdout.write(JSON.stringify({ event: 'result', target: r.spec, ok: false, error: { code: (r.error as MocopyError).code ?? 'E_INTERNAL', message: err.message, exitCode: code } }) + '\n');
        else out(`${r.spec}: FAILED: ${err.message}${(r.error as MocopyError).hint ? ` (hint: ${(r.error as MocopyError).hint})` : ''}`);
      }
    }
    process.exitCode = exit;
  }, o.quirks ? { quirksFile: o.quirks } : {});
}
