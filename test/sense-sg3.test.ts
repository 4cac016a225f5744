/**
 * mocopy's sense decoding against sg3_utils' sg_decode_sense (Debian package sg3-utils), the decoder most logs and
 * bug reports people compare against: every ASC/ASCQ pair 00h/00h..FFh/FFh, and the sense-key-specific field.
 *
 * A pair counts as named by sg3_utils when it prints 'Additional sense: <text>' or calls the pair vendor specific;
 * as named by mocopy when ascName() gives a text. Only pairs sg3_utils names and mocopy does not fail the test;
 * texts that differ in wording (after normalising case, punctuation and hex numbers) are listed in the summary.
 * MOCOPY_SG3_REPORT=<file> writes every pair (sg3_utils' text, mocopy's text) there as TSV.
 *
 * Speed: one sg_decode_sense process per pair would take a minute or more, so up to 8 pairs go in one sense buffer —
 * the first as its own ASC/ASCQ, the rest as "forwarded sense data" descriptors (SPC-5, type 0Ch), each holding a
 * small descriptor-format sense that sg_decode_sense decodes in turn — and the calls run from a few `sh` processes
 * in parallel. sg_decode_sense prints at most 2047 characters; pairs whose text was cut off go round again.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import fc from 'fast-check';
import { ascName } from '../lib/scsi/asc-table.js';
import { parseSense, SenseKey, type SenseData } from '../lib/scsi/sense.js';
import { requireTool } from './helpers/tools.js';

const MARK = '@@mocopy-sg3@@';
const hex2 = (n: number) => n.toString(16).padStart(2, '0');
const pairName = (p: number) => `${hex2(p >> 8).toUpperCase()}/${hex2(p & 0xff).toUpperCase()}`;

/** Runs sg_decode_sense once per argument list (hex bytes), many to an `sh`, a few `sh` at a time; each call's stdout. */
async function decodeMany(calls: string[][]): Promise<string[]> {
  const perShell = 800;
  const jobs: number[][] = [];
  for (let i = 0; i < calls.length; i += perShell) jobs.push(Array.from({ length: Math.min(perShell, calls.length - i) }, (_, k) => i + k));
  const out = new Array<string>(calls.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const script = job.map((i) => `sg_decode_sense ${calls[i]!.join(' ')} 2>&1; echo ${MARK}`).join('\n') + '\n';
      const stdout = await new Promise<string>((resolve, reject) => {
        const sh = spawn('sh', ['-s'], { stdio: ['pipe', 'pipe', 'inherit'] });
        let text = '';
        sh.stdout.setEncoding('latin1');
        sh.stdout.on('data', (d: string) => (text += d));
        sh.on('error', reject);
        sh.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`sh exited ${code}`))));
        sh.stdin.end(script);
      });
      const parts = stdout.split(`${MARK}\n`);
      assert.equal(parts.length, job.length + 1, 'one output per sg_decode_sense call');
      job.forEach((i, k) => (out[i] = parts[k]!));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(8, availableParallelism())) }, worker));
  return out;
}

/** Descriptor-format sense holding `pairs[0]` and, in forwarded sense data descriptors, the rest (key NO SENSE: short output). */
function batchSense(pairs: number[]): string[] {
  const [first, ...rest] = pairs;
  const b = [0x72, 0x00, first! >> 8, first! & 0xff, 0, 0, 0, rest.length * 12];
  // 0Ch, length 10, FSDT 0 / source 0Fh (prints shortest), status GOOD, then 8 bytes of descriptor sense.
  for (const p of rest) b.push(0x0c, 0x0a, 0x0f, 0x00, 0x72, 0x00, p >> 8, p & 0xff, 0, 0, 0, 0);
  return b.map(hex2);
}

/** The ASC/ASCQ line of each sense sg_decode_sense decoded, in order; only lines known to be complete. */
function ascLines(out: string): string[] {
  const lines = out.split('\n');
  const cut = out.length >= 2000; // the 2047-character limit may have cut the last line short
  const texts: string[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.startsWith('Descriptor format,') && !lines[i]!.startsWith('Fixed format,')) continue;
    if (cut && !lines[i + 2]) break;
    texts.push(lines[i + 1]!);
  }
  return texts;
}

/** sg_decode_sense's text for every pair p = ASC << 8 | ASCQ. */
async function sg3AllPairs(): Promise<{ texts: string[]; calls: number; perCall: number }> {
  const texts = new Array<string>(65536);
  // Older sg3_utils do not decode forwarded sense: then one pair a call.
  const probe = ascLines((await decodeMany([batchSense([0x2400, 0x2500])]))[0]!);
  const perCall = probe.length === 2 ? 8 : 1;
  let pending = Array.from({ length: 65536 }, (_, p) => p);
  let calls = 0;
  while (pending.length) {
    const batches: number[][] = [];
    for (let i = 0; i < pending.length; i += perCall) batches.push(pending.slice(i, i + perCall));
    calls += batches.length;
    const outs = await decodeMany(batches.map(batchSense));
    const again: number[] = [];
    batches.forEach((batch, k) => {
      const got = ascLines(outs[k]!);
      assert.ok(got.length > 0, `sg_decode_sense decoded nothing for ${pairName(batch[0]!)}:\n${outs[k]}`);
      batch.forEach((p, j) => (j < got.length ? (texts[p] = got[j]!) : again.push(p)));
    });
    pending = again;
  }
  return { texts, calls, perCall };
}

