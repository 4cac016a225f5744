/**
 * The house's layout, enforced: every import in lib/ and cli/ runs one way (README "Architecture").
 * A new folder must be given its place here before anything may import it.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

/** What each part of lib/ may import from the rest of lib/ (its own folder is always allowed). */
const ALLOWED: Record<string, string[]> = {
  'errors.ts': [],
  domain: ['errors.ts'],
  crypto: ['errors.ts'],
  formats: ['errors.ts', 'domain'],
  scsi: ['errors.ts'],
  emulator: ['errors.ts', 'scsi'],
  iscsi: ['errors.ts', 'scsi'],
  drives: ['errors.ts', 'scsi', 'emulator', 'iscsi'],
  master: ['errors.ts', 'domain', 'formats', 'crypto', 'scsi'],
  target: ['errors.ts', 'domain', 'formats', 'scsi'],
  center: ['errors.ts', 'domain', 'crypto'],
  protocol: ['errors.ts', 'domain', 'formats', 'crypto', 'scsi', 'master', 'target', 'center'],
  'config.ts': ['errors.ts', 'domain'],
  'progress.ts': [],
  'index.ts': ['*'],
};
/** Node built-ins a part may not touch (formats are pure bytes ↔ values). */
const FORBIDDEN_BUILTINS: Record<string, string[]> = { formats: ['node:fs', 'node:fs/promises', 'node:net', 'node:child_process'] };

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...src.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
}

/** The part of lib/ a path belongs to: its first folder, or the file name for top-level files. */
function partOf(libPath: string): string {
  const rel = relative(join(ROOT, 'lib'), libPath).split(/[\\/]/);
  return rel.length > 1 ? rel[0]! : rel[0]!.replace(/\.js$/, '.ts');
}

describe('architecture: imports run one way', () => {
  it('every lib/ import goes to an allowed layer, and formats touch no file system', () => {
    const bad: string[] = [];
    for (const file of tsFiles(join(ROOT, 'lib'))) {
      const from = partOf(file);
      const allowed = ALLOWED[from];
      if (!allowed) {
        bad.push(`${relative(ROOT, file)}: lib/${from} has no place in the layout table`);
        continue;
      }
      for (const spec of importsOf(file)) {
        if (spec.startsWith('node:') && FORBIDDEN_BUILTINS[from]?.includes(spec)) bad.push(`${relative(ROOT, file)} imports ${spec}`);
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(join(ROOT, 'lib'))) {
          bad.push(`${relative(ROOT, file)} imports ${spec} from outside lib/`);
          continue;
        }
        const to = partOf(target);
        if (to !== from && !allowed.includes('*') && !allowed.includes(to)) bad.push(`${relative(ROOT, file)} (${from}) imports ${spec} (${to})`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('the CLI imports lib/ only through lib/index.ts', () => {
    const bad: string[] = [];
    for (const file of tsFiles(join(ROOT, 'cli'))) {
      for (const spec of importsOf(file)) {
        const target = spec.startsWith('.') ? resolve(dirname(file), spec) : '';
        if (target.startsWith(join(ROOT, 'lib')) && target !== join(ROOT, 'lib', 'index.js')) bad.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('the table itself has no cycle between layers', () => {
    const seen = new Map<string, number>();
    const visit = (n: string, path: string[]): void => {
      if (seen.get(n) === 1) assert.fail(`cycle: ${[...path, n].join(' → ')}`);
      if (seen.get(n) === 2) return;
      seen.set(n, 1);
      for (const m of ALLOWED[n] ?? []) if (m !== '*') visit(m, [...path, n]);
      seen.set(n, 2);
    };
    for (const n of Object.keys(ALLOWED)) visit(n, []);
  });
});
