/**
 * `mocopy demo`: the whole system on emulated drives, in a temp dir — a publisher builds a master with
 * two programs, a license center and a station are set up, blank MO discs are copied under scheme A
 * and scheme B, both copies open byte-identical, and a bit-for-bit clone onto a disc with another
 * medium ID is refused. Exit 0 only if every step behaved.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { buildMaster, copyLicensed, copyToTargets, createMoImage, UsageError, Ledger, LicenseCenter, LocalCenterClient, MO_HEADER_SIZE, MocopyError, openCopy, openDevice, RefusedError, type Scheme, writeStationKey } from '../../lib/index.js';
import { jsonOption, printJson } from '../common.js';

class Collect extends Writable {
  parts: Buffer[] = [];
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void) { this.parts.push(c); cb(); }
  get bytes() { return Buffer.concat(this.parts); }
}

/** Copies the user data area of one MO image onto another (a bit-for-bit copy of the disc's rewritable part). */
function cloneDataArea(from: string, to: string): void {
  const src = openSync(from, 'r');
  const dst = openSync(to, 'r+');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let pos = MO_HEADER_SIZE; ; pos += buf.length) {
      const n = readSync(src, buf, 0, buf.length, pos);
      if (n <= 0) break;
      writeSync(dst, buf, 0, n, pos);
    }
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

