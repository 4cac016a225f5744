/** `mocopy master build`: the publisher's side — encrypt programs, write the master ISO, register contents. */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { buildMaster, createProgress, isScheme, LicenseCenter, type Scheme, UsageError, validateContentId } from '../../lib/index.js';
import { jsonOption, out, printJson } from '../common.js';

export function parseSchemes(text: string): Scheme[] {
  const list = text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (list.length === 0 || !list.every(isScheme)) throw new UsageError(`schemes must be a, b or a,b — not "${text}"`);
  return [...new Set(list)] as Scheme[];
}

/** ID=FILE[:NAME], the FILE part may itself hold no ':' (Windows drive letters are handled). */
export function parseContentSpec(text: string, defaultSchemes: Scheme[]): { contentId: string; sourcePath: string; name: string; schemes: Scheme[] } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`--content must be ID=FILE[:NAME], not "${text}"`);
  const contentId = validateContentId(text.slice(0, eq));
  let rest = text.slice(eq + 1);
  let name: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > 1) { name = rest.slice(colon + 1); rest = rest.slice(0, colon); }
  if (!rest) throw new UsageError(`--content ${text}: no file`);
  return { contentId, sourcePath: rest, name: name || basename(rest), schemes: defaultSchemes };
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0; // buildMaster reports the missing file with its content ID
  }
}

export function register(program: Command): void {
  const master = program.command('master').description("the publisher's master CD-ROM");
  master.command('build')
    .requiredOption('--out <iso>', 'master ISO image to write')
    .requiredOption('--content <ID=FILE[:NAME]...>', 'a program to put on the master (repeat for several)', (v: string, prev: string[] = []) => [...prev, v])
    .requiredOption('--center-db <ledger>', 'the license center ledger that registers each content and its key')
    .option('--schemes <list>', 'schemes each content may be copied under: a, b or a,b', 'a,b')
    .option('--price <cents>', 'price billed per licensed copy, in cents', '0')
    .option('--title <text>', 'volume title', 'MOCOPY_MASTER')
    .addOption(jsonOption())
    .description('encrypt programs, write the master ISO and register the contents with the license center')
    .action(async (o: { out: string; content: string[]; centerDb: string; schemes: string; price: string; title: string; json?: boolean }) => {
      const schemes = parseSchemes(o.schemes);
      const price = Number(o.price);
      if (!Number.isInteger(price) || price < 0) throw new UsageError('--price must be a non-negative integer (cents)');
      const specs = o.content.map((c) => parseContentSpec(c, schemes));
      const center = await LicenseCenter.open(o.centerDb);
      let result;
      try {
        const contents = [];
        for (const s of specs) contents.push({ ...s, key: (await center.registerContent({ contentId: s.contentId, name: s.name, schemes: s.schemes, price })).contentKey });
        const progress = createProgress({ json: !!o.json, quiet: !!o.json });
        progress.begin('encrypting', specs.reduce((n, sp) => n + fileSize(sp.sourcePath), 0));
        result = await buildMaster({ out: o.out, title: o.title, contents, onProgress: (b) => progress.update(b) });
        progress.done();
      } finally {
        await center.close();
      }
      if (o.json) return printJson({ master: o.out, sectors: result.totalSectors, contents: result.catalog.contents });
      out(`wrote ${o.out} (${result.totalSectors} sectors) with ${result.catalog.contents.length} program(s), registered in ${center.ledger.name}:`);
      for (const c of result.catalog.contents) out(`  ${c.contentId.padEnd(16)} ${String(c.size).padStart(12)} bytes  schemes ${c.schemes.join(',').toUpperCase()}  ${c.name}`);
    });
}
