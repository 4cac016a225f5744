/**
 * `npm run fuzz [-- options]`: every fuzz target (fuzz/targets.ts) for a number of inputs each, one worker thread
 * per target, `--jobs` targets at a time. An input must end in a value or the target's typed error within the
 * time cap (fuzz/harness.ts says what else counts as a finding). Each new finding is printed with its exception
 * and written, shrunk, to test/fuzz-corpus/<target>-<short>.bin, where test/fuzz-corpus.test.ts replays it from
 * then on. A target passes with 0 findings; the exit code is 1 when one fails.
 *
 *   --runs N          inputs per target (default 20000, the CI smoke)
 *   --target NAME     only this target (repeatable, or comma-separated); --list shows them
 *   --seed S          the seed (default: random, printed); the same seed and runs give the same inputs
 *   --time-cap-ms MS  per-input time cap (default 1000); an input still running at twice the cap is stopped
 *   --jobs J          targets fuzzed at once (default: the number of CPUs)
 *   --corpus DIR      where findings are written (default test/fuzz-corpus)
 *
 * MOCOPY_FUZZ_SELFTEST=1 adds targets that hang, allocate by a length field, run slow and throw, to check the
 * runner itself (use with --corpus in a temp dir).
 *
 * fast-check is the engine: structure-aware generators over valid samples, not coverage-guided. (Jazzer.js, the
 * coverage-guided engine on npm, was considered and left out: see fuzz/README.md.)
 */
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import {
  BATCH, batchSeed, CLOCK_OFFSET, CORPUS_DIR, corpusFileName, Ctl, CTL_INTS, externalFinding, ROOT, SHARED_BYTES, State,
  type FindingKind, type FuzzTarget, type WorkerData, type WorkerMessage,
} from './harness.js';
import { runnableTargets } from './targets.js';

interface Options { runs: number; targets: FuzzTarget[]; seed: number; timeCapMs: number; jobs: number; corpus: string }