type Sg3Class = { kind: 'named'; text: string } | { kind: 'vendor'; text: string } | { kind: 'unnamed' };

function classify(line: string): Sg3Class {
  const m = /^Additional sense: (.*)$/.exec(line);
  if (m) return { kind: 'named', text: m[1]! };
  if (/vendor specific/i.test(line)) return { kind: 'vendor', text: line };
  if (/^ASC=\s*[0-9a-f]+, ASCQ=\s*[0-9a-f]+ \(hex\)$/.test(line)) return { kind: 'unnamed' };
  throw new Error(`unexpected sg_decode_sense line: ${JSON.stringify(line)}`);
}

/** Case, punctuation and 0x-prefixed/zero-padded hex numbers normalised away. */
const normalise = (s: string) => s.toUpperCase().replace(/0X0*([0-9A-F]+)/g, '$1').replace(/[^A-Z0-9]+/g, ' ').trim();

/** Sense-key-specific data in a comparable form: sg_decode_sense's output or mocopy's fields. */
function sg3Sks(out: string): string {
  let m = /Progress indication: (\d+)\.(\d+)%/.exec(out);
  if (m) return `progress ${m[1]}.${m[2]}`;
  m = /Actual retry count: (0x[0-9a-f]+|\d+)/.exec(out);
  if (m) return `retry ${Number(m[1])}`;
  m = /Error in (Command|Data parameters): byte (\d+)(?: bit (\d))?/.exec(out);
  if (m) return `field ${m[1] === 'Command' ? 'cdb' : 'data'} ${m[2]}${m[3] !== undefined ? ` bit ${m[3]}` : ''}`;
  m = /Relative to start of (segment descriptor|parameter list), byte (\d+)(?: bit (\d))?/.exec(out);
  if (m) return `segment ${m[1] === 'segment descriptor' ? 'sd' : 'list'} ${m[2]}${m[3] !== undefined ? ` bit ${m[3]}` : ''}`;
  m = /overflow flag is ([01])/.exec(out);
  if (m) return `overflow ${m[1]}`;
  return 'none';
}

function mocopySks(s: SenseData): string {
  if (s.progressPercent !== undefined) return `progress ${s.progressPercent}`;
  if (s.retryCount !== undefined) return `retry ${s.retryCount}`;
  const fp = s.fieldPointer;
  if (fp) return `field ${fp.commandData ? 'cdb' : 'data'} ${fp.field}${fp.bitPointerValid ? ` bit ${fp.bitPointer}` : ''}`;
  const sp = s.segmentPointer;
  if (sp) return `segment ${sp.segmentDescriptor ? 'sd' : 'list'} ${sp.field}${sp.bitPointerValid ? ` bit ${sp.bitPointer}` : ''}`;
  if (s.unitAttentionOverflow !== undefined) return `overflow ${s.unitAttentionOverflow ? 1 : 0}`;
  return 'none';
}

