/** `mocopy catalog MASTER`: what a master offers, read through the CD-ROM drive. */
import type { Command } from 'commander';
import { openMaster } from '../../lib/index.js';
import { jsonOption, openDrive, out, printJson } from '../common.js';

export function register(program: Command): void {
  program.command('catalog')
    .argument('<master>', 'the master drive: emu:MASTER.iso, /dev/sr0, ...')
    .description('list the programs on a master')
    .addOption(jsonOption())
    .action(async (spec: string, o: { json?: boolean }) => {
      const dev = await openDrive(spec, { write: false });
      try {
        const m = await openMaster(dev);
        if (o.json) return printJson({ master: spec, volumeId: m.volume.volumeId, title: m.catalog.title, contents: m.catalog.contents });
        out(`${spec}: ${m.catalog.title} (${m.catalog.contents.length} program(s))`);
        for (const c of m.catalog.contents) out(`  ${c.contentId.padEnd(16)} ${String(c.size).padStart(12)} bytes  schemes ${c.schemes.join(',').toUpperCase()}  ${c.name}`);
      } finally {
        await dev.close();
      }
    });
}
