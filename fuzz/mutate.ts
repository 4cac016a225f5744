/**
 * Structure-aware mutation for the fuzz targets: fast-check arbitraries that take valid samples (built with the
 * project's own encoders) and damage them the way hostile or broken input would — bit flips, interesting values
 * written into the fields a parser trusts (lengths, counts, offsets), inserted / deleted / duplicated / cut bytes —
 * then, for checksummed formats, optionally re-seal the checksum so the damage reaches the parser behind it.
 * JSON-bodied formats get the same treatment one level up: values replaced with hostile ones, keys removed or
 * added (`__proto__` included), arrays blown up.
 */
import fc from 'fast-check';

/** A field a parser reads: where, how wide, which byte order (`both`: ISO 9660 both-endian, LE then BE). */
export interface Field {
  at: number;
  size: 1 | 2 | 3 | 4 | 8;
  le?: boolean;
  both?: boolean;
}

/** A valid input and the fields worth aiming at in it. */
export interface Sample {
  bytes: Buffer;
  fields?: readonly Field[];
}

export const buf = (a: Uint8Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

// ---------------------------------------------------------------------------------------------- byte mutation

export type Op =
  | { k: 'flip'; pos: number; bit: number }
  | { k: 'byte'; pos: number; v: number }
  | { k: 'field'; f: number; mode: number; r: number }
  | { k: 'insert'; pos: number; bytes: Uint8Array }
  | { k: 'delete'; pos: number; len: number }
  | { k: 'dup'; from: number; len: number; to: number; times: number }
  | { k: 'copy'; from: number; len: number; to: number }
  | { k: 'truncate'; pos: number }
  | { k: 'append'; bytes: Uint8Array };

const pos = fc.nat();
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('flip' as const), pos, bit: fc.nat(7) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('byte' as const), pos, v: fc.oneof(fc.constantFrom(0, 1, 0x7f, 0x80, 0xfe, 0xff), fc.nat(255)) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('field' as const), f: fc.nat(), mode: fc.nat(4), r: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('insert' as const), pos, bytes: fc.uint8Array({ maxLength: 48 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('delete' as const), pos, len: fc.oneof(fc.nat(16), fc.nat(4096)) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('dup' as const), from: pos, len: fc.integer({ min: 1, max: 256 }), to: pos, times: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 5, max: 300 })) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('copy' as const), from: pos, len: fc.integer({ min: 1, max: 256 }), to: pos }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('truncate' as const), pos }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
);

const BOUNDARY: Record<number, bigint[]> = {
  1: [0n, 1n, 2n, 0x7fn, 0x80n, 0xfen, 0xffn],
  2: [0n, 1n, 2n, 4n, 8n, 0x7fffn, 0x8000n, 0xfffen, 0xffffn, 511n, 512n, 2047n, 2048n, 2049n, 4096n],
  3: [0n, 1n, 0x7fffffn, 0x800000n, 0xffffffn, 512n, 2048n],
  4: [0n, 1n, 2n, 16n, 0x7fffffffn, 0x80000000n, 0xfffffffen, 0xffffffffn, 2048n, 65520n, 65536n, 0x01000000n],
  8: [0n, 1n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn, 0x1fffffffffffffn, 0x20000000000000n, 0xffffffffn, 0x100000000n],
};

function readField(b: Buffer, f: Field): bigint {
  let v = 0n;
  for (let i = 0; i < f.size; i++) {
    const at = f.le || f.both ? f.at + f.size - 1 - i : f.at + i;
    v = (v << 8n) | BigInt(b[at] ?? 0);
  }
  return v;
}

function writeField(b: Buffer, f: Field, value: bigint, onlyOne: boolean): void {
  const mask = (1n << BigInt(8 * f.size)) - 1n;
  const v = value & mask;
  const put = (at: number, le: boolean) => {
    for (let i = 0; i < f.size; i++) {
      const byte = Number((v >> BigInt(8 * i)) & 0xffn);
      const p = le ? at + i : at + f.size - 1 - i;
      if (p >= 0 && p < b.length) b[p] = byte;
    }
  };
  if (f.both) {
    put(f.at, true);
    if (!onlyOne) put(f.at + f.size, false);
  } else {
    put(f.at, !!f.le);
  }
}

function fieldValue(b: Buffer, f: Field, mode: number, r: number, total: number): bigint {
  const list = BOUNDARY[f.size]!;
  switch (mode) {
    case 0: return list[r % list.length]!;
    case 1: { const cur = readField(b, f); const d = BigInt((r % 33) - 16); return cur + d < 0n ? 0n : cur + d; }
    case 2: { const d = BigInt((r % 9) - 4); const n = BigInt(total) + d; return n < 0n ? 0n : n; }
    case 3: return BigInt(r) * (f.size > 4 ? 0x10001n : 1n);
    default: return readField(b, f) ^ (1n << BigInt(r % (8 * f.size)));
  }
}

