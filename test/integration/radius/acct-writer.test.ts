import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountingWriter, closeStaleSessions, type SessionRecord } from '../../../src/radius/accounting.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

let n = 0;
function record(over: Partial<SessionRecord> = {}): SessionRecord {
  n++;
  const at = new Date('2026-09-01T08:00:00Z');
  return {
    kind: 'session',
    status: 'start',
    uniqueId: `u${n}-${Math.random()}`,
    sessionId: `s${n}`,
    username: `user${n}`,
    nasId: null as unknown as number,
    nasIp: '192.0.2.1',
    nasIdentifier: null,
    nasPort: n,
    nasPortId: null,
    area: 'dorm',
    framedIp: null,
    callingStationId: null,
    calledStationId: null,
    startedAt: at,
    eventAt: at,
    stoppedAt: null,
    sessionSeconds: 0,
    inputOctets: '0',
    outputOctets: '0',
    inputPackets: 0,
    outputPackets: 0,
    interimSeconds: null,
    terminateCause: null,
    ...over,
  };
}

async function row(uniqueId: string) {
  return t.db.selectFrom('acct_sessions').selectAll().where('unique_id', '=', uniqueId).executeTakeFirst();
}

describe('AccountingWriter', () => {
  it('commits records arriving together in few transactions, resolving each only after its commit', async () => {
    const sizes: number[] = [];
    const w = new AccountingWriter(t.db, { onCommit: (size) => sizes.push(size) });
    const recs = Array.from({ length: 300 }, () => record());
    await Promise.all(
      recs.map(async (r) => {
        await w.submit(r);
        // Acknowledged means stored.
        expect(await row(r.uniqueId)).toBeDefined();
      }),
    );
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(300);
    expect(sizes.length).toBeLessThan(20);
  });

  it('applies Start, Interim-Update and Stop of one session submitted at once, in any order, to one row', async () => {
    const w = new AccountingWriter(t.db);
    const key = `same-${Math.random()}`;
    const t0 = new Date('2026-09-01T08:00:00Z');
    const at = (s: number) => new Date(t0.getTime() + s * 1000);
    await Promise.all([
      w.submit(record({ uniqueId: key, status: 'stop', eventAt: at(900), startedAt: at(0), stoppedAt: at(900), sessionSeconds: 900, inputOctets: '900', terminateCause: 'User-Request' })),
      w.submit(record({ uniqueId: key, status: 'interim', eventAt: at(600), startedAt: at(0), sessionSeconds: 600, inputOctets: '600' })),
      w.submit(record({ uniqueId: key, status: 'start', eventAt: at(0), startedAt: at(0) })),
    ]);
    const r = await row(key);
    expect(r).toMatchObject({ session_seconds: 900, input_octets: 900, terminate_cause: 'User-Request' });
    expect(r!.stopped_at!.getTime()).toBe(at(900).getTime());
    expect(r!.updated_at.getTime()).toBe(at(900).getTime());
  });

  it('stores the good records of a batch and refuses only a record the database rejects', async () => {
    const bad: unknown[] = [];
    const w = new AccountingWriter(t.db, { onBadRecord: (e) => bad.push(e) });
    const good = [record(), record(), record()];
    const broken = record({ nasIp: 'not-an-address' });
    const results = await Promise.allSettled([w.submit(good[0]!), w.submit(broken), w.submit(good[1]!), w.submit(good[2]!)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    for (const g of good) expect(await row(g.uniqueId)).toBeDefined();
    expect(bad).toHaveLength(1);
  });

  it('closes NAS sessions on Accounting-On within the same ordered batch', async () => {
    const w = new AccountingWriter(t.db);
    const before = record({ nasIp: '198.51.100.7', eventAt: new Date('2026-09-01T07:00:00Z'), startedAt: new Date('2026-09-01T07:00:00Z') });
    const after = record({ nasIp: '198.51.100.7', eventAt: new Date('2026-09-01T09:00:00Z'), startedAt: new Date('2026-09-01T09:00:00Z') });
    await Promise.all([w.submit(before), w.submit({ kind: 'nas-state', nasIp: '198.51.100.7', eventAt: new Date('2026-09-01T08:00:00Z') }), w.submit(after)]);
    expect((await row(before.uniqueId))!.terminate_cause).toBe('NAS-Reboot');
    expect((await row(after.uniqueId))!.stopped_at).toBeNull();
  });

  it('drains: resolves once nothing is queued or in flight', async () => {
    const w = new AccountingWriter(t.db);
    const pending = Array.from({ length: 50 }, () => w.submit(record()));
    await w.drain();
    expect(w.queued).toBe(0);
    await Promise.all(pending);
  });
});

describe('closeStaleSessions', () => {
  it("honours each session's own interim interval", async () => {
    const w = new AccountingWriter(t.db);
    const now = new Date('2026-09-02T00:00:00Z');
    const ago = (s: number) => new Date(now.getTime() - s * 1000);
    const shortInterim = record({ eventAt: ago(400), startedAt: ago(400), interimSeconds: 120 });
    const longInterim = record({ eventAt: ago(400), startedAt: ago(400), interimSeconds: 3600 });
    const defaultInterim = record({ eventAt: ago(1801), startedAt: ago(1801) });
    await Promise.all([w.submit(shortInterim), w.submit(longInterim), w.submit(defaultInterim)]);
    await closeStaleSessions(t.db, now, 3, 600);
    expect((await row(shortInterim.uniqueId))!.terminate_cause).toBe('Stale-Session');
    expect((await row(longInterim.uniqueId))!.stopped_at).toBeNull();
    const d = (await row(defaultInterim.uniqueId))!;
    expect(d.terminate_cause).toBe('Stale-Session');
    expect(d.stopped_at!.getTime()).toBe(ago(1801).getTime());
  });
});
