/**
 * One fuzz input through one target, judged. An input must end in a value or one of the target's typed errors,
 * within the time cap, without a buffer allocation sized by a length field the bytes do not back (every
 * Buffer.alloc / allocUnsafe / allocUnsafeSlow / concat is checked against the input's size while the target
 * runs) and without breaking what the target says about its own reads (violation()). Anything else is a finding,
 * named by a signature (kind, error class, the first frame in the project) so one bug counts once however many
 * inputs reach it. Shared by the runner (fuzz/run.ts, fuzz/worker.ts) and the corpus replay test.
 */
import { createHash } from 'node:crypto';
import { relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type fc from 'fast-check';

export const ROOT = resolve(import.meta.dirname, '..');
export const CORPUS_DIR = resolve(ROOT, 'test', 'fuzz-corpus');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

export interface FuzzTarget {
  name: string;
  /** What is fed to what, one line (printed by --list). */
  about: string;
  /** The typed errors an input may end in; anything else thrown is a finding. Empty: the code is total. */
  allowed: readonly ErrorClass[];
  /** The input generator. Must not depend on setup(): the runner rebuilds inputs from (seed, index) in another thread. */
  input(): fc.Arbitrary<Buffer>;
  /** Runs one input; returns (or resolves to) anything. */
  run(input: Buffer): unknown;
  /** Resources for run() (a temp file...), made once per process. */
  setup?(): void | Promise<void>;
  teardown?(): void;
  /** Largest single buffer an input of `n` bytes may allocate (default 4n + 256 KiB). */
  allocLimit?(n: number): number;
}

export type FindingKind = 'exception' | 'alloc' | 'read' | 'invariant' | 'slow' | 'hang' | 'oom';

export type Outcome =
  | { kind: 'value'; value: unknown; ms: number }
  | { kind: 'typed'; error: Error; ms: number }
  | { kind: 'finding'; finding: FindingKind; signature: string; short: string; text: string; ms: number };

// ---------------------------------------------------------------------------------------------- violations

interface Violation { kind: 'alloc' | 'read' | 'invariant'; detail: string; stack: string }
let current: Violation | undefined;

/** Records that the target broke a rule the harness checks (the first one per input counts). Does not throw. */
export function violation(kind: Violation['kind'], detail: string): void {
  current ??= { kind, detail, stack: new Error(detail).stack ?? '' };
}

export function invariant(ok: boolean, detail: string): void {
  if (!ok) violation('invariant', detail);
}

// ---------------------------------------------------------------------------------------------- allocation guard

/** Thrown by a guarded allocator instead of allocating: the violation is recorded even if the target catches it. */
export class AllocationLimitError extends Error {}

const ORIGINAL = { alloc: Buffer.alloc, allocUnsafe: Buffer.allocUnsafe, allocUnsafeSlow: Buffer.allocUnsafeSlow, concat: Buffer.concat };
let limit = Infinity;
let inputBytes = 0;

function check(n: unknown): void {
  if (typeof n === 'number' && n > limit) {
    violation('alloc', `a ${n}-byte buffer for a ${inputBytes}-byte input (limit ${limit})`);
    throw new AllocationLimitError(`allocation of ${n} bytes over the fuzz limit of ${limit}`);
  }
}

const GUARDED = {
  alloc: (...a: Parameters<typeof Buffer.alloc>) => { check(a[0]); return ORIGINAL.alloc.apply(Buffer, a); },
  allocUnsafe: (...a: Parameters<typeof Buffer.allocUnsafe>) => { check(a[0]); return ORIGINAL.allocUnsafe.apply(Buffer, a); },
  allocUnsafeSlow: (...a: Parameters<typeof Buffer.allocUnsafeSlow>) => { check(a[0]); return ORIGINAL.allocUnsafeSlow.apply(Buffer, a); },
  concat: (list: readonly Uint8Array[], total?: number) => {
    check(total ?? list.reduce((n, b) => n + b.length, 0));
    return ORIGINAL.concat.call(Buffer, list, total);
  },
};

function arm(maxBytes: number, n: number): void {
  limit = maxBytes;
  inputBytes = n;
  Object.assign(Buffer, GUARDED);
}

function disarm(): void {
  limit = Infinity;
  Object.assign(Buffer, ORIGINAL);
}

// ---------------------------------------------------------------------------------------------- running one input

function errorName(e: unknown): string {
  if (e instanceof Error) return e.constructor?.name || e.name;
  return e === null ? 'null' : typeof e;
}

/** The first stack frame in the project outside fuzz/ ('lib/formats/disc-layout.ts:133'), for signatures. */
export function projectFrame(stack: string | undefined): string | undefined {
  for (const line of (stack ?? '').split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?\/[^():]+):(\d+):\d+\)?\s*$/.exec(line);
    if (!m) continue;
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    const rel = relative(ROOT, file);
    if (rel.startsWith('..') || rel.startsWith(`fuzz${sep}`) || rel.includes('node_modules')) continue;
    return `${rel.split(sep).join('/')}:${m[2]}`;
  }
  return undefined;
}

function stackText(stack: string | undefined, lines = 8): string {
  return (stack ?? '').split('\n').slice(0, lines).map((l) => l.replaceAll(`file://${ROOT}/`, '').replaceAll(`${ROOT}/`, '')).join('\n');
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 24) || 'x';
}

