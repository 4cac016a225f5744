/**
 * The login phase of one connection (RFC 7143 §6.3, §11.12-13): security stage (AuthMethod None or CHAP),
 * operational stage (the key table of text.ts), then full feature phase. Each request in, one response out;
 * a login that does not complete leaves nothing behind (the session exists only once `complete` is set).
 */
import { CHAP_MD5, chapVerify, decodeBinary, encodeBinary, newChallenge, type ChapChallenge } from './chap.js';
import type { InitiatorPdu } from './pdu.js';
import { applyAgreed, DEFAULT_PARAMETERS, negotiate, type KeyRow, type KeyValues, type Parameters } from './text.js';

export const Stage = { SECURITY: 0, OPERATIONAL: 1, FULL_FEATURE: 3 } as const;

/** Login response status (class << 8 | detail), §11.13.5. */
export const LoginStatus = {
  SUCCESS: 0x0000,
  INITIATOR_ERROR: 0x0200,
  AUTH_FAILURE: 0x0201,
  NOT_FOUND: 0x0203,
  MISSING_PARAMETER: 0x0207,
  UNSUPPORTED_VERSION: 0x0205,
  SESSION_TYPE_UNSUPPORTED: 0x0209,
  INVALID_DURING_LOGIN: 0x020b,
  TARGET_ERROR: 0x0300,
} as const;

export interface LoginConfig {
  targetName: string;
  /** The address the target gives in SendTargets answers: "host:port,1". */
  portal: string;
  chap?: { user: string; secret: Buffer };
  table: Record<string, KeyRow>;
  /** Our declared MaxRecvDataSegmentLength. */
  maxRecvDataSegmentLength: number;
}

export interface LoginResponse {
  transit: boolean;
  csg: number;
  nsg: number;
  status: number;
  keys: KeyValues;
}

export interface LoginRequest {
  transit: boolean;
  cont: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionMin: number;
  isid: Buffer;
  tsih: number;
  cid: number;
  keys: KeyValues;
}

export function loginRequestOf(p: InitiatorPdu, keys: KeyValues): LoginRequest {
  return {
    transit: !!(p.flags & 0x80), cont: !!(p.flags & 0x40), csg: (p.flags >> 2) & 3, nsg: p.flags & 3,
    versionMax: p.header[2]!, versionMin: p.header[3]!, isid: Buffer.from(p.header.subarray(8, 14)), tsih: p.header.readUInt16BE(14),
    cid: p.header.readUInt16BE(20), keys,
  };
}

export class LoginExchange {
  stage: number = Stage.SECURITY;
  initiatorName: string | undefined;
  sessionType: 'Normal' | 'Discovery' = 'Normal';
  params: Parameters = { ...DEFAULT_PARAMETERS };
  complete = false;
  private authDone = false;
  private chapChallenge: ChapChallenge | undefined;
  private authMethod: 'None' | 'CHAP' | undefined;
  private declaredOurs = false;
  private first = true;

  constructor(private readonly cfg: LoginConfig) {}

