/** `mocopy verify TARGET`: every license record on the disc checked against the drive's medium ID. */
import type { Command } from 'commander';
import { ExitCode, readStationKey, resolveStationSettings, verifyDisc } from '../../lib/index.js';
import { jsonOption, out, printJson, openDrive } from '../common.js';

export function register(program: Command): void {
  program.command('verify')
    .argument('<target>', 'the drive holding licensed copies')
    .option('--station-key <file>', "this station's key file (needed for scheme-A records)")
    .option('--deep', 'also read every copy back and authenticate it chunk by chunk (AEAD tags)')
    .option('--quirks <file>', 'medium-ID quirks file for the drive')
    .addOption(jsonOption())
    .description('check every license record on the disc against the drive\'s medium ID')
    .action(async (spec: string, o: { stationKey?: string; deep?: boolean; quirks?: string; json?: boolean }) => {
      const settings = resolveStationSettings(o.stationKey ? { stationKey: o.stationKey } : {});
      const stationKey = settings.stationKeyPath ? readStationKey(settings.stationKeyPath) : undefined;
      const dev = await openDrive(spec, { write: false, ...(o.quirks ? { quirksFile: o.quirks } : {}) });
      try {
        const r = await verifyDisc({ target: dev, ...(stationKey ? { stationKey } : {}), deep: !!o.deep });
        const ok = r.results.every((x) => x.ok);
        const failed = r.results.some((x) => x.status === 'failed');
        if (o.json) printJson({ device: spec, mediumId: r.mediumId, ok, results: r.results });
        else {
          out(`${spec}: medium ID ${r.mediumId}, ${r.results.length} licensed cop${r.results.length === 1 ? 'y' : 'ies'}`);
          const label = { ok: 'ok       ', failed: 'REFUSED  ', unchecked: 'UNCHECKED' } as const;
          for (const x of r.results) out(`  ${label[x.status]} ${x.contentId.padEnd(16)} scheme ${x.scheme.toUpperCase()} slot ${x.slot}: ${x.detail}`);
        }
        // A failed check is a refusal (5); checks that could not be made for want of the key are a usage matter (2).
        if (failed) process.exitCode = ExitCode.REFUSED;
        else if (!ok) process.exitCode = ExitCode.USAGE;
      } finally {
        await dev.close();
      }
    });
}
