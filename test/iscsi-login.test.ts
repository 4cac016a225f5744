/**
 * lib/iscsi/login.ts: the login phase as a state machine (LoginExchange), one request in, one response out —
 * security stage (AuthMethod None or CHAP), operational stage, full feature phase; and its refusals.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { decodeBinary } from '../lib/iscsi/chap.js';
import { LoginExchange, loginRequestOf, LoginStatus, Stage, type LoginConfig, type LoginRequest, type LoginResponse } from '../lib/iscsi/login.js';
import { decodePdu } from '../lib/iscsi/pdu.js';
import { targetTable, type KeyValues } from '../lib/iscsi/text.js';
import { loginPdu } from './helpers/iscsi-client.js';

const IQN = 'iqn.2026-11.org.example:mo';
const INITIATOR = 'iqn.1994-05.com.example:host';
const SECRET = Buffer.from('twelve-chars-or-more');

function config(chap?: { user: string; secret: Buffer }): LoginConfig {
  return {
    targetName: IQN, portal: '127.0.0.1:3260,1', ...(chap ? { chap } : {}), maxRecvDataSegmentLength: 262144,
    table: targetTable({ maxRecvDataSegmentLength: 262144, maxBurstLength: 1 << 20, firstBurstLength: 262144, maxOutstandingR2T: 1, digests: true }),
  };
}

function req(csg: number, nsg: number, transit: boolean, keys: KeyValues): LoginRequest {
  return { transit, cont: false, csg, nsg: transit ? nsg : 0, versionMax: 0, versionMin: 0, isid: Buffer.from([0x80, 0, 0, 0, 0, 1]), tsih: 0, cid: 0, keys };
}

const names: KeyValues = [['InitiatorName', INITIATOR], ['TargetName', IQN], ['SessionType', 'Normal']];
const keysOf = (r: LoginResponse) => Object.fromEntries(r.keys);

function expectFailure(r: LoginResponse, status: number, x: LoginExchange): void {
  assert.equal(r.status, status, `status 0x${r.status.toString(16).padStart(4, '0')}, want 0x${status.toString(16).padStart(4, '0')}`);
  assert.equal(r.transit, false);
  assert.equal(x.complete, false, 'a failed login leaves no session');
}

/** Runs CHAP up to the challenge; returns the challenge the target sent. */
function chapChallenge(x: LoginExchange, offer = 'CHAP,None'): { id: number; challenge: Buffer } {
  const r1 = x.step(req(Stage.SECURITY, Stage.OPERATIONAL, false, [...names, ['AuthMethod', offer]]));
  assert.equal(r1.status, LoginStatus.SUCCESS);
  assert.equal(keysOf(r1).AuthMethod, 'CHAP');
  assert.equal(r1.transit, false);
  const r2 = x.step(req(Stage.SECURITY, Stage.OPERATIONAL, false, [['CHAP_A', '7,5']]));
  assert.equal(r2.status, LoginStatus.SUCCESS);
  const k = keysOf(r2);
  assert.equal(k.CHAP_A, '5');
  assert.match(k.CHAP_I!, /^\d{1,3}$/);
  assert.match(k.CHAP_C!, /^0x[0-9a-f]+$/);
  const id = Number(k.CHAP_I);
  assert.ok(id >= 0 && id <= 255);
  const challenge = Buffer.from(k.CHAP_C!.slice(2), 'hex');
  assert.ok(challenge.length >= 16, 'a challenge of at least 16 bytes');
  return { id, challenge };
}

const md5 = (id: number, secret: Buffer, challenge: Buffer) => createHash('md5').update(Buffer.from([id])).update(secret).update(challenge).digest();