/** Applies the operations to a copy of `bytes`; never grows past `maxLen`. */
export function applyOps(bytes: Buffer, ops: readonly Op[], fields: readonly Field[], maxLen: number): Buffer {
  let b = Buffer.from(bytes);
  for (const op of ops) {
    const n = b.length;
    switch (op.k) {
      case 'flip': if (n) b[op.pos % n]! ^= 1 << op.bit; break;
      case 'byte': if (n) b[op.pos % n] = op.v; break;
      case 'field': {
        if (!fields.length) { if (n) b[op.f % n] = op.r & 0xff; break; }
        const f = fields[op.f % fields.length]!;
        writeField(b, f, fieldValue(b, f, op.mode, op.r, n), op.r % 7 === 0);
        break;
      }
      case 'insert': { const p = op.pos % (n + 1); b = Buffer.concat([b.subarray(0, p), op.bytes, b.subarray(p)]); break; }
      case 'delete': { if (!n) break; const p = op.pos % n; b = Buffer.concat([b.subarray(0, p), b.subarray(Math.min(n, p + Math.max(1, op.len)))]); break; }
      case 'dup': {
        if (!n) break;
        const from = op.from % n;
        const piece = Buffer.from(b.subarray(from, Math.min(n, from + op.len)));
        const times = Math.min(op.times, Math.floor((maxLen - n) / Math.max(1, piece.length)));
        if (times <= 0) break;
        const p = op.to % (n + 1);
        b = Buffer.concat([b.subarray(0, p), ...Array.from({ length: times }, () => piece), b.subarray(p)]);
        break;
      }
      case 'copy': {
        if (!n) break;
        const from = op.from % n;
        Buffer.from(b.subarray(from, Math.min(n, from + op.len))).copy(b, op.to % n);
        break;
      }
      case 'truncate': b = b.subarray(0, op.pos % (n + 1)); break;
      case 'append': b = Buffer.concat([b, op.bytes]); break;
    }
    if (b.length > maxLen) b = b.subarray(0, maxLen);
  }
  return b;
}

export interface MutateOptions {
  /** Recomputes a checksum over the mutated bytes, so the damage reaches the parser behind it (done 8 times in 10). */
  reseal?: (b: Buffer) => Buffer;
  maxOps?: number;
  maxLen: number;
}

/** Valid samples, damaged. */
export function mutated(samples: fc.Arbitrary<Sample>, o: MutateOptions): fc.Arbitrary<Buffer> {
  return fc.tuple(samples, fc.array(opArb, { minLength: 1, maxLength: o.maxOps ?? 4 }), fc.nat(9)).map(([s, ops, r]) => {
    const b = applyOps(s.bytes, ops, s.fields ?? [], o.maxLen);
    return o.reseal && r < 8 ? o.reseal(b) : b;
  });
}

/**
 * The usual mix for a byte-input target: valid samples as they are (1), damaged ones (7), plain random bytes (2).
 * `extra` adds target-specific arbitraries with their weights.
 */
export function bytesInput(samples: fc.Arbitrary<Sample>, o: MutateOptions & { randomMax?: number; extra?: Array<{ weight: number; arbitrary: fc.Arbitrary<Buffer> }> }): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 1, arbitrary: samples.map((s) => s.bytes) },
    { weight: 7, arbitrary: mutated(samples, o) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: o.randomMax ?? 256 }).map(buf) },
    ...(o.extra ?? []),
  );
}

// ---------------------------------------------------------------------------------------------- JSON mutation

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Values a validator must not trust. */
export const hostileJson: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<Json>(null, true, false, 0, -1, 1, 0.5, -0.5, 1e21, -1e21, 1e308, 2 ** 53, 2 ** 53 + 2, 2 ** 31, 2 ** 32, 2 ** 32 - 1,
    '', ' ', '0', '-1', 'null', 'true', 'x'.repeat(300), '\u0000', '\ud800', '__proto__', 'constructor', '../../etc/passwd', [], {}, [null], { a: null }, [[[]]]) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json> },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
);

const KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'length', '', 'v', 'version', 'format', 'entries', 'contents', 'scheme', 'type', 'method'];

export interface JsonOp {
  /** Levels to walk down before acting (as far as the value goes), and the child picked at each. */
  depth: number;
  path: number[];
  kind: 'replace' | 'delete' | 'add' | 'wrap' | 'grow' | 'root';
  value: Json;
  key: string;
  times: number;
}