function usage(message?: string): never {
  if (message) process.stderr.write(`fuzz: ${message}\n`);
  process.stderr.write('usage: npm run fuzz -- [--runs N] [--target NAME]... [--seed S] [--time-cap-ms MS] [--jobs J] [--corpus DIR] [--list]\n');
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o = { runs: 20_000, names: [] as string[], seed: randomInt(2 ** 31), timeCapMs: 1000, jobs: availableParallelism(), corpus: CORPUS_DIR };
  const int = (flag: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n) || n < min) usage(`${flag} needs an integer ≥ ${min}, not ${v ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--runs': o.runs = int(flag, value(), 1); break;
      case '--target': o.names.push(...(value() ?? usage('--target needs a name')).split(',').filter(Boolean)); break;
      case '--seed': o.seed = int(flag, value(), -(2 ** 31)); break;
      case '--time-cap-ms': o.timeCapMs = int(flag, value(), 1); break;
      case '--jobs': o.jobs = int(flag, value(), 1); break;
      case '--corpus': o.corpus = resolve(value() ?? usage('--corpus needs a directory')); break;
      case '--list':
        for (const t of runnableTargets()) process.stdout.write(`${t.name.padEnd(20)} ${t.about}\n`);
        process.exit(0);
        break;
      case '--help': case '-h': usage();
      default: usage(`unknown option ${a}`);
    }
  }
  const targets = o.names.length ? o.names.map((n) => runnableTargets().find((t) => t.name === n) ?? usage(`no target ${n} (--list shows them)`)) : [...runnableTargets()];
  return { runs: o.runs, targets: [...new Set(targets)], seed: o.seed, timeCapMs: o.timeCapMs, jobs: o.jobs, corpus: o.corpus };
}

interface Result { name: string; inputs: number; findings: number; hits: number; seconds: number; error?: string }

const TSX_API = import.meta.resolve('tsx/esm/api');
const WORKER = new URL('./worker.ts', import.meta.url).href;

function spawn(data: WorkerData): Worker {
  // Worker threads do not inherit tsx from --import: register it, then load the worker module.
  const boot = `import(${JSON.stringify(TSX_API)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER)}); });`;
  return new Worker(boot, { eval: true, workerData: data, resourceLimits: { maxOldGenerationSizeMb: 2048 } });
}

function fuzzTarget(t: FuzzTarget, o: Options): Promise<Result> {
  const shared = new SharedArrayBuffer(SHARED_BYTES);
  const ctl = new Int32Array(shared, 0, CTL_INTS);
  const clock = new Float64Array(shared, CLOCK_OFFSET, 1);
  const t0 = performance.now();
  const killAfter = Math.max(2 * o.timeCapMs, o.timeCapMs + 1000);
  /** Findings by signature: the latest (shrunk once final) message. */
  const found = new Map<string, Extract<WorkerMessage, { type: 'finding' }>>();
  const reported = new Set<string>();

  const report = (m: Extract<WorkerMessage, { type: 'finding' }>) => {
    if (reported.has(m.signature)) return;
    reported.add(m.signature);
    mkdirSync(o.corpus, { recursive: true });
    const file = join(o.corpus, corpusFileName(t.name, m.short));
    const known = existsSync(file);
    if (!known) writeFileSync(file, m.input);
    const size = m.input.length === m.originalBytes ? `${m.input.length} bytes` : `${m.input.length} bytes, shrunk from ${m.originalBytes}`;
    process.stdout.write(`\nFINDING ${t.name} (${m.finding}) at input ${m.g} of seed ${o.seed}\n${m.text.replace(/^/gm, '    ')}\n`
      + `    input (${size}) ${known ? 'is already in' : 'written to'} ${file.startsWith(ROOT) ? relative(ROOT, file) : file}\n`
      + `    again: npm run fuzz -- --target ${t.name} --seed ${o.seed} --runs ${m.g + 1}\n\n`);
  };

  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (error?: string) => {
      clearInterval(timer);
      for (const m of found.values()) report(m);
      resolve({ name: t.name, inputs: Atomics.load(ctl, Ctl.DONE), findings: found.size, hits: Atomics.load(ctl, Ctl.HITS), seconds: (performance.now() - t0) / 1000, ...(error ? { error } : {}) });
    };
    const start = (from: number) => {
      const w = spawn({ target: t.name, runs: o.runs, seed: o.seed, timeCapMs: o.timeCapMs, start: from, known: [...found.keys()], shared });
      let done = false;
      let ready = false;
      let killed: 'hang' | undefined;
      let failure: Error | undefined;
      w.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') ready = true;
        else if (m.type === 'done') done = true;
        else {
          found.set(m.signature, m);
          if (m.final) report(m);
        }
      });
      w.on('error', (e) => { failure = e; });
      clearInterval(timer);
      timer = setInterval(() => {
        const s = Atomics.load(ctl, Ctl.STATE);
        if ((s === State.RUNNING || s === State.SHRINKING) && Date.now() - clock[0]! > killAfter && !killed) {
          killed = 'hang';
          void w.terminate();
        }
      }, 50);
      w.on('exit', () => {
        if (done) return finish();
        const state = Atomics.load(ctl, Ctl.STATE);
        const oom = (failure as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
        if (!ready && !oom) return finish(`the worker failed before its first input: ${failure?.stack ?? 'it exited'}`);
        if (state === State.RUNNING && (killed || oom)) {
          // The input the worker was on: rebuilt from its batch seed and index.
          const batch = Atomics.load(ctl, Ctl.BATCH);
          const index = Atomics.load(ctl, Ctl.INDEX);
          const input = fc.sample(t.input(), { seed: batchSeed(o.seed, t.name, batch), numRuns: index + 1 })[index]!;
          const kind: FindingKind = oom ? 'oom' : 'hang';
          const f = externalFinding(kind as 'hang' | 'oom', t.name, oom ? 'the worker ran out of memory on this input' : `still running after ${killAfter} ms (time cap ${o.timeCapMs} ms)`);
          if (f.kind === 'finding' && !found.has(f.signature)) {
            found.set(f.signature, { type: 'finding', final: true, signature: f.signature, finding: kind, short: f.short, text: f.text, input, originalBytes: input.length, g: batch * BATCH + index });
            report(found.get(f.signature)!);
          }
          Atomics.add(ctl, Ctl.HITS, 1);
          const next = batch * BATCH + index + 1;
          Atomics.store(ctl, Ctl.DONE, next);
          Atomics.store(ctl, Ctl.STATE, State.IDLE);
          return next < o.runs ? start(next) : finish();
        }
        if (state === State.SHRINKING && (killed || oom)) {
          // A shrink candidate hung: the finding stands as found (posted before shrinking), unshrunk.
          Atomics.store(ctl, Ctl.STATE, State.IDLE);
          const next = Atomics.load(ctl, Ctl.DONE);
          return next < o.runs ? start(next) : finish();
        }
        finish(`the worker stopped: ${failure?.stack ?? 'it exited'}`);
      });
    };
    start(0);
  });
}

function line(r: Result): string {
  const rate = r.seconds > 0 ? Math.round(r.inputs / r.seconds) : 0;
  return `${r.name.padEnd(20)} ${String(r.inputs).padStart(9)} inputs ${String(r.findings).padStart(4)} findings ${r.seconds.toFixed(1).padStart(8)} s ${String(rate).padStart(8)} inputs/s`
    + (r.findings ? `  (${r.hits} inputs hit them)` : '') + (r.error ? `  HARNESS ERROR: ${r.error}` : '');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  process.stdout.write(`fuzz: ${o.targets.length} targets × ${o.runs} inputs, seed ${o.seed}, time cap ${o.timeCapMs} ms, ${Math.min(o.jobs, o.targets.length)} at a time\n`);
  const queue = [...o.targets];
  const results: Result[] = [];
  await Promise.all(Array.from({ length: Math.min(o.jobs, queue.length) }, async () => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      const r = await fuzzTarget(t, o);
      results.push(r);
      process.stdout.write(`${line(r)}\n`);
    }
  }));
  const failed = results.filter((r) => r.findings > 0 || r.error);
  if (o.targets.length > 1) {
    process.stdout.write(`\nsummary (seed ${o.seed}):\n`);
    for (const t of o.targets) process.stdout.write(`  ${line(results.find((r) => r.name === t.name)!)}\n`);
  }
  process.stdout.write(`total ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write(`${results.length - failed.length} passed, ${failed.length} failed\n`);
  process.exitCode = failed.length ? 1 : 0;
}

await main();