export function register(program: Command): void {
  program.command('demo')
    .description('run the whole licensed-copy system on emulated drives and check every step (exit 0 only if all behaved)')
    .option('--keep <dir>', 'work in DIR and keep the files')
    .option('--size <bytes>', 'size of each demo program', String(3 * 1024 * 1024 + 12345))
    .option('--drives <n>', 'also fill N emulated MO drives at once from one master read (speed model on)', '1')
    .addOption(jsonOption())
    .action(async (o: { keep?: string; size: string; drives: string; json?: boolean }) => {
      const drives = Number(o.drives);
      if (!Number.isInteger(drives) || drives < 1 || drives > 16) throw new UsageError(`--drives must be 1 to 16, not "${o.drives}"`);
      const dir = o.keep ?? mkdtempSync(join(tmpdir(), 'mocopy-demo-'));
      const events: Array<Record<string, unknown>> = [];
      const say = (step: string, message: string) => {
        events.push({ step, message });
        if (o.json) process.stdout.write(JSON.stringify({ event: 'step', step, message }) + '\n');
        else process.stdout.write(`${step.padEnd(6)} ${message}\n`);
      };
      const failures: string[] = [];
      const expect = (ok: boolean, what: string) => {
        if (ok) say('ok', what);
        else { failures.push(what); say('FAIL', what); }
      };
      try {
        const size = Number(o.size);
        say('setup', `working in ${dir}`);
        // Publisher and license center.
        const ledger = join(dir, 'center.db');
        const center = await LicenseCenter.open(ledger);
        const station = await center.addStation('demo station');
        const keyFile = join(dir, 'station.key');
        writeStationKey(keyFile, station);
        say('setup', `license center ${center.centerId} with station ${station.stationId} (key file ${keyFile}, mode 0600)`);
        const programs: Record<string, Buffer> = { 'WORDPRO-1': randomBytes(size), 'ATLAS-95': randomBytes(Math.floor(size / 2)) };
        const contents = [];
        for (const [id, data] of Object.entries(programs)) {
          const src = join(dir, `${id}.bin`);
          writeFileSync(src, data);
          const { contentKey } = await center.registerContent({ contentId: id, name: id, schemes: ['a', 'b'], price: 4900 });
          contents.push({ contentId: id, name: id === 'WORDPRO-1' ? 'Word processor' : 'World atlas', sourcePath: src, schemes: ['a', 'b'] as Scheme[], key: contentKey });
        }
        await center.close();
        const masterIso = join(dir, 'master.iso');
        await buildMaster({ out: masterIso, title: 'MOCOPY_DEMO', contents });
        say('master', `publisher wrote ${masterIso}: SIDi/DID and EK(Data) of ${Object.keys(programs).join(', ')}`);

        const discs: Array<{ scheme: Scheme; contentId: string; image: string; mid: string }> = [
          { scheme: 'a', contentId: 'WORDPRO-1', image: join(dir, 'disc-a.mo'), mid: '4d4f2d4132333435' },
          { scheme: 'b', contentId: 'ATLAS-95', image: join(dir, 'disc-b.mo'), mid: '4d4f2d4236373839' },
        ];
        for (const d of discs) {
          createMoImage(d.image, { mediumId: Buffer.from(d.mid, 'hex'), capacityBytes: 64 << 20, blockSize: 2048, overwrite: true });
          say('disc', `blank MO disc ${d.image} with medium ID ${d.mid} in its non-rewritable zone`);
          say(d.scheme === 'a' ? 'A' : 'B', `copying ${d.contentId} under scheme ${d.scheme.toUpperCase()}`);
          const master = await openDevice(`emu:${masterIso}`);
          const target = await openDevice(`emu:${d.image}`);
          const client = new LocalCenterClient(ledger, station);
          try {
            await copyLicensed({ master, target, contentId: d.contentId, scheme: d.scheme, center: client, stationKey: station, onEvent: (e) => { if (e.message !== 'progress') say(e.step, e.message); } });
            const sink = new Collect();
            await openCopy({ target, contentId: d.contentId, stationKey: station, out: sink, onEvent: (e) => say(e.step, e.message) });
            expect(sink.bytes.equals(programs[d.contentId]!), `opened the scheme-${d.scheme.toUpperCase()} copy of ${d.contentId}: ${sink.bytes.length} bytes, identical to the publisher's program`);
          } finally {
            await master.close();
            await target.close();
            await client.close();
          }
          // A bit-for-bit copy of the disc's data area onto another disc.
          const clone = join(dir, `clone-${d.scheme}.mo`);
          createMoImage(clone, { mediumId: Buffer.from('434c4f4e45303031', 'hex'), capacityBytes: 64 << 20, blockSize: 2048, overwrite: true });
          cloneDataArea(d.image, clone);
          say('clone', `copied the whole data area of ${d.image} bit for bit onto ${clone} (medium ID 434c4f4e45303031)`);
          const cloned = await openDevice(`emu:${clone}`);
          try {
            await openCopy({ target: cloned, contentId: d.contentId, stationKey: station, out: new Collect() });
            expect(false, `the cloned scheme-${d.scheme.toUpperCase()} disc must not open`);
          } catch (e) {
            expect(e instanceof RefusedError && e.code === 'E_WRONG_MEDIUM', `the cloned disc is refused: ${(e as Error).message}`);
          } finally {
            await cloned.close();
          }
        }
        if (drives > 1) {
          // Several MO drives filled at once: the master read once, one license per disc, each at the MO's 5 MB/s.
          const images = Array.from({ length: drives }, (_, i) => {
            const image = join(dir, `drive-${i + 1}.mo`);
            createMoImage(image, { mediumId: Buffer.from(`4d4f2d4e${String(i + 1).padStart(4, '0')}`, 'hex'), capacityBytes: 64 << 20, blockSize: 2048, overwrite: true });
            return image;
          });
          say('drives', `${drives} MO drives, each with a blank disc; one master read feeds them all (scheme B: each disc its own Ku)`);
          const master = await openDevice(`emu:${masterIso}`);
          const targets = await Promise.all(images.map((img) => openDevice(`emu:${img}?speed=mo`)));
          const client = new LocalCenterClient(ledger, station);
          const shown = images.map(() => -1);
          const t0 = Date.now();
          try {
            const outcomes = await copyToTargets({
              master, targets, contentId: 'WORDPRO-1', scheme: 'b', center: client, stationKey: station,
              onEvent: (i, e) => {
                if (e.message !== 'progress' || !e.total) return;
                const q = Math.floor((4 * (e.bytes ?? 0)) / e.total);
                if (q > shown[i]!) { shown[i] = q; say(`MO${i + 1}`, `${String(25 * q).padStart(3)}% of ${e.total} bytes after ${((Date.now() - t0) / 1000).toFixed(1)} s`); }
              },
            });
            for (const [i, r] of outcomes.entries()) {
              const sink = new Collect();
              if (r.ok) await openCopy({ target: targets[i]!, contentId: 'WORDPRO-1', stationKey: station, out: sink });
              expect(r.ok && sink.bytes.equals(programs['WORDPRO-1']!), `drive ${i + 1}: ${r.ok ? `licensed to medium ID ${r.result.mediumId}, opens identical` : String((r as { error: Error }).error)}`);
            }
          } finally {
            await master.close();
            for (const t of targets) await t.close();
            await client.close();
          }
        }
        const l = await Ledger.open(ledger, { create: false });
        const report = await l.report();
        await l.close();
        const want = 2 + (drives > 1 ? drives : 0);
        expect(report.licenses.length === want && report.billing.length === want, `the ledger holds ${report.licenses.length} licenses and ${report.billing.length} billing rows`);
      } catch (e) {
        failures.push((e as Error).message);
        say('FAIL', e instanceof MocopyError ? `${e.message}${e.hint ? ` (hint: ${e.hint})` : ''}` : String((e as Error)?.stack ?? e));
      } finally {
        if (!o.keep) rmSync(dir, { recursive: true, force: true });
      }
      if (o.json) printJson({ event: 'result', ok: failures.length === 0, failures });
      else process.stdout.write(failures.length === 0 ? '\ndemo: every step behaved\n' : `\ndemo: ${failures.length} step(s) failed\n`);
      if (failures.length) process.exitCode = 5;
    });
}