export const jsonOpArb: fc.Arbitrary<JsonOp> = fc.record({
  depth: fc.constantFrom(0, 1, 2, 3, 4, 5),
  path: fc.array(fc.nat(), { minLength: 6, maxLength: 6 }),
  kind: fc.constantFrom('replace', 'replace', 'replace', 'delete', 'delete', 'add', 'wrap', 'grow', 'root'),
  value: hostileJson,
  key: fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })),
  times: fc.oneof(fc.integer({ min: 2, max: 8 }), fc.constantFrom(63, 64, 65, 257, 10_000)),
});

function children(v: Json): Array<string | number> {
  if (Array.isArray(v)) return v.map((_, i) => i);
  if (v && typeof v === 'object') return Object.keys(v);
  return [];
}

function setChild(parent: Json, k: string | number, value: Json | undefined): void {
  if (Array.isArray(parent)) {
    if (value === undefined) parent.splice(k as number, 1);
    else parent[k as number] = value;
  } else if (parent && typeof parent === 'object') {
    if (value === undefined) delete parent[k as string];
    else Object.defineProperty(parent, k as string, { value, enumerable: true, writable: true, configurable: true });
  }
}

/** Applies JSON-level damage to a deep copy of `v`. */
export function mutateJson(v: Json, ops: readonly JsonOp[]): Json {
  const clone = (x: Json): Json => JSON.parse(jsonText(x) || 'null') as Json;
  let root: Json = clone(v);
  // Elements 'grow' may add to one document: enough to pass a 9,999-entry limit once, not to multiply nested arrays.
  let budget = 10_050;
  for (const o of ops) {
    // Values go in as copies: generated values are shared (constants), and a later op must not make a cycle.
    const op = { ...o, value: clone(o.value) };
    if (op.kind === 'root') { root = op.value; continue; }
    // Walk down: the op applies to a child of the node reached.
    let node = root;
    for (const step of op.path.slice(0, op.depth)) {
      // Down through the children that have children of their own (depth 0 is where the leaves at the top get hit).
      const inner = children(node).filter((k) => children((node as Record<string | number, Json>)[k]!).length > 0);
      if (!inner.length) break;
      node = (node as Record<string | number, Json>)[inner[step % inner.length]!]!;
    }
    const ks = children(node);
    const pick = ks.length ? ks[(op.path[op.depth] ?? 0) % ks.length]! : undefined;
    switch (op.kind) {
      case 'replace': if (pick !== undefined) setChild(node, pick, op.value); break;
      case 'delete': if (pick !== undefined) setChild(node, pick, undefined); break;
      case 'add':
        if (Array.isArray(node)) node.push(op.value);
        else if (node && typeof node === 'object') setChild(node, op.key, op.value);
        break;
      case 'wrap': if (pick !== undefined) setChild(node, pick, [(node as Record<string | number, Json>)[pick]!]); break;
      case 'grow': {
        // Blow an array up (contents, entries): many copies of one element.
        const arr = Array.isArray(node) ? node : pick !== undefined && Array.isArray((node as Record<string | number, Json>)[pick]) ? (node as Record<string | number, Json[]>)[pick]! : undefined;
        if (arr && arr.length) {
          const first = arr[0]!;
          const n = Math.min(op.times, budget);
          budget -= n;
          for (let i = 0; i < n; i++) arr.push(first);
        }
        break;
      }
    }
  }
  return root;
}

/** JSON text of `v`; '' for values JSON has no text for. */
export function jsonText(v: Json): string {
  return JSON.stringify(v) ?? '';
}

/**
 * JSON documents for a JSON-reading target: valid ones (1), JSON-level damage (6), a hostile value alone (1),
 * and damaged text (2, byte mutation of valid text, so the JSON parser's errors are reached too).
 */
export function jsonInput(valid: fc.Arbitrary<Json>, maxLen = 64 << 10): fc.Arbitrary<Buffer> {
  const text = valid.map((v) => ({ bytes: Buffer.from(jsonText(v)) }));
  // A document longer than maxLen is cut there (it then fails to parse, which is an input too).
  const cut = (b: Buffer) => (b.length > maxLen ? b.subarray(0, maxLen) : b);
  return fc.oneof(
    { weight: 1, arbitrary: text.map((s) => s.bytes) },
    { weight: 6, arbitrary: fc.tuple(valid, fc.array(jsonOpArb, { minLength: 1, maxLength: 3 })).map(([v, ops]) => cut(Buffer.from(jsonText(mutateJson(v, ops))))) },
    { weight: 1, arbitrary: hostileJson.map((v) => Buffer.from(jsonText(v))) },
    { weight: 2, arbitrary: mutated(text, { maxLen, maxOps: 2 }) },
  );
}
