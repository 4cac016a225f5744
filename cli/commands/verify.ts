/** `mocopy verify TARGET`: every license record on the disc checked against the drive's medium ID. */
import type { Command } from 'commander';
import { ExitCode, openDevice, readStationKey, resolveStationSettings, verifyDisc } from '../../lib/index.js';
import { jsonOption, out, printJson } from '../common.js';

export function register(program: Command): void {
  program.command('verify')
    .argument('<target>', 'the drive holding licensed copies')
    .option('--station-key <file>', "this station's key file (needed for scheme-A records)")
    .option('--deep', 'also read every copy back and check its hash')
    .option('--quirks <file>', 'medium-ID quirks file for the drive')
    .addOption(jsonOption())
    .description('check every license record on the disc against the drive\'s medium ID')
    .action(async (spec: string, o: { stationKey?: string; deep?: boolean; quirks?: string; json?: boolean }) => {
      const settings = resolveStationSettings(o.stationKey ? { stationKey: o.stationKey } : {});
      const stationKey = settings.stationKeyPath ? readStationKey(settings.stationKeyPath) : undefined;
      const dev = await openDevice(spec, { write: false, ...(o.quirks ? { quirksFile: o.quirks } : {}) });
      try {
        const r = await verifyDisc({ target: dev, ...(stationKey ? { stationKey } : {}), deep: !!o.deep });
        const ok = r.results.every((x) => x.ok);
        if (o.json) printJson({ device: spec, mediumId: r.mediumId, ok, results: r.results });
        else {
          out(`${spec}: medium ID ${r.mediumId}, ${r.results.length} licensed cop${r.results.length === 1 ? 'y' : 'ies'}`);
          for (const x of r.results) out(`  ${x.ok ? 'ok     ' : 'REFUSED'} ${x.contentId.padEnd(16)} scheme ${x.scheme.toUpperCase()} slot ${x.slot}: ${x.detail}`);
        }
        if (!ok) process.exitCode = ExitCode.REFUSED;
      } finally {
        await dev.close();
      }
    });
}
