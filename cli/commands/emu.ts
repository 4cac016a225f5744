/** `mocopy emu create-mo`: blank MO images for the emulator. */
import type { Command } from 'commander';
import { createMoImage, parseSize, UsageError } from '../../lib/index.js';
import { jsonOption, out, parseHex, printJson } from '../common.js';

export function register(program: Command): void {
  const emu = program.command('emu').description('emulated drives and their media');
  emu.command('create-mo')
    .argument('<file>', 'image file to create')
    .requiredOption('--medium-id <hex>', "the disc's factory medium ID (1-64 bytes, hex)")
    .requiredOption('--capacity <size>', 'user capacity, e.g. 640M, 1.3G')
    .option('--block-size <n>', '512 or 2048', '2048')
    .option('--write-protect', 'set the write-protect tab')
    .option('--force', 'replace an existing file')
    .addOption(jsonOption())
    .description('create a blank MO disc image (4096-byte header + user data area; docs/emulator.md)')
    .action((file: string, o: { mediumId: string; capacity: string; blockSize: string; writeProtect?: boolean; force?: boolean; json?: boolean }) => {
      const bs = Number(o.blockSize);
      if (bs !== 512 && bs !== 2048) throw new UsageError('--block-size must be 512 or 2048');
      const capacityBytes = parseSize(o.capacity);
      if (capacityBytes < 1 << 20) throw new UsageError('--capacity must be at least 1M');
      const h = createMoImage(file, { mediumId: parseHex(o.mediumId, '--medium-id'), capacityBytes, blockSize: bs, writeProtected: !!o.writeProtect, overwrite: !!o.force });
      const res = { file, mediumId: h.mediumId.toString('hex'), blockSize: h.blockSize, blocks: h.blockCount, capacityBytes: h.blockCount * h.blockSize, writeProtected: h.writeProtected };
      if (o.json) printJson(res);
      else out(`created ${file}: ${res.blocks} blocks of ${res.blockSize} bytes, medium ID ${res.mediumId}${res.writeProtected ? ', write-protected' : ''}`);
    });
}
