import dgram from 'node:dgram';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.ts';
import { ErrorCause } from '../../../src/radius/attributes.ts';
import { loadDictionary } from '../../../src/radius/dictionary.ts';
import { RadiusDisconnector } from '../../../src/radius/disconnect.ts';
import { createRadiusMetrics } from '../../../src/radius/metrics.ts';
import { NasTable, parseNetwork, type NasEntry } from '../../../src/radius/nas-table.ts';
import { decodePacket, encodeResponse, PacketCode } from '../../../src/radius/packet.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';

const dictionary = loadDictionary();
const SECRET = 'coa-secret';
let t: TestDatabase;

/** A NAS CoA listener on its own loopback address, answering as told. */
async function nasListener(address: string, answer: 'ack' | 'silent' | number) {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, address, () => r()));
  const raw: Buffer[] = [];
  socket.on('message', (msg, rinfo) => {
    raw.push(msg);
    const req = decodePacket(msg, { dictionary, secret: SECRET });
    if (answer === 'silent') return;
    const reply = answer === 'ack' ? encodeResponse(req, PacketCode.DisconnectAck, [], SECRET) : encodeResponse(req, PacketCode.DisconnectNak, [['Error-Cause', answer]], SECRET);
    socket.send(reply, rinfo.port, rinfo.address);
  });
  return { port: socket.address().port, raw, close: () => new Promise<void>((r) => socket.close(() => r())) };
}

function entry(id: number, address: string, coaPort: number): NasEntry {
  const network = parseNetwork(address);
  if ('error' in network) throw new Error(network.error);
  return { id, name: `n${id}`, network, secret: Buffer.from(SECRET), area: 'dorm', areaRules: [], coaPort, requireMessageAuthenticator: true };
}