function finding(kind: FindingKind, label: string, signature: string, text: string, ms: number): Outcome {
  const short = `${slug(label)}-${createHash('sha256').update(signature).digest('hex').slice(0, 8)}`;
  return { kind: 'finding', finding: kind, signature, short, text, ms };
}

/** A finding the runner makes itself (the worker hung or ran out of memory on this input). */
export function externalFinding(kind: 'hang' | 'oom', target: string, detail: string): Outcome {
  return finding(kind, kind, `${target}|${kind}`, detail, 0);
}

export function defaultAllocLimit(n: number): number {
  return 4 * n + (256 << 10);
}

/** Runs one input through a target and judges the outcome. */
export async function runInput(t: FuzzTarget, input: Buffer, timeCapMs: number): Promise<Outcome> {
  current = undefined;
  let error: unknown;
  let value: unknown;
  let threw = false;
  const t0 = performance.now();
  arm((t.allocLimit ?? defaultAllocLimit)(input.length), input.length);
  try {
    const r = t.run(input);
    value = r instanceof Promise ? await r : r;
  } catch (e) {
    threw = true;
    error = e;
  } finally {
    disarm();
  }
  const ms = performance.now() - t0;
  const v = current as Violation | undefined;
  current = undefined;
  if (v) {
    const frame = projectFrame(v.stack) ?? '?';
    const sig = v.kind === 'invariant' ? `${t.name}|invariant|${v.detail.replace(/\d+/g, 'N')}` : `${t.name}|${v.kind}|${frame}`;
    return finding(v.kind, v.kind, sig, `${v.kind}: ${v.detail}\n${stackText(v.stack).split('\n').slice(1).join('\n')}`, ms);
  }
  if (threw) {
    if (error instanceof Error && t.allowed.some((c) => error instanceof c)) {
      if (ms > timeCapMs) return finding('slow', 'slow', `${t.name}|slow`, `took ${ms.toFixed(0)} ms (cap ${timeCapMs} ms), then threw ${errorName(error)}`, ms);
      return { kind: 'typed', error, ms };
    }
    const stack = error instanceof Error ? error.stack : undefined;
    const frame = projectFrame(stack) ?? (error instanceof Error ? error.message.replace(/\d+/g, 'N').slice(0, 80) : String(error));
    const name = errorName(error);
    const text = error instanceof Error ? stackText(stack) : `threw a non-Error: ${String(error)}`;
    return finding('exception', name, `${t.name}|exception|${name}|${frame}`, text, ms);
  }
  if (ms > timeCapMs) return finding('slow', 'slow', `${t.name}|slow`, `took ${ms.toFixed(0)} ms (cap ${timeCapMs} ms)`, ms);
  return { kind: 'value', value, ms };
}

/**
 * Runs `fn`, swallowing the target's typed errors: lets one input exercise several calls (every VPD parser,
 * every lookup of an ISO volume) while any other exception still ends the input as a finding.
 */
export async function tolerate<T>(allowed: readonly ErrorClass[], fn: () => T | Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    if (allowed.some((c) => e instanceof c)) return undefined;
    throw e;
  }
}

export function tolerateSync<T>(allowed: readonly ErrorClass[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (allowed.some((c) => e instanceof c)) return undefined;
    throw e;
  }
}

/** `<target>-<short>.bin`: the corpus file of a finding. */
export function corpusFileName(target: string, short: string): string {
  return `${target}-${short}.bin`;
}

/** The target a corpus file belongs to: the longest target name followed by '-' that starts the file name. */
export function targetOfFile<T extends { name: string }>(file: string, targets: readonly T[]): T | undefined {
  return [...targets].sort((a, b) => b.name.length - a.name.length).find((t) => file.startsWith(`${t.name}-`));
}

// ---------------------------------------------------------------------------------------------- runner ↔ worker

/** Inputs are generated in batches of this many, each batch from its own seed: input g is (batch ⌊g/BATCH⌋, index g mod BATCH). */
export const BATCH = 256;

/** The fast-check seed of one batch of one target. */
export function batchSeed(seed: number, target: string, batch: number): number {
  return createHash('sha256').update(`${seed}/${target}/${batch}`).digest().readInt32BE(0);
}

/** Shared-memory slots the worker updates per input and the runner's watchdog reads (Int32 indexes, then a Float64). */
export const Ctl = { STATE: 0, BATCH: 1, INDEX: 2, DONE: 3, HITS: 4 } as const;
export const State = { IDLE: 0, RUNNING: 1, SHRINKING: 2, FINISHED: 3 } as const;
export const CTL_INTS = 8;
/** Byte offset of the Float64 holding Date.now() at the start of the current input. */
export const CLOCK_OFFSET = CTL_INTS * 4;
export const SHARED_BYTES = CLOCK_OFFSET + 8;

export interface WorkerData {
  target: string;
  runs: number;
  seed: number;
  timeCapMs: number;
  start: number;
  known: string[];
  shared: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'finding'; final: boolean; signature: string; finding: FindingKind; short: string; text: string; input: Uint8Array; originalBytes: number; g: number }
  | { type: 'done' };
