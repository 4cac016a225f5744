/**
 * Deterministic fault injection for the emulated drive. Every random choice comes from one
 * seeded generator, so a failing test replays exactly with the same seed.
 */

export type FaultOp = 'read' | 'write' | 'any';

export type FaultSpec =
  /** MEDIUM ERROR on blocks in [from, to]: read 03/11/00, write 03/0C/00; information = first bad LBA. `skip`: the first N matching commands pass. */
  | { kind: 'medium-error'; op: FaultOp; from: number; to: number; probability?: number; count?: number; skip?: number }
  /** NOT READY 04/01 (becoming ready) for the next `commands` commands and/or `ms` milliseconds. */
  | { kind: 'not-ready'; commands?: number; ms?: number }
  /** The next matching command(s) never answer: the transport reports a timeout after timeoutMs. */
  | { kind: 'timeout'; opcode?: number; count?: number; afterCommands?: number }
  /** Power is cut after `writes` more WRITE commands complete: unsynced data is lost. */
  | { kind: 'power-cut-after-writes'; writes: number }
  /** A lying drive: READ MEDIA SERIAL NUMBER's header claims `length` bytes whatever the disc's medium ID is. */
  | { kind: 'rmsn-length'; length: number }
  /** A lying drive: READs answer GOOD with the last `residual` bytes not transferred (stale), `count` times (default: always). */
  | { kind: 'short-read'; residual: number; count?: number };

/** mulberry32: small, fast, good enough to pick faults reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Active { spec: FaultSpec; remaining: number; until?: number; seen: number }

export class Faults {
  private active: Active[] = [];
  readonly random: () => number;
  constructor(readonly seed = 1, specs: FaultSpec[] = []) {
    this.random = seededRandom(seed);
    for (const s of specs) this.add(s);
  }

  add(spec: FaultSpec): this {
    const a: Active = { spec, remaining: Infinity, seen: 0 };
    if (spec.kind === 'medium-error' && spec.count !== undefined) a.remaining = spec.count;
    if (spec.kind === 'not-ready') {
      a.remaining = spec.commands ?? Infinity;
      if (spec.ms !== undefined) a.until = Date.now() + spec.ms;
      if (spec.commands === undefined && spec.ms === undefined) a.remaining = 1;
    }
    if (spec.kind === 'timeout') a.remaining = spec.count ?? 1;
    if (spec.kind === 'power-cut-after-writes') a.remaining = spec.writes;
    if (spec.kind === 'short-read') a.remaining = spec.count ?? Infinity;
    this.active.push(a);
    return this;
  }

  clear(): void {
    this.active = [];
  }

  get count(): number {
    return this.active.length;
  }

  private prune(): void {
    // Called several times per command: with nothing to drop (the common case: no fault at all) it allocates nothing.
    const n = this.active.length;
    if (n === 0) return;
    let now = 0;
    let stale = false;
    for (let i = 0; i < n && !stale; i++) {
      const a = this.active[i]!;
      stale = a.remaining <= 0 || (a.until !== undefined && a.until <= (now ||= Date.now()));
    }
    if (!stale) return;
    now ||= Date.now();
    // A spell ends when its command count or its time runs out, whichever comes first.
    this.active = this.active.filter((a) => a.remaining > 0 && (a.until === undefined || a.until > now));
  }

  /** A not-ready spell in force? Consumes one command of it. */
  takeNotReady(): boolean {
    this.prune();
    const a = this.active.find((x) => x.spec.kind === 'not-ready');
    if (!a) return false;
    a.remaining--;
    return true;
  }

  /** Should this command hang? */
  takeTimeout(opcode: number): boolean {
    this.prune();
    for (const a of this.active) {
      if (a.spec.kind !== 'timeout') continue;
      if (a.spec.opcode !== undefined && a.spec.opcode !== opcode) continue;
      a.seen++;
      if (a.spec.afterCommands !== undefined && a.seen <= a.spec.afterCommands) continue;
      a.remaining--;
      return true;
    }
    return false;
  }

  /** First LBA in [lba, lba+blocks) that fails for this operation, if any. */
  mediumError(op: 'read' | 'write', lba: number, blocks: number): number | undefined {
    this.prune();
    for (const a of this.active) {
      const s = a.spec;
      if (s.kind !== 'medium-error' || (s.op !== 'any' && s.op !== op)) continue;
      const lo = Math.max(lba, s.from);
      const hi = Math.min(lba + blocks - 1, s.to);
      if (lo > hi) continue;
      if (s.skip !== undefined && a.seen < s.skip) {
        a.seen++;
        continue;
      }
      if (s.probability !== undefined && this.random() >= s.probability) continue;
      a.remaining--;
      return lo;
    }
    return undefined;
  }

  /** The length READ MEDIA SERIAL NUMBER should claim instead of the truth, if a fault says so. */
  rmsnLength(): number | undefined {
    const a = this.active.find((x) => x.spec.kind === 'rmsn-length');
    return a && a.spec.kind === 'rmsn-length' ? a.spec.length : undefined;
  }

  /** Bytes this READ should leave untransferred while answering GOOD (0 = none). */
  takeShortRead(): number {
    this.prune();
    const a = this.active.find((x) => x.spec.kind === 'short-read');
    if (!a || a.spec.kind !== 'short-read') return 0;
    a.remaining--;
    return a.spec.residual;
  }

  /** Counts a completed WRITE; true when the power must be cut now. */
  countWrite(): boolean {
    for (const a of this.active) {
      if (a.spec.kind !== 'power-cut-after-writes') continue;
      a.remaining--;
      if (a.remaining <= 0) {
        this.prune();
        return true;
      }
    }
    return false;
  }
}