let seq = 0;
async function session(nasIp: string, stopped = false): Promise<number> {
  seq++;
  const r = await t.db
    .insertInto('acct_sessions')
    .values({
      unique_id: `d${seq}-${Math.random()}`,
      session_id: `sess-${seq}`,
      username: `user${seq}`,
      nas_ip: nasIp,
      area: 'dorm',
      framed_ip: '10.0.0.5',
      started_at: new Date(),
      updated_at: new Date(),
      stopped_at: stopped ? new Date() : null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return r.id;
}

function disconnector(table: NasTable, timeoutsMs = [60, 60, 60]) {
  return new RadiusDisconnector({
    db: t.db,
    dictionary,
    log: pino({ level: 'silent' }),
    metrics: createRadiusMetrics(new Registry()),
    now: () => new Date('2026-09-01T08:00:00Z'),
    nasFor: (a) => table.lookup(a),
    timeoutsMs,
  });
}

async function recorded(sessionId: number) {
  return t.db.selectFrom('disconnect_requests').selectAll().where('session_id', '=', sessionId).executeTakeFirstOrThrow();
}

async function stoppedCause(sessionId: number) {
  return (await t.db.selectFrom('acct_sessions').select(['stopped_at', 'terminate_cause']).where('id', '=', sessionId).executeTakeFirstOrThrow()).terminate_cause;
}

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

describe('RadiusDisconnector', () => {
  it('records a Disconnect-NAK with its Error-Cause and leaves the session open', async () => {
    const nas = await nasListener('127.0.0.11', ErrorCause.SessionContextNotRemovable);
    const d = disconnector(new NasTable([entry(1, '127.0.0.11', nas.port)]));
    try {
      const id = await session('127.0.0.11');
      const out = await d.disconnectSession(id, 'staff', 'token:ops#1');
      expect(out).toEqual({ sessionId: id, nasIp: '127.0.0.11', outcome: 'nak', errorCause: 504, attempts: 1 });
      expect(await recorded(id)).toMatchObject({ outcome: 'nak', error_cause: 504, attempts: 1, reason: 'staff', requested_by: 'token:ops#1' });
      expect(await stoppedCause(id)).toBeNull();
    } finally {
      await d.close();
      await nas.close();
    }
  });

  it('stops a session the NAS says it no longer has (NAK, Error-Cause 503)', async () => {
    const nas = await nasListener('127.0.0.12', ErrorCause.SessionContextNotFound);
    const d = disconnector(new NasTable([entry(1, '127.0.0.12', nas.port)]));
    try {
      const id = await session('127.0.0.12');
      expect((await d.disconnectSession(id, 'arrears', null)).outcome).toBe('nak');
      expect(await stoppedCause(id)).toBe('Admin-Reset');
    } finally {
      await d.close();
      await nas.close();
    }
  });

  it('retransmits the identical request and records a timeout after three tries', async () => {
    const nas = await nasListener('127.0.0.13', 'silent');
    const d = disconnector(new NasTable([entry(1, '127.0.0.13', nas.port)]));
    try {
      const id = await session('127.0.0.13');
      const out = await d.disconnectSession(id, 'disabled', 'staff');
      expect(out).toMatchObject({ outcome: 'timeout', attempts: 3, errorCause: null });
      expect(nas.raw).toHaveLength(3);
      expect(nas.raw[1]!.equals(nas.raw[0]!) && nas.raw[2]!.equals(nas.raw[0]!)).toBe(true);
      expect(await recorded(id)).toMatchObject({ outcome: 'timeout', attempts: 3 });
      expect((await recorded(id)).finished_at).not.toBeNull();
    } finally {
      await d.close();
      await nas.close();
    }
  });

  it('disconnects every online session of an account, only in the area asked for', async () => {
    const nas = await nasListener('127.0.0.14', 'ack');
    const d = disconnector(new NasTable([entry(1, '127.0.0.14', nas.port)]));
    try {
      const account = await t.db.insertInto('accounts').values({ username: `acct${Date.now()}`, kind: 'student', password_hash: 'x' }).returning('id').executeTakeFirstOrThrow();
      const ids = [await session('127.0.0.14'), await session('127.0.0.14'), await session('127.0.0.14'), await session('127.0.0.14', true)];
      await t.db.updateTable('acct_sessions').set({ account_id: account.id }).where('id', 'in', ids).execute();
      await t.db.updateTable('acct_sessions').set({ area: 'office' }).where('id', '=', ids[2]!).execute();
      const out = await d.disconnectAccount(account.id, 'arrears', 'settlement', 'dorm');
      expect(out.map((o) => [o.sessionId, o.outcome])).toEqual([
        [ids[0], 'ack'],
        [ids[1], 'ack'],
      ]);
      expect(await stoppedCause(ids[0]!)).toBe('Admin-Reset');
      expect(await stoppedCause(ids[2]!)).toBeNull();
    } finally {
      await d.close();
      await nas.close();
    }
  });

  it('disconnects the sessions of a whole settlement batch with one query, each under its own reason, at most 64 at a time', async () => {
    // A NAS that takes 200 ms to answer, so the number of exchanges in flight can be seen.
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.15', () => r()));
    let inFlight = 0;
    let maxInFlight = 0;
    socket.on('message', (msg, rinfo) => {
      const req = decodePacket(msg, { dictionary, secret: SECRET });
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        socket.send(encodeResponse(req, PacketCode.DisconnectAck, [], SECRET), rinfo.port, rinfo.address);
      }, 200);
    });
    const d = disconnector(new NasTable([entry(1, '127.0.0.15', socket.address().port)]), [2_000]);
    try {
      const batch: { accountId: number; reason: 'arrears' | 'ended' }[] = [];
      const sessionOf = new Map<number, number>();
      for (let i = 0; i < 150; i++) {
        const account = await t.db.insertInto('accounts').values({ username: `bulk${i}-${Date.now()}`, kind: 'student', password_hash: 'x' }).returning('id').executeTakeFirstOrThrow();
        const id = await session('127.0.0.15');
        await t.db.updateTable('acct_sessions').set({ account_id: account.id }).where('id', '=', id).execute();
        sessionOf.set(account.id, id);
        batch.push({ accountId: account.id, reason: i % 2 === 0 ? 'arrears' : 'ended' });
      }
      // An account with no online session is part of the batch too: nothing is sent for it.
      const offline = await t.db.insertInto('accounts').values({ username: `bulk-offline-${Date.now()}`, kind: 'student', password_hash: 'x' }).returning('id').executeTakeFirstOrThrow();
      batch.push({ accountId: offline.id, reason: 'arrears' });

      const out = await d.disconnectAccounts(batch, 'settlement', 'dorm');
      expect(out).toHaveLength(150);
      expect(out.every((o) => o.outcome === 'ack')).toBe(true);
      // Bounded, yet in parallel (each exchange first records its request, so not all 64 need overlap).
      expect(maxInFlight).toBeLessThanOrEqual(64);
      expect(maxInFlight).toBeGreaterThanOrEqual(32);
      const rows = await t.db.selectFrom('disconnect_requests').select(['session_id', 'account_id', 'reason', 'outcome']).where('account_id', 'in', batch.map((b) => b.accountId)).execute();
      expect(rows).toHaveLength(150);
      for (const b of batch.slice(0, 150)) {
        expect(rows.find((r) => r.account_id === b.accountId)).toMatchObject({ session_id: sessionOf.get(b.accountId), reason: b.reason, outcome: 'ack' });
      }
    } finally {
      await d.close();
      await new Promise<void>((r) => socket.close(() => r()));
    }
  });

  it('records an error without sending when no NAS client owns the address or the session already stopped', async () => {
    const d = disconnector(new NasTable([]));
    try {
      const orphan = await session('203.0.113.50');
      expect(await d.disconnectSession(orphan, 'staff', null)).toMatchObject({ outcome: 'error', attempts: 0 });
      const stopped = await session('203.0.113.50', true);
      expect(await d.disconnectSession(stopped, 'staff', null)).toMatchObject({ outcome: 'error', attempts: 0 });
      await expect(d.disconnectSession(99_999_999, 'staff', null)).rejects.toBeInstanceOf(AppError);
    } finally {
      await d.close();
    }
  });
});