describe('sense decoding against sg3_utils sg_decode_sense', () => {
  it('names every ASC/ASCQ pair sg3_utils names (all 65,536 pairs)', async function () {
    requireTool(this, 'sg_decode_sense', 'sg3-utils');
    this.timeout(120_000);
    const t0 = Date.now();
    const { texts, calls, perCall } = await sg3AllPairs();

    // The batched (forwarded sense) decoding gives what a plain fixed-format sense gives.
    const spot = [0x0000, 0x2400, 0x2490, 0x4010, 0x4d05, 0x5d6c, 0x5dff, 0x5e00, 0x7005, 0x8001, 0xffff];
    const single = await decodeMany(spot.map((p) => ['70', '00', '05', '00', '00', '00', '00', '0a', '00', '00', '00', '00', hex2(p >> 8), hex2(p & 0xff), '00', '00', '00', '00']));
    spot.forEach((p, k) => assert.equal(ascLines(single[k]!)[0], texts[p], `${pairName(p)} batched vs alone`));

    let sg3Named = 0, sg3Vendor = 0, mocopyNamed = 0, both = 0, sameWording = 0;
    const missing: string[] = [];
    const mocopyOnly: string[] = [];
    const wording: Array<{ p: number; sg3: string; mocopy: string }> = [];
    const report: string[] = ['pair\tsg3_utils\tmocopy'];
    for (let p = 0; p < 65536; p++) {
      const c = classify(texts[p]!);
      const mine = ascName(p >> 8, p & 0xff);
      report.push(`${pairName(p)}\t${texts[p]}\t${mine ?? ''}`);
      if (c.kind === 'named') sg3Named++;
      if (c.kind === 'vendor') sg3Vendor++;
      if (mine !== undefined) mocopyNamed++;
      if (c.kind === 'unnamed') {
        if (mine !== undefined) mocopyOnly.push(`${pairName(p)} ${mine}`);
        continue;
      }
      if (mine === undefined) {
        missing.push(`${pairName(p)} ${texts[p]}`);
        continue;
      }
      both++;
      const same = c.kind === 'named' ? normalise(c.text) === normalise(mine) : /VENDOR SPECIFIC/.test(mine);
      if (same) sameWording++;
      else wording.push({ p, sg3: c.text, mocopy: mine });
    }

    // Wording differences grouped by ASC and by text with the ASCQ written as NN.
    const groups = new Map<string, { asc: number; lo: number; hi: number; n: number; sg3: string; mocopy: string }>();
    for (const d of wording) {
      const q = d.p & 0xff;
      const nn = (s: string) => s.replace(new RegExp(`0x0*${q.toString(16)}\\b`, 'i'), '0xNN');
      const key = `${d.p >> 8}|${nn(d.sg3)}|${nn(d.mocopy)}`;
      const g = groups.get(key);
      if (g) { g.n++; g.hi = q; } else groups.set(key, { asc: d.p >> 8, lo: q, hi: q, n: 1, sg3: nn(d.sg3), mocopy: nn(d.mocopy) });
    }
    const lines = [
      `sg_decode_sense compared on all 65536 ASC/ASCQ pairs in ${calls} calls (${perCall} pairs a call), ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      `  sg3_utils names ${sg3Named + sg3Vendor} (${sg3Named} by text, ${sg3Vendor} as vendor specific); mocopy names ${mocopyNamed}`,
      `  named by both: ${both}; same wording: ${sameWording}; wording differs: ${wording.length}`,
      `  named by sg3_utils, not by mocopy: ${missing.length}`,
      ...missing.slice(0, 50).map((m) => `    ${m}`),
      `  named by mocopy, not by sg3_utils (newer T10 entries): ${mocopyOnly.length}`,
      ...mocopyOnly.slice(0, 50).map((m) => `    ${m}`),
      `  wording differences (${groups.size} group${groups.size === 1 ? '' : 's'}):`,
      ...[...groups.values()].map((g) => `    ${hex2(g.asc).toUpperCase()}/${hex2(g.lo).toUpperCase()}${g.n > 1 ? `..${hex2(g.hi).toUpperCase()} (${g.n} pairs)` : ''}: sg3_utils "${g.sg3}" / mocopy "${g.mocopy}"`),
    ];
    console.log(lines.join('\n'));
    if (process.env.MOCOPY_SG3_REPORT) writeFileSync(process.env.MOCOPY_SG3_REPORT, report.join('\n') + '\n');
    assert.deepEqual(missing, [], 'pairs sg3_utils names and mocopy does not');
  });

  it('decodes the sense-key-specific field as sg3_utils does (fixed and descriptor format)', async function () {
    requireTool(this, 'sg_decode_sense', 'sg3-utils');
    this.timeout(60_000);
    const keys = [SenseKey.NO_SENSE, SenseKey.RECOVERED_ERROR, SenseKey.NOT_READY, SenseKey.MEDIUM_ERROR, SenseKey.HARDWARE_ERROR,
      SenseKey.ILLEGAL_REQUEST, SenseKey.UNIT_ATTENTION, SenseKey.COPY_ABORTED, SenseKey.DATA_PROTECT, SenseKey.ABORTED_COMMAND];
    const arb = fc.tuple(fc.constantFrom(...keys), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffff }), fc.boolean());
    const cases = [
      ...fc.sample(arb, { numRuns: 400, seed: 20240611 }),
      // SKSV set with every flag, and the ends of the 16-bit field.
      ...keys.flatMap((k) => [[k, 0xff, 0xffff, false], [k, 0x80, 0, true], [k, 0xc8, 0x8000, false], [k, 0xa7, 1, true]] as Array<[number, number, number, boolean]>),
    ];
    const buffers = cases.map(([key, b0, word, descriptor]) => {
      const sks = [b0, word >> 8, word & 0xff];
      return Buffer.from(descriptor
        ? [0x72, key, 0x00, 0x00, 0, 0, 0, 8, 0x02, 0x06, 0, 0, ...sks, 0]
        : [0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x00, 0x00, 0, ...sks]);
    });
    const outs = await decodeMany(buffers.map((b) => [...b].map(hex2)));
    const bad: string[] = [];
    buffers.forEach((b, i) => {
      const theirs = sg3Sks(outs[i]!);
      const ours = mocopySks(parseSense(b)!);
      const tp = /^progress (.*)$/.exec(theirs), op = /^progress (.*)$/.exec(ours);
      // sg3_utils truncates the percentage to hundredths (n * 100 / 65536, remainder / 656).
      const same = tp && op ? Math.abs(Number(tp[1]) - Number(op[1])) < 0.02 : theirs === ours;
      if (!same) bad.push(`${b.toString('hex')}: sg3_utils ${theirs} / mocopy ${ours}`);
    });
    console.log(`sense-key-specific field: ${buffers.length} sense buffers compared with sg_decode_sense, ${bad.length} differ`);
    assert.deepEqual(bad, []);
  });
});