  /** One login request; the response to send. A status other than SUCCESS ends the connection after it is sent. */
  step(req: LoginRequest): LoginResponse {
    const fail = (status: number): LoginResponse => ({ transit: false, csg: req.csg, nsg: 0, status, keys: [] });
    if (req.versionMin > 0) return fail(LoginStatus.UNSUPPORTED_VERSION);
    // The initiator may skip the security stage (start in operational); the target then requires no auth.
    const stageOk = req.csg === Stage.SECURITY ? this.stage === Stage.SECURITY : req.csg === Stage.OPERATIONAL && this.stage !== Stage.FULL_FEATURE;
    if (!stageOk) return fail(LoginStatus.INITIATOR_ERROR);
    if (req.transit && (req.nsg === 2 || req.nsg <= req.csg)) return fail(LoginStatus.INITIATOR_ERROR);
    const keys = new Map(req.keys);
    if (keys.size !== req.keys.length) return fail(LoginStatus.INITIATOR_ERROR);
    // Declarations of the first request.
    if (keys.has('InitiatorName')) this.initiatorName = keys.get('InitiatorName');
    if (!this.initiatorName) return fail(LoginStatus.MISSING_PARAMETER);
    const st = keys.get('SessionType');
    if (st !== undefined) {
      if (st !== 'Normal' && st !== 'Discovery') return fail(LoginStatus.SESSION_TYPE_UNSUPPORTED);
      this.sessionType = st;
    }
    if (keys.has('TargetName') && keys.get('TargetName') !== this.cfg.targetName) return fail(LoginStatus.NOT_FOUND);
    if (this.first && this.sessionType === 'Normal' && !keys.has('TargetName')) return fail(LoginStatus.MISSING_PARAMETER);
    this.first = false;
    const answer: KeyValues = [];
    if (req.csg === Stage.SECURITY) {
      const r = this.security(keys, answer);
      if (r !== LoginStatus.SUCCESS) return fail(r);
      for (const k of ['InitiatorName', 'InitiatorAlias', 'SessionType', 'TargetName', 'AuthMethod', 'CHAP_A', 'CHAP_N', 'CHAP_R', 'CHAP_I', 'CHAP_C']) keys.delete(k);
      // Operational keys (and unknown ones, answered NotUnderstood) may already come in the security stage.
      const rest = [...keys].filter(([k]) => !Object.hasOwn(this.cfg.table, k) || this.cfg.table[k]!.phase !== 'security');
      const n = negotiate(rest, this.cfg.table, 'operational');
      if (n.error) return fail(LoginStatus.INITIATOR_ERROR);
      answer.push(...n.answer);
      this.params = applyAgreed(this.params, n.agreed);
      // The initiator may ask to move on at once; until authentication is done the target stays (T=0).
      if (req.transit && this.authDone) this.stage = req.nsg;
      if (answer.length === 0 && req.transit && req.nsg === Stage.OPERATIONAL) this.declareOurs(answer);
    } else if (req.csg === Stage.OPERATIONAL) {
      if (this.cfg.chap && !this.authDone) return fail(LoginStatus.AUTH_FAILURE);
      this.authDone = true;
      this.stage = Stage.OPERATIONAL;
      for (const k of ['InitiatorName', 'InitiatorAlias', 'SessionType', 'TargetName']) keys.delete(k);
      if (keys.has('AuthMethod') || [...keys.keys()].some((k) => k.startsWith('CHAP_'))) return fail(LoginStatus.INITIATOR_ERROR);
      const n = negotiate([...keys], this.cfg.table, 'operational');
      if (n.error) return fail(LoginStatus.INITIATOR_ERROR);
      answer.push(...n.answer);
      this.params = applyAgreed(this.params, n.agreed);
      this.declareOurs(answer);
      if (req.transit) this.stage = req.nsg;
    }
    if (this.stage === Stage.FULL_FEATURE) {
      this.declareOurs(answer);
      this.complete = true;
    }
    return { transit: req.transit && this.stage === req.nsg, csg: req.csg, nsg: req.transit ? req.nsg : 0, status: LoginStatus.SUCCESS, keys: answer };
  }

  /** Our declarative keys, once per login: the initiator must know how much it may send us. */
  private declareOurs(answer: KeyValues): void {
    if (this.declaredOurs) return;
    this.declaredOurs = true;
    if (this.sessionType === 'Discovery') return;
    answer.push(['TargetPortalGroupTag', '1']);
    if (!answer.some(([k]) => k === 'MaxRecvDataSegmentLength')) answer.push(['MaxRecvDataSegmentLength', String(this.cfg.maxRecvDataSegmentLength)]);
  }

  private security(keys: Map<string, string>, answer: KeyValues): number {
    if (this.authDone) return LoginStatus.SUCCESS;
    const offered = keys.get('AuthMethod');
    if (this.authMethod === undefined) {
      if (offered === undefined) {
        // No AuthMethod offered: allowed only when the target requires none.
        if (this.cfg.chap) return LoginStatus.AUTH_FAILURE;
        this.authDone = true;
        return LoginStatus.SUCCESS;
      }
      const methods = offered.split(',');
      const want = this.cfg.chap ? 'CHAP' : 'None';
      // No method both sides accept: the login cannot go on (answering Reject would leave it waiting).
      if (!methods.includes(want)) return LoginStatus.AUTH_FAILURE;
      this.authMethod = want;
      answer.push(['AuthMethod', want]);
      if (want === 'None') {
        this.authDone = true;
        return LoginStatus.SUCCESS;
      }
    }
    // CHAP: A (algorithms) → I, C; then N, R.
    const algorithms = keys.get('CHAP_A');
    if (algorithms !== undefined && !this.chapChallenge) {
      if (!algorithms.split(',').includes(CHAP_MD5)) {
        answer.push(['CHAP_A', 'Reject']);
        return LoginStatus.AUTH_FAILURE;
      }
      this.chapChallenge = newChallenge();
      answer.push(['CHAP_A', CHAP_MD5], ['CHAP_I', String(this.chapChallenge.id)], ['CHAP_C', encodeBinary(this.chapChallenge.challenge)]);
      return LoginStatus.SUCCESS;
    }
    const name = keys.get('CHAP_N');
    const resp = keys.get('CHAP_R');
    if (name !== undefined || resp !== undefined) {
      const r = resp !== undefined ? decodeBinary(resp) : undefined;
      if (!this.chapChallenge || !this.cfg.chap || name !== this.cfg.chap.user || !r || !chapVerify(this.chapChallenge, this.cfg.chap.secret, r)) {
        return LoginStatus.AUTH_FAILURE;
      }
      // Mutual CHAP (the initiator challenging the target) is not offered: the target has no secret to prove.
      if (keys.has('CHAP_I') || keys.has('CHAP_C')) return LoginStatus.AUTH_FAILURE;
      this.authDone = true;
    }
    return LoginStatus.SUCCESS;
  }
}
