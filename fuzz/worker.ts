/**
 * One target's fuzzing loop, in a worker thread so the runner can stop an input that hangs (fuzz/run.ts watches
 * the shared clock and terminates the worker). Inputs come from fast-check in seeded batches; the first input of
 * each new finding is posted at once, then shrunk (fast-check replays it by its path and shrinks while the same
 * signature reproduces) and posted again.
 */
import { parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { BATCH, batchSeed, CLOCK_OFFSET, Ctl, CTL_INTS, runInput, State, type FuzzTarget, type Outcome, type WorkerData, type WorkerMessage } from './harness.js';
import { targetByName } from './targets.js';

const SHRINK_MS = 15_000;
/** No generator should make more: a bigger input is a bug in fuzz/, reported as a harness error, not a finding. */
const MAX_INPUT_BYTES = 16 << 20;

const data = workerData as WorkerData;
const ctl = new Int32Array(data.shared, 0, CTL_INTS);
const clock = new Float64Array(data.shared, CLOCK_OFFSET, 1);
const post = (m: WorkerMessage, transfer?: ArrayBuffer[]) => parentPort!.postMessage(m, transfer ?? []);

async function shrink(t: FuzzTarget, arb: fc.Arbitrary<Buffer>, seed: number, index: number, signature: string, original: Buffer): Promise<Buffer> {
  let best = original;
  let first = true;
  let abandon = false;
  Atomics.store(ctl, Ctl.STATE, State.SHRINKING);
  await fc.check(fc.asyncProperty(arb, async (x) => {
    if (abandon) return true;
    if (first) {
      first = false;
      // The replay must give back the very input that failed; if not, keep the original.
      if (!x.equals(original)) { abandon = true; return true; }
    }
    clock[0] = Date.now();
    const o = await runInput(t, x, data.timeCapMs);
    const same = o.kind === 'finding' && o.signature === signature;
    if (same) best = x;
    return !same;
  }), { seed, path: String(index), numRuns: BATCH, interruptAfterTimeLimit: SHRINK_MS });
  return best;
}

function message(o: Extract<Outcome, { kind: 'finding' }>, final: boolean, input: Buffer, originalBytes: number, g: number): WorkerMessage {
  return { type: 'finding', final, signature: o.signature, finding: o.finding, short: o.short, text: o.text, input: new Uint8Array(input), originalBytes, g };
}

async function main(): Promise<void> {
  const t = targetByName(data.target);
  if (!t) throw new Error(`no fuzz target ${data.target}`);
  await t.setup?.();
  try {
    const arb = t.input();
    const seen = new Set(data.known);
    post({ type: 'ready' });
    let g = data.start;
    while (g < data.runs) {
      const batch = Math.floor(g / BATCH);
      const seed = batchSeed(data.seed, t.name, batch);
      const values = fc.sample(arb, { seed, numRuns: Math.min(BATCH, data.runs - batch * BATCH) });
      for (let i = g - batch * BATCH; i < values.length; i++) {
        const input = values[i]!;
        if (input.length > MAX_INPUT_BYTES) throw new Error(`the generator made a ${input.length}-byte input (batch ${batch}, index ${i}): fix fuzz/`);
        ctl[Ctl.BATCH] = batch;
        ctl[Ctl.INDEX] = i;
        clock[0] = Date.now();
        Atomics.store(ctl, Ctl.STATE, State.RUNNING);
        const o = await runInput(t, input, data.timeCapMs);
        Atomics.store(ctl, Ctl.STATE, State.IDLE);
        g = batch * BATCH + i + 1;
        Atomics.store(ctl, Ctl.DONE, g);
        if (o.kind !== 'finding') continue;
        Atomics.add(ctl, Ctl.HITS, 1);
        if (seen.has(o.signature)) continue;
        seen.add(o.signature);
        post(message(o, false, input, input.length, g - 1));
        const small = o.finding === 'slow' ? input : await shrink(t, arb, seed, i, o.signature, input);
        // Describe the finding by what the shrunk input does (same signature: same bug, smaller bytes).
        clock[0] = Date.now();
        const again = small === input ? o : await runInput(t, small, data.timeCapMs);
        Atomics.store(ctl, Ctl.STATE, State.IDLE);
        post(message(again.kind === 'finding' && again.signature === o.signature ? again : o, true, small, input.length, g - 1));
      }
    }
  } finally {
    t.teardown?.();
  }
  Atomics.store(ctl, Ctl.STATE, State.FINISHED);
  post({ type: 'done' });
}

await main();
