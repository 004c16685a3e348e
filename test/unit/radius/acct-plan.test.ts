import { describe, expect, it } from 'vitest';
import { acctUniqueId, planAccounting, planStatements, type AcctRecord, type SessionRecord } from '../../../src/radius/accounting.ts';
import { loadDictionary } from '../../../src/radius/dictionary.ts';
import { compileAreaRules, parseNetwork, type NasEntry } from '../../../src/radius/nas-table.ts';
import { decodePacket, encodeRequest, PacketCode, type AttributeList } from '../../../src/radius/packet.ts';

const dictionary = loadDictionary();
const secret = 'acct-secret';
const network = parseNetwork('192.0.2.1');
if ('error' in network) throw new Error('bad network');
const nas: NasEntry = {
  id: 3,
  name: 'bras',
  network,
  secret: Buffer.from(secret),
  area: 'dorm',
  areaRules: compileAreaRules([{ attribute: 'NAS-Port-Id', pattern: '^office', area: 'office' }]),
  coaPort: 3799,
  requireMessageAuthenticator: true,
};
const now = new Date('2026-09-01T08:00:00Z');

function plan(attributes: AttributeList) {
  const raw = encodeRequest({ code: PacketCode.AccountingRequest, identifier: 1, attributes, secret, dictionary });
  return planAccounting(decodePacket(raw, { dictionary, secret }), nas, '::ffff:192.0.2.1', now);
}

function session(attributes: AttributeList): SessionRecord {
  const p = plan(attributes);
  if (p.kind !== 'store' || p.record.kind !== 'session') throw new Error(`expected a session record, got ${p.kind}`);
  return p.record;
}

const base: [string, string | number][] = [['User-Name', 's2026001'], ['Acct-Session-Id', 'A1B2'], ['NAS-Port', 12]];

describe('planAccounting', () => {
  it('records a Start at its Event-Timestamp with the source address as the NAS address', () => {
    const r = session([...base, ['Acct-Status-Type', 'Start'], ['Event-Timestamp', 1_788_249_600]]);
    expect(r).toMatchObject({ status: 'start', nasIp: '192.0.2.1', username: 's2026001', sessionId: 'A1B2', area: 'dorm', stoppedAt: null, nasId: 3 });
    expect(r.startedAt?.toISOString()).toBe('2026-09-01T08:00:00.000Z');
    expect(r.eventAt.toISOString()).toBe('2026-09-01T08:00:00.000Z');
  });

  it('dates a packet without Event-Timestamp at now less Acct-Delay-Time', () => {
    const r = session([...base, ['Acct-Status-Type', 'Start'], ['Acct-Delay-Time', 30]]);
    expect(r.eventAt.toISOString()).toBe('2026-09-01T07:59:30.000Z');
  });

  it('folds Gigawords into 64-bit octet counters', () => {
    const r = session([...base, ['Acct-Status-Type', 'Interim-Update'], ['Acct-Input-Octets', 7], ['Acct-Input-Gigawords', 3], ['Acct-Output-Octets', 0xffffffff], ['Acct-Output-Gigawords', 0]]);
    expect(r.inputOctets).toBe(String(3 * 2 ** 32 + 7));
    expect(r.outputOctets).toBe(String(0xffffffff));
  });

  it('caps counters beyond 2^53 instead of storing a value the API cannot read exactly', () => {
    const r = session([...base, ['Acct-Status-Type', 'Interim-Update'], ['Acct-Input-Octets', 1], ['Acct-Input-Gigawords', 0xffffffff]]);
    expect(r.inputOctets).toBe(String(Number.MAX_SAFE_INTEGER));
  });

  it('derives the start of a session from a Stop whose Start was lost', () => {
    const r = session([...base, ['Acct-Status-Type', 'Stop'], ['Acct-Session-Time', 3600], ['Acct-Terminate-Cause', 'Lost-Carrier'], ['Event-Timestamp', 1_788_249_600]]);
    expect(r.startedAt?.toISOString()).toBe('2026-09-01T07:00:00.000Z');
    expect(r.stoppedAt?.toISOString()).toBe('2026-09-01T08:00:00.000Z');
    expect(r.terminateCause).toBe('Lost-Carrier');
  });

  it('applies area rules to accounting as to logins', () => {
    expect(session([...base, ['Acct-Status-Type', 'Start'], ['NAS-Port-Id', 'office-2F']]).area).toBe('office');
  });

  it('prefers NAS-IP-Address over the source address', () => {
    expect(session([...base, ['Acct-Status-Type', 'Start'], ['NAS-IP-Address', '10.0.0.9']]).nasIp).toBe('10.0.0.9');
  });

  it('strips NUL characters PostgreSQL text cannot hold', () => {
    expect(session([['User-Name', 'a\0b'], ['Acct-Session-Id', 'x\0'], ['Acct-Status-Type', 'Start']])).toMatchObject({ username: 'ab', sessionId: 'x' });
  });

  it.each([['Accounting-On'], ['Accounting-Off']])('turns %s into closing the NAS sessions', (type) => {
    expect(plan([['Acct-Status-Type', type], ['NAS-IP-Address', '192.0.2.1']])).toEqual({ kind: 'store', record: { kind: 'nas-state', nasIp: '192.0.2.1', eventAt: now } });
  });

  it('drops a packet without Acct-Status-Type or without Acct-Session-Id', () => {
    expect(plan([['User-Name', 'x'], ['Acct-Session-Id', '1']])).toEqual({ kind: 'drop', reason: 'missing_attribute' });
    expect(plan([['User-Name', 'x'], ['Acct-Status-Type', 'Start']])).toEqual({ kind: 'drop', reason: 'missing_attribute' });
  });

  it('acknowledges status types it does not store', () => {
    expect(plan([...base, ['Acct-Status-Type', 15]])).toEqual({ kind: 'ack' });
  });

  it('keys every packet of one session to one unique id, and other sessions elsewhere', () => {
    const start = session([...base, ['Acct-Status-Type', 'Start']]);
    const stop = session([...base, ['Acct-Status-Type', 'Stop'], ['Acct-Session-Time', 5]]);
    const otherPort = session([['User-Name', 's2026001'], ['Acct-Session-Id', 'A1B2'], ['NAS-Port', 13], ['Acct-Status-Type', 'Start']]);
    expect(start.uniqueId).toBe(stop.uniqueId);
    expect(start.uniqueId).not.toBe(otherPort.uniqueId);
    expect(start.uniqueId).toBe(acctUniqueId({ username: 's2026001', sessionId: 'A1B2', nasIp: '192.0.2.1', nasIdentifier: null, nasPortId: null, nasPort: 12 }));
    expect(start.uniqueId).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('planStatements', () => {
  const rec = (uniqueId: string) => ({ kind: 'session', uniqueId }) as SessionRecord;
  const on: AcctRecord = { kind: 'nas-state', nasIp: '192.0.2.1', eventAt: now };

  it('puts repeated keys into later statements so one upsert never touches a row twice', () => {
    const out = planStatements([rec('a'), rec('b'), rec('a'), rec('a'), rec('c')]);
    expect(out.map((s) => (s.kind === 'upsert' ? s.records.map((r) => r.uniqueId).join('') : 'on'))).toEqual(['abc', 'a', 'a']);
  });

  it('keeps Accounting-On in order between the records around it', () => {
    const out = planStatements([rec('a'), on, rec('b')]);
    expect(out.map((s) => (s.kind === 'upsert' ? s.records.map((r) => r.uniqueId).join('') : 'on'))).toEqual(['a', 'on', 'b']);
  });
});
