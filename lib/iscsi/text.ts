/**
 * iSCSI text keys (RFC 7143 §6, §13), pure: `key=value` pairs separated by NUL, and the negotiation of one
 * offer against this target's table. One row per key: how it negotiates, its default, its range, its phase.
 */

export type KeyValues = Array<[string, string]>;

export function decodeText(data: Buffer): KeyValues {
  const out: KeyValues = [];
  for (const part of data.toString('utf8').split('\0')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    out.push(eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)]);
  }
  return out;
}

export function encodeText(kv: KeyValues): Buffer {
  return Buffer.from(kv.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

type Rule =
  | { kind: 'bool-or' | 'bool-and'; ours: boolean }
  | { kind: 'min' | 'max'; ours: number; lo: number; hi: number }
  | { kind: 'list'; supported: string[] }
  | { kind: 'declare' }
  /** Answered with a fixed value whatever is offered (e.g. markers are not supported: No). */
  | { kind: 'fixed'; value: string };

export interface KeyRow {
  rule: Rule;
  /** login: only in the login phase (security or operational); any: also in full feature (text). */
  phase: 'security' | 'operational' | 'any';
  scope: 'session' | 'connection';
}

/** What this target is willing to do; `targetTable(opts)` fills in the configurable values. */
export interface TargetLimits {
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
  /** Digest algorithms offered (None always). */
  digests: boolean;
}

export function targetTable(l: TargetLimits): Record<string, KeyRow> {
  const digests = l.digests ? ['CRC32C', 'None'] : ['None'];
  return {
    HeaderDigest: { rule: { kind: 'list', supported: digests }, phase: 'operational', scope: 'connection' },
    DataDigest: { rule: { kind: 'list', supported: digests }, phase: 'operational', scope: 'connection' },
    MaxConnections: { rule: { kind: 'min', ours: 1, lo: 1, hi: 65535 }, phase: 'operational', scope: 'session' },
    InitialR2T: { rule: { kind: 'bool-or', ours: false }, phase: 'operational', scope: 'session' },
    // Offered immediate data, the target says No: every write's data then comes in Data-Out PDUs whose DataSN and
    // offsets are checked. (An initiator that does not negotiate the key keeps the RFC default, Yes, and immediate
    // data is accepted within the same limits.)
    ImmediateData: { rule: { kind: 'bool-and', ours: false }, phase: 'operational', scope: 'session' },
    MaxRecvDataSegmentLength: { rule: { kind: 'declare' }, phase: 'any', scope: 'connection' },
    MaxBurstLength: { rule: { kind: 'min', ours: l.maxBurstLength, lo: 512, hi: 0xffffff }, phase: 'operational', scope: 'session' },
    FirstBurstLength: { rule: { kind: 'min', ours: l.firstBurstLength, lo: 512, hi: 0xffffff }, phase: 'operational', scope: 'session' },
    DefaultTime2Wait: { rule: { kind: 'max', ours: 2, lo: 0, hi: 3600 }, phase: 'operational', scope: 'session' },
    DefaultTime2Retain: { rule: { kind: 'min', ours: 0, lo: 0, hi: 3600 }, phase: 'operational', scope: 'session' },
    MaxOutstandingR2T: { rule: { kind: 'min', ours: l.maxOutstandingR2T, lo: 1, hi: 65535 }, phase: 'operational', scope: 'session' },
    DataPDUInOrder: { rule: { kind: 'bool-or', ours: true }, phase: 'operational', scope: 'session' },
    DataSequenceInOrder: { rule: { kind: 'bool-or', ours: true }, phase: 'operational', scope: 'session' },
    ErrorRecoveryLevel: { rule: { kind: 'min', ours: 0, lo: 0, hi: 2 }, phase: 'operational', scope: 'session' },
    IFMarker: { rule: { kind: 'fixed', value: 'No' }, phase: 'operational', scope: 'connection' },
    OFMarker: { rule: { kind: 'fixed', value: 'No' }, phase: 'operational', scope: 'connection' },
    IFMarkInt: { rule: { kind: 'fixed', value: 'Irrelevant' }, phase: 'operational', scope: 'connection' },
    OFMarkInt: { rule: { kind: 'fixed', value: 'Irrelevant' }, phase: 'operational', scope: 'connection' },
    // Declarative keys the target takes note of (names, aliases, session type) are handled by the login itself.
    InitiatorName: { rule: { kind: 'declare' }, phase: 'security', scope: 'session' },
    InitiatorAlias: { rule: { kind: 'declare' }, phase: 'security', scope: 'session' },
    TargetName: { rule: { kind: 'declare' }, phase: 'security', scope: 'session' },
    SessionType: { rule: { kind: 'declare' }, phase: 'security', scope: 'session' },
  };
}

const NUMBER = /^(0|[1-9]\d{0,9}|0x[0-9a-fA-F]{1,8})$/;

export interface NegotiationResult {
  /** What to send back, in the order the keys came. */
  answer: KeyValues;
  /** The values in force after this exchange (negotiated or declared by the initiator). */
  agreed: Record<string, string>;
  /** Why the negotiation cannot go on (a key in the wrong phase, a duplicate key), if so. */
  error?: string;
}

/**
 * Negotiates one batch of keys. Unknown keys answer NotUnderstood, values out of range or malformed Reject
 * (RFC 7143 §6.2). Keys of another phase are an initiator error.
 */
export function negotiate(offer: KeyValues, table: Record<string, KeyRow>, phase: 'security' | 'operational' | 'full'): NegotiationResult {
  const answer: KeyValues = [];
  const agreed: Record<string, string> = {};
  const seen = new Set<string>();
  for (const [key, value] of offer) {
    if (seen.has(key)) return { answer, agreed, error: `key ${key} offered twice` };
    seen.add(key);
    const row = Object.hasOwn(table, key) ? table[key] : undefined;
    if (!row) {
      // AuthMethod and CHAP_* belong to the login's security stage, handled there; X- keys are private extensions.
      answer.push([key, 'NotUnderstood']);
      continue;
    }
    if (phase === 'full' && row.phase !== 'any') return { answer, agreed, error: `key ${key} may not be renegotiated in full feature phase` };
    const r = row.rule;
    switch (r.kind) {
      case 'declare':
        agreed[key] = value;
        break;
      case 'fixed':
        answer.push([key, r.value]);
        break;
      case 'bool-or':
      case 'bool-and': {
        if (value !== 'Yes' && value !== 'No') { answer.push([key, 'Reject']); break; }
        const theirs = value === 'Yes';
        const v = r.kind === 'bool-or' ? theirs || r.ours : theirs && r.ours;
        agreed[key] = v ? 'Yes' : 'No';
        answer.push([key, agreed[key]!]);
        break;
      }
      case 'min':
      case 'max': {
        if (!NUMBER.test(value)) { answer.push([key, 'Reject']); break; }
        const n = Number(value);
        if (n < r.lo || n > r.hi) { answer.push([key, 'Reject']); break; }
        const v = r.kind === 'min' ? Math.min(n, r.ours) : Math.max(n, r.ours);
        agreed[key] = String(v);
        answer.push([key, agreed[key]!]);
        break;
      }
      case 'list': {
        const choice = value.split(',').find((x) => r.supported.includes(x));
        if (choice === undefined) { answer.push([key, 'Reject']); break; }
        agreed[key] = choice;
        answer.push([key, choice]);
        break;
      }
    }
  }
  return { answer, agreed };
}

/** Session and connection parameters in force, with RFC defaults for what was not negotiated. */
export interface Parameters {
  headerDigest: boolean;
  dataDigest: boolean;
  initialR2T: boolean;
  immediateData: boolean;
  /** The most the initiator accepts in one data segment (its declaration). */
  initiatorMaxRecv: number;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
}

export const DEFAULT_PARAMETERS: Parameters = {
  headerDigest: false, dataDigest: false, initialR2T: true, immediateData: true, initiatorMaxRecv: 8192,
  maxBurstLength: 262144, firstBurstLength: 65536, maxOutstandingR2T: 1,
};

export function applyAgreed(p: Parameters, agreed: Record<string, string>): Parameters {
  const q = { ...p };
  const num = (k: string) => (agreed[k] !== undefined ? Number(agreed[k]) : undefined);
  if (agreed.HeaderDigest) q.headerDigest = agreed.HeaderDigest === 'CRC32C';
  if (agreed.DataDigest) q.dataDigest = agreed.DataDigest === 'CRC32C';
  if (agreed.InitialR2T) q.initialR2T = agreed.InitialR2T === 'Yes';
  if (agreed.ImmediateData) q.immediateData = agreed.ImmediateData === 'Yes';
  const mrdsl = num('MaxRecvDataSegmentLength');
  if (mrdsl !== undefined && NUMBER.test(agreed.MaxRecvDataSegmentLength!) && mrdsl >= 512 && mrdsl <= 0xffffff) q.initiatorMaxRecv = mrdsl;
  q.maxBurstLength = num('MaxBurstLength') ?? q.maxBurstLength;
  q.firstBurstLength = num('FirstBurstLength') ?? q.firstBurstLength;
  q.maxOutstandingR2T = num('MaxOutstandingR2T') ?? q.maxOutstandingR2T;
  if (q.firstBurstLength > q.maxBurstLength) q.firstBurstLength = q.maxBurstLength;
  return q;
}
