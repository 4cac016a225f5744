/** `mocopy station run`: the duplicator mode for technicians (one line per drive, a tally; `--json` for supervisors). */
import type { Command } from 'commander';
import { Option } from 'commander';
import { runDuplicator, UsageError, validateContentId, type DuplicatorEvent, type Tally } from '../../lib/index.js';
import { jsonOption, stationFlagsOf, withStationDrives } from '../common.js';

interface Line { spec: string; state: string; mediumId: string; pct: number; mbps: number; eta: string; note: string; t0: number; bytes: number }

export function register(program: Command): void {
  const station = program.command('station').description('a copying station with several MO drives');
  station.command('run')
    .argument('<master>', 'the master drive (CD-ROM)')
    .requiredOption('--target <dev>', 'an MO drive to fill (repeat for every drive)', (v: string, p: string[] = []) => [...p, v])
    .requiredOption('--content <id>', 'content ID of the program to copy')
    .option('--center <url>', 'license center service URL')
    .option('--center-db <ledger>', 'local license center ledger (in-process center)')
    .option('--station-key <file>', 'this station\'s key file')
    .addOption(new Option('--scheme <scheme>', 'licensing scheme').choices(['a', 'b', 'A', 'B']))
    .option('--discs <n>', 'stop after this many discs (default: until Ctrl-C)')
    .addOption(jsonOption())
    .description('wait for discs in every MO drive, copy, verify and eject each; Ctrl-C stops safely and prints the tally')
    .action(async (masterSpec: string, o: { target: string[]; content: string; center?: string; centerDb?: string; stationKey?: string; scheme?: string; discs?: string; json?: boolean }) => {
      validateContentId(o.content);
      const maxDiscs = o.discs === undefined ? undefined : Number(o.discs);
      if (maxDiscs !== undefined && (!Number.isSafeInteger(maxDiscs) || maxDiscs < 1)) throw new UsageError(`--discs must be a whole number ≥ 1, not "${o.discs}"`);
      if (new Set(o.target).size !== o.target.length) throw new UsageError('the same target drive is given twice');
      const screen = o.json ? undefined : new Screen(o.target, !!process.stdout.isTTY);
      await withStationDrives(stationFlagsOf(o), masterSpec, o.target, 'stopped by the technician; copies in flight were abandoned and their discs left as they were', async ({ ctx, scheme, master, targets, signal }) => {
        const tally = await runDuplicator({
          master, targets, contentId: o.content, scheme, center: ctx.center, stationKey: ctx.stationKey, signal,
          ...(maxDiscs !== undefined ? { maxDiscs } : {}),
          onEvent: (e) => (o.json ? process.stdout.write(JSON.stringify({ event: 'drive', ...e }) + '\n') : screen!.update(e)),
        });
        if (o.json) process.stdout.write(JSON.stringify({ event: 'tally', ...tally, interrupted: signal.aborted }) + '\n');
        else screen!.finish(tally, signal.aborted);
        // Every disc copied or already licensed: 0; else the code of the kind of trouble seen.
        process.exitCode = tally.failed > 0 ? 3 : tally.refused > 0 ? 5 : 0;
      });
    });
}

/** A drive's name for the screen: the spec without its emulator options, long paths shortened to the file name. */
function label(spec: string): string {
  const bare = spec.replace(/\?(fault|seed|speed|changer|changer-delay)=.*$/, '');
  if (bare.length <= 28) return bare;
  const m = /^([a-z-]+:).*[/\\]([^/\\]+)$/.exec(bare);
  return m ? `${m[1]}…/${m[2]}`.slice(-28) : `…${bare.slice(-27)}`;
}

/**
 * One line per drive and a tally. On a TTY the block is redrawn in place (cursor up, clear line) at most every
 * 200 ms; elsewhere each finished disc and state change is printed once, so a log stays readable.
 */
class Screen {
  private readonly lines: Line[];
  private readonly tally: Tally = { copied: 0, already: 0, refused: 0, failed: 0, billed: 0 };
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(specs: string[], private readonly tty: boolean) {
    this.lines = specs.map((spec) => ({ spec, state: 'waiting', mediumId: '', pct: 0, mbps: 0, eta: '', note: '', t0: 0, bytes: 0 }));
    if (tty) this.draw();
  }

  update(e: DuplicatorEvent): void {
    const l = this.lines[e.drive]!;
    const was = l.state;
    if (e.state === 'copying') {
      if (was !== 'copying') { l.t0 = Date.now(); l.note = ''; }
      l.bytes = e.bytes ?? 0;
      l.pct = e.total ? Math.floor((100 * l.bytes) / e.total) : 0;
      const s = (Date.now() - l.t0) / 1000;
      l.mbps = s > 0 ? l.bytes / 1e6 / s : 0;
      const left = e.total && l.mbps > 0 ? (e.total - l.bytes) / 1e6 / l.mbps : 0;
      l.eta = left > 0 ? `${Math.floor(left / 60)}:${String(Math.round(left % 60)).padStart(2, '0')}` : '';
    }
    if (e.mediumId) l.mediumId = e.mediumId;
    l.state = e.state;
    if (e.outcome) {
      this.tally[e.outcome]++;
      if (e.outcome === 'copied') this.tally.billed++;
      l.note = `${e.outcome}: ${e.message ?? ''}`;
      if (!this.tty) process.stdout.write(`${label(l.spec)}: ${l.note}\n`);
    }
    if (this.tty) this.schedule();
    else if (e.state !== was && e.state !== 'copying' && !e.outcome) process.stdout.write(`${label(l.spec)}: ${e.state}\n`);
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => { this.timer = undefined; this.draw(); }, 200);
  }

  private draw(): void {
    const rows = this.lines.map((l) => {
      const progress = l.state === 'copying' ? `${String(l.pct).padStart(3)}%  ${l.mbps.toFixed(1).padStart(5)} MB/s  ETA ${l.eta || '-'}` : '';
      return `${label(l.spec).padEnd(28)} ${l.state.padEnd(9)} ${(l.mediumId || '-').slice(0, 16).padEnd(16)} ${progress || l.note.slice(0, 60)}`;
    });
    rows.push(this.tallyLine());
    const width = process.stdout.columns ?? 120;
    let text = this.drawn ? `\x1b[${this.drawn}A` : '';
    for (const r of rows) text += `\x1b[2K${r.slice(0, width - 1)}\n`;
    process.stdout.write(text);
    this.drawn = rows.length;
  }

  private tallyLine(): string {
    const t = this.tally;
    return `tally: copied ${t.copied}, already on disc ${t.already}, refused ${t.refused}, failed ${t.failed}; billed ${t.billed}`;
  }

  finish(t: Tally, interrupted: boolean): void {
    if (this.timer) clearTimeout(this.timer);
    Object.assign(this.tally, t);
    if (this.tty) this.draw();
    else process.stdout.write(`${this.tallyLine()}\n`);
    process.stdout.write(`station: ${interrupted ? 'stopped by the technician' : 'done'}: ${t.copied + t.already + t.refused + t.failed} disc(s)\n`);
  }
}