describe('iSCSI login (lib/iscsi/login.ts)', () => {
  it('normal login: security stage with AuthMethod=None → operational → full feature phase', () => {
    const x = new LoginExchange(config());
    const r1 = x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [...names, ['AuthMethod', 'None']]));
    assert.equal(r1.status, LoginStatus.SUCCESS);
    assert.deepEqual([r1.transit, r1.csg, r1.nsg], [true, Stage.SECURITY, Stage.OPERATIONAL]);
    assert.equal(keysOf(r1).AuthMethod, 'None');
    assert.equal(x.complete, false);
    assert.equal(x.stage, Stage.OPERATIONAL);
    const r2 = x.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [
      ['HeaderDigest', 'CRC32C,None'], ['DataDigest', 'None'], ['MaxRecvDataSegmentLength', '65536'], ['InitialR2T', 'Yes'], ['ImmediateData', 'Yes'],
      ['MaxBurstLength', '262144'], ['FirstBurstLength', '65536'],
    ]));
    assert.equal(r2.status, LoginStatus.SUCCESS);
    assert.deepEqual([r2.transit, r2.csg, r2.nsg], [true, Stage.OPERATIONAL, Stage.FULL_FEATURE]);
    const k = keysOf(r2);
    assert.equal(k.HeaderDigest, 'CRC32C');
    assert.equal(k.DataDigest, 'None');
    assert.equal(k.ImmediateData, 'No');
    assert.equal(k.TargetPortalGroupTag, '1');
    assert.equal(k.MaxRecvDataSegmentLength, '262144', 'the target declares what it accepts');
    assert.equal(x.complete, true);
    assert.equal(x.initiatorName, INITIATOR);
    assert.equal(x.sessionType, 'Normal');
    assert.equal(x.params.headerDigest, true);
    assert.equal(x.params.dataDigest, false);
    assert.equal(x.params.initiatorMaxRecv, 65536);
    assert.equal(x.params.maxBurstLength, 262144);
    assert.equal(x.params.immediateData, false);
  });

  it('a login that does not ask to transit stays in its stage until it does', () => {
    const x = new LoginExchange(config());
    const r1 = x.step(req(Stage.SECURITY, 0, false, [...names, ['AuthMethod', 'None']]));
    assert.deepEqual([r1.status, r1.transit], [LoginStatus.SUCCESS, false]);
    const r2 = x.step(req(Stage.SECURITY, Stage.FULL_FEATURE, true, []));
    assert.deepEqual([r2.status, r2.transit, r2.nsg], [LoginStatus.SUCCESS, true, Stage.FULL_FEATURE]);
    assert.equal(x.complete, true);
  });

  it('skipping the security stage (first request in the operational stage) when the target requires no authentication', () => {
    const x = new LoginExchange(config());
    const r = x.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [...names, ['MaxRecvDataSegmentLength', '8192']]));
    assert.equal(r.status, LoginStatus.SUCCESS);
    assert.deepEqual([r.transit, r.csg, r.nsg], [true, Stage.OPERATIONAL, Stage.FULL_FEATURE]);
    assert.equal(x.complete, true);
    assert.equal(keysOf(r).TargetPortalGroupTag, '1');
  });

  it('decodes a Login Request PDU as built on the wire (0x43, T=1 CSG=1 NSG=3) into the request the exchange takes', () => {
    const isid = Buffer.from([0x80, 1, 2, 3, 4, 5]);
    const wire = loginPdu({ isid, itt: 9, cmdSN: 1, keys: names });
    const p = decodePdu(wire, false, false);
    const r = loginRequestOf(p, [...names]);
    assert.deepEqual([r.transit, r.cont, r.csg, r.nsg, r.tsih, r.versionMin], [true, false, 1, 3, 0, 0]);
    assert.deepEqual(r.isid, isid);
    const x = new LoginExchange(config());
    assert.equal(x.step(r).status, LoginStatus.SUCCESS);
    assert.equal(x.complete, true);
  });

  it('a discovery session needs no TargetName and declares nothing of a normal session', () => {
    const x = new LoginExchange(config());
    const r = x.step(req(Stage.SECURITY, Stage.FULL_FEATURE, true, [['InitiatorName', INITIATOR], ['SessionType', 'Discovery'], ['AuthMethod', 'None']]));
    assert.equal(r.status, LoginStatus.SUCCESS);
    assert.equal(x.complete, true);
    assert.equal(x.sessionType, 'Discovery');
    assert.equal(keysOf(r).TargetPortalGroupTag, undefined);
  });

  it('missing InitiatorName → 0x0207 (missing parameter)', () => {
    const x = new LoginExchange(config());
    expectFailure(x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['TargetName', IQN], ['AuthMethod', 'None']])), LoginStatus.MISSING_PARAMETER, x);
    assert.equal(LoginStatus.MISSING_PARAMETER, 0x0207);
    const y = new LoginExchange(config());
    expectFailure(y.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [['TargetName', IQN]])), 0x0207, y);
    const z = new LoginExchange(config());
    expectFailure(z.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [['InitiatorName', ''], ['TargetName', IQN]])), 0x0207, z);
  });

  it('missing TargetName in a normal session → 0x0207', () => {
    const x = new LoginExchange(config());
    expectFailure(x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['InitiatorName', INITIATOR], ['AuthMethod', 'None']])), 0x0207, x);
    const y = new LoginExchange(config());
    expectFailure(y.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [['InitiatorName', INITIATOR], ['SessionType', 'Normal']])), 0x0207, y);
  });

  it('a TargetName this target does not serve → 0x0203 (not found)', () => {
    const x = new LoginExchange(config());
    expectFailure(x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['InitiatorName', INITIATOR], ['TargetName', IQN + 'x'], ['AuthMethod', 'None']])), 0x0203, x);
    assert.equal(LoginStatus.NOT_FOUND, 0x0203);
    const y = new LoginExchange(config());
    expectFailure(y.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [['InitiatorName', INITIATOR], ['TargetName', 'iqn.2026-11.org.example:other']])), 0x0203, y);
  });

  it('refuses an unsupported version, an unknown session type, duplicate keys and a transition backwards', () => {
    let x = new LoginExchange(config());
    expectFailure(x.step({ ...req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, names), versionMin: 1, versionMax: 1 }), LoginStatus.UNSUPPORTED_VERSION, x);
    x = new LoginExchange(config());
    expectFailure(x.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [['InitiatorName', INITIATOR], ['TargetName', IQN], ['SessionType', 'Weird']])), LoginStatus.SESSION_TYPE_UNSUPPORTED, x);
    x = new LoginExchange(config());
    expectFailure(x.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [...names, ['MaxBurstLength', '512'], ['MaxBurstLength', '1024']])), LoginStatus.INITIATOR_ERROR, x);
    x = new LoginExchange(config());
    expectFailure(x.step(req(Stage.OPERATIONAL, Stage.SECURITY, true, names)), LoginStatus.INITIATOR_ERROR, x);
    x = new LoginExchange(config());
    expectFailure(x.step(req(Stage.SECURITY, 2, true, [...names, ['AuthMethod', 'None']])), LoginStatus.INITIATOR_ERROR, x);
  });

  it('a key named like an Object.prototype member in the login is answered, not an internal error', () => {
    for (const k of ['constructor', '__proto__', 'toString']) {
      const x = new LoginExchange(config());
      const r = x.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [...names, [k, '1']]));
      assert.equal(r.status, LoginStatus.SUCCESS, k);
      assert.equal(keysOf(r)[k], 'NotUnderstood', k);
      const y = new LoginExchange(config());
      assert.doesNotThrow(() => y.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [...names, ['AuthMethod', 'None'], [k, '1']])), k);
    }
  });

  describe('CHAP', () => {
    const chap = { user: 'mo-user', secret: SECRET };

    it('full exchange: AuthMethod=CHAP, CHAP_A=5 → CHAP_I/CHAP_C, CHAP_N + CHAP_R = MD5(id || secret || challenge) → operational → full feature', () => {
      const x = new LoginExchange(config(chap));
      const { id, challenge } = chapChallenge(x);
      const r3 = x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['CHAP_N', 'mo-user'], ['CHAP_R', '0x' + md5(id, SECRET, challenge).toString('hex')]]));
      assert.equal(r3.status, LoginStatus.SUCCESS);
      assert.deepEqual([r3.transit, r3.csg, r3.nsg], [true, Stage.SECURITY, Stage.OPERATIONAL]);
      assert.equal(x.complete, false);
      const r4 = x.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [['HeaderDigest', 'None']]));
      assert.equal(r4.status, LoginStatus.SUCCESS);
      assert.equal(r4.transit, true);
      assert.equal(x.complete, true);
    });

    it('CHAP_R as 0b base64 is accepted; the upper-case 0X prefix too', () => {
      const x = new LoginExchange(config(chap));
      const { id, challenge } = chapChallenge(x);
      const r = x.step(req(Stage.SECURITY, Stage.FULL_FEATURE, true, [['CHAP_N', 'mo-user'], ['CHAP_R', '0b' + md5(id, SECRET, challenge).toString('base64')]]));
      assert.equal(r.status, LoginStatus.SUCCESS);
      assert.equal(x.complete, true);
      const y = new LoginExchange(config(chap));
      const c = chapChallenge(y);
      const r2 = y.step(req(Stage.SECURITY, Stage.FULL_FEATURE, true, [['CHAP_N', 'mo-user'], ['CHAP_R', '0X' + md5(c.id, SECRET, c.challenge).toString('hex').toUpperCase()]]));
      assert.equal(r2.status, LoginStatus.SUCCESS);
      assert.equal(y.complete, true);
    });

    it('decodeBinary reads 0x hex and 0b base64 alike, and nothing else', () => {
      const b = Buffer.from([0, 1, 0xfe, 0xff, 0x10]);
      assert.deepEqual(decodeBinary('0x' + b.toString('hex')), b);
      assert.deepEqual(decodeBinary('0b' + b.toString('base64')), b);
      assert.deepEqual(decodeBinary('0xabc'), Buffer.from([0x0a, 0xbc]));
      for (const bad of ['', '0x', '0b', 'abcd', '0xzz', '0b!!', '12']) assert.equal(decodeBinary(bad), undefined, bad);
    });

    it('a wrong response → 0x0201 (authentication failure)', () => {
      const x = new LoginExchange(config(chap));
      const { id, challenge } = chapChallenge(x);
      const wrong = md5(id, Buffer.from('not-the-secret'), challenge);
      expectFailure(x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['CHAP_N', 'mo-user'], ['CHAP_R', '0x' + wrong.toString('hex')]])), 0x0201, x);
      assert.equal(LoginStatus.AUTH_FAILURE, 0x0201);
      // A response for another identifier, a truncated one, a malformed one.
      for (const bad of ['0x' + md5((id + 1) & 0xff, SECRET, challenge).toString('hex'), '0x' + md5(id, SECRET, challenge).subarray(0, 15).toString('hex'), 'garbage']) {
        const y = new LoginExchange(config(chap));
        chapChallenge(y);
        expectFailure(y.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['CHAP_N', 'mo-user'], ['CHAP_R', bad]])), 0x0201, y);
      }
    });

    it('a wrong user → 0x0201, even with the right response', () => {
      const x = new LoginExchange(config(chap));
      const { id, challenge } = chapChallenge(x);
      expectFailure(x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['CHAP_N', 'someone-else'], ['CHAP_R', '0x' + md5(id, SECRET, challenge).toString('hex')]])), 0x0201, x);
    });

    it('the target requires CHAP and the initiator offers only None → 0x0201; offers nothing → 0x0201; skips the security stage → 0x0201', () => {
      const x = new LoginExchange(config(chap));
      const r = x.step(req(Stage.SECURITY, Stage.OPERATIONAL, false, [...names, ['AuthMethod', 'None']]));
      expectFailure(r, 0x0201, x);
      const y = new LoginExchange(config(chap));
      expectFailure(y.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, names)), 0x0201, y);
      const z = new LoginExchange(config(chap));
      expectFailure(z.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, names)), 0x0201, z);
    });

    it('asking to leave the security stage before the CHAP response is not granted; skipping to the operational stage → 0x0201', () => {
      // RFC 7143 §6.2: the target may refuse the transition (answer T=0) or fail the login; it may not grant it.
      const x = new LoginExchange(config(chap));
      const { id, challenge } = chapChallenge(x);
      const r = x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, []));
      if (r.status === LoginStatus.SUCCESS) {
        assert.equal(r.transit, false, 'T=0: still in the security stage');
        assert.equal(x.stage, Stage.SECURITY);
        assert.equal(x.complete, false);
        // ... and the login goes on with the response.
        const r2 = x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['CHAP_N', 'mo-user'], ['CHAP_R', '0x' + md5(id, SECRET, challenge).toString('hex')]]));
        assert.deepEqual([r2.status, r2.transit], [LoginStatus.SUCCESS, true]);
      } else {
        expectFailure(r, 0x0201, x);
      }
      const y = new LoginExchange(config(chap));
      chapChallenge(y);
      expectFailure(y.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, [])), 0x0201, y);
      const z = new LoginExchange(config(chap));
      chapChallenge(z);
      expectFailure(z.step(req(Stage.SECURITY, Stage.FULL_FEATURE, true, [['CHAP_N', 'mo-user']])), 0x0201, z);
    });

    it('every security request with T=1 (as open-iscsi sends them): the target answers T=0 until CHAP is done, then transits', () => {
      const x = new LoginExchange(config(chap));
      const r1 = x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [...names, ['AuthMethod', 'CHAP,None']]));
      assert.deepEqual([r1.status, r1.transit, keysOf(r1).AuthMethod], [LoginStatus.SUCCESS, false, 'CHAP']);
      const r2 = x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['CHAP_A', '5']]));
      assert.deepEqual([r2.status, r2.transit], [LoginStatus.SUCCESS, false]);
      const k = keysOf(r2);
      const response = md5(Number(k.CHAP_I), SECRET, Buffer.from(k.CHAP_C!.slice(2), 'hex'));
      const r3 = x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['CHAP_N', 'mo-user'], ['CHAP_R', '0x' + response.toString('hex')]]));
      assert.deepEqual([r3.status, r3.transit, r3.nsg], [LoginStatus.SUCCESS, true, Stage.OPERATIONAL]);
      const r4 = x.step(req(Stage.OPERATIONAL, Stage.FULL_FEATURE, true, []));
      assert.deepEqual([r4.status, r4.transit], [LoginStatus.SUCCESS, true]);
      assert.equal(x.complete, true);
    });

    it('a response before any challenge, or with only MD4-like algorithms offered → 0x0201', () => {
      const x = new LoginExchange(config(chap));
      x.step(req(Stage.SECURITY, Stage.OPERATIONAL, false, [...names, ['AuthMethod', 'CHAP']]));
      expectFailure(x.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['CHAP_N', 'mo-user'], ['CHAP_R', '0x' + Buffer.alloc(16).toString('hex')]])), 0x0201, x);
      const y = new LoginExchange(config(chap));
      y.step(req(Stage.SECURITY, Stage.OPERATIONAL, false, [...names, ['AuthMethod', 'CHAP']]));
      const r = y.step(req(Stage.SECURITY, Stage.OPERATIONAL, false, [['CHAP_A', '6,7']]));
      expectFailure(r, 0x0201, y);
    });

    it('each exchange draws a fresh challenge: an old response does not open a new login', () => {
      const x = new LoginExchange(config(chap));
      const first = chapChallenge(x);
      const y = new LoginExchange(config(chap));
      const second = chapChallenge(y);
      assert.ok(!first.challenge.equals(second.challenge));
      const replay = '0x' + md5(first.id, SECRET, first.challenge).toString('hex');
      expectFailure(y.step(req(Stage.SECURITY, Stage.OPERATIONAL, true, [['CHAP_N', 'mo-user'], ['CHAP_R', replay]])), 0x0201, y);
    });
  });
});
