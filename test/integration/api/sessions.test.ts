import dgram from 'node:dgram';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCause } from '../../../src/radius/attributes.ts';
import { loadDictionary } from '../../../src/radius/dictionary.ts';
import { RadiusDisconnector } from '../../../src/radius/disconnect.ts';
import { createRadiusMetrics } from '../../../src/radius/metrics.ts';
import { parseNetwork, type NasEntry, type Network } from '../../../src/radius/nas-table.ts';
import { decodePacket, encodeResponse, PacketCode, type RadiusPacket } from '../../../src/radius/packet.ts';
import { auth, PHC, startTestApi, type TestApi } from './harness.ts';

const SECRET = 'coa-secret-for-api-tests';
const dictionary = loadDictionary();

/** A NAS's RFC 5176 port on 127.0.0.1: answers Disconnect-ACK, a NAK with an Error-Cause, or nothing. */
interface TestNas {
  readonly port: number;
  readonly received: RadiusPacket[];
  mode: { kind: 'ack' } | { kind: 'nak'; errorCause: number } | { kind: 'silent' };
  close(): Promise<void>;
}

async function startNas(): Promise<TestNas> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const nas: TestNas = {
    port: socket.address().port,
    received: [],
    mode: { kind: 'ack' },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg, rinfo) => {
    const req = decodePacket(msg, { dictionary, secret: SECRET });
    nas.received.push(req);
    const m = nas.mode;
    if (m.kind === 'silent') return;
    const reply = m.kind === 'ack' ? encodeResponse(req, PacketCode.DisconnectAck, [], SECRET) : encodeResponse(req, PacketCode.DisconnectNak, [['Error-Cause', m.errorCause]], SECRET);
    socket.send(reply, rinfo.port, rinfo.address);
  });
  return nas;
}

let api: TestApi;
let nas: TestNas;
let disconnector: RadiusDisconnector;
let nasId: number;
const owners = new Map<string, NasEntry>();

beforeAll(async () => {
  nas = await startNas();
  api = await startTestApi({
    disconnector: ({ db, now }) =>
      (disconnector = new RadiusDisconnector({
        db,
        dictionary,
        log: pino({ level: 'silent' }),
        metrics: createRadiusMetrics(new Registry()),
        now,
        nasFor: (address) => owners.get(address),
        timeoutsMs: [150, 150],
      })),
  });
  // The NAS is added through the API; the disconnector finds its secret and CoA port as the server would.
  const created = await api.app.inject({
    method: 'POST',
    url: '/api/v1/nas',
    headers: auth(api.tokens.admin),
    payload: { name: 'dorm-bras', address: '127.0.0.1', secret: SECRET, area: 'dorm', coaPort: nas.port },
  });
  nasId = created.json().id;
  owners.set('127.0.0.1', {
    id: nasId,
    name: 'dorm-bras',
    network: parseNetwork('127.0.0.1/32') as Network,
    secret: Buffer.from(SECRET),
    area: 'dorm',
    areaRules: [],
    coaPort: nas.port,
    requireMessageAuthenticator: true,
  });
});
afterAll(async () => {
  await disconnector?.close();
  await nas?.close();
  await api?.close();
});

let seq = 0;
async function onlineSession(username: string, opts: { area?: 'dorm' | 'office'; nasIp?: string; stoppedAt?: Date; startedAt?: Date } = {}): Promise<number> {
  const account = await api.billing.findAccount(username);
  const at = opts.startedAt ?? api.clock.now();
  seq++;
  const row = await api.t.db
    .insertInto('acct_sessions')
    .values({
      unique_id: `u-${seq}`,
      session_id: `S-${seq}`,
      username,
      account_id: account?.id ?? null,
      nas_id: (opts.nasIp ?? '127.0.0.1') === '127.0.0.1' ? nasId : null,
      nas_ip: opts.nasIp ?? '127.0.0.1',
      area: opts.area ?? 'dorm',
      framed_ip: `10.30.0.${seq}`,
      started_at: at,
      updated_at: at,
      stopped_at: opts.stoppedAt ?? null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

const get = (url: string) => api.app.inject({ method: 'GET', url, headers: auth(api.tokens.readonly) });
const kick = (id: number) => api.app.inject({ method: 'POST', url: `/api/v1/sessions/${id}/disconnect`, headers: auth(api.tokens.operator) });

describe('session listing', () => {
  it('lists online sessions by default, past ones on request, filtered by account, NAS, area and time', async () => {
    await api.billing.createAccount({ username: 'lister', kind: 'student', passwordHash: PHC });
    const t0 = api.clock.now();
    const past = await onlineSession('lister', { startedAt: new Date(t0.getTime() - 7_200_000), stoppedAt: new Date(t0.getTime() - 3_600_000) });
    const dorm = await onlineSession('lister');
    const office = await onlineSession('lister', { area: 'office', nasIp: '192.0.2.44' });

    const ids = async (q: string) => (await get(`/api/v1/sessions?username=lister${q}`)).json().items.map((s: { id: number }) => s.id);
    expect(await ids('')).toEqual([office, dorm]);
    expect(await ids('&state=stopped')).toEqual([past]);
    expect(await ids('&state=all')).toEqual([office, dorm, past]);
    expect(await ids('&area=office')).toEqual([office]);
    expect(await ids('&nasIp=192.0.2.44')).toEqual([office]);
    expect(await ids(`&nasId=${nasId}&state=all`)).toEqual([dorm, past]);
    // Up at some instant in [from, to): the stopped session ended before t0.
    expect(await ids(`&state=all&from=${encodeURIComponent(t0.toISOString())}`)).toEqual([office, dorm]);
    expect(await ids(`&state=all&to=${encodeURIComponent(new Date(t0.getTime() - 3_600_000).toISOString())}`)).toEqual([past]);

    const page1 = (await get('/api/v1/sessions?username=lister&state=all&limit=2')).json();
    const page2 = (await get(`/api/v1/sessions?username=lister&state=all&limit=2&cursor=${page1.nextCursor}`)).json();
    expect([...page1.items, ...page2.items].map((s: { id: number }) => s.id)).toEqual([office, dorm, past]);
    expect(page2.nextCursor).toBeNull();
  });

  it('refuses a malformed NAS address or instant with 400', async () => {
    expect((await get('/api/v1/sessions?nasIp=not-an-ip')).statusCode).toBe(400);
    expect((await get('/api/v1/sessions?from=yesterday')).statusCode).toBe(400);
  });
});

describe('kicking a session', () => {
  it('sends a Disconnect-Request to the NAS, reports its ACK, and the session is no longer online', async () => {
    await api.billing.createAccount({ username: 'kicked', kind: 'student', passwordHash: PHC });
    const id = await onlineSession('kicked');
    nas.mode = { kind: 'ack' };
    const before = nas.received.length;
    const r = await kick(id);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ sessionId: id, nasIp: '127.0.0.1', outcome: 'ack', errorCause: null, attempts: 1 });
    const sent = nas.received.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.get('User-Name')).toBe('kicked');
    expect(sent[0]!.get('Acct-Session-Id')).toBe(`S-${seq}`);

    expect((await get(`/api/v1/sessions/${id}`)).json()).toMatchObject({ online: false, terminateCause: 'Admin-Reset' });
    const recorded = await api.t.db.selectFrom('disconnect_requests').selectAll().where('session_id', '=', id).executeTakeFirstOrThrow();
    expect(recorded).toMatchObject({ reason: 'staff', outcome: 'ack', requested_by: expect.stringContaining('test operator') });
    const audit = await api.t.db.selectFrom('audit_log').selectAll().where('action', '=', 'session.disconnect').where('target_id', '=', String(id)).executeTakeFirstOrThrow();
    expect(audit.after).toEqual({ outcome: 'ack', errorCause: null, attempts: 1 });

    const again = await kick(id);
    expect(again.statusCode).toBe(409);
  });

  it('reports a NAK with its Error-Cause, and a NAS that never answers as a timeout', async () => {
    await api.billing.createAccount({ username: 'sticky', kind: 'student', passwordHash: PHC });
    const id = await onlineSession('sticky');
    nas.mode = { kind: 'nak', errorCause: ErrorCause.SessionContextNotRemovable };
    const nak = await kick(id);
    expect(nak.json()).toMatchObject({ outcome: 'nak', errorCause: 504 });
    expect((await get(`/api/v1/sessions/${id}`)).json().online).toBe(true);

    nas.mode = { kind: 'silent' };
    const timeout = await kick(id);
    expect(timeout.statusCode).toBe(200);
    expect(timeout.json()).toMatchObject({ outcome: 'timeout', attempts: 2 });
  });

  it('answers 404 for a session that does not exist', async () => {
    const r = await kick(987_654);
    expect(r.statusCode).toBe(404);
  });
});

describe('disabling an account', () => {
  it('disables the account and disconnects each of its online sessions, reporting every outcome', async () => {
    const acct = await api.billing.createAccount({ username: 'leaver', kind: 'student', passwordHash: PHC });
    const a = await onlineSession('leaver');
    const b = await onlineSession('leaver');
    nas.mode = { kind: 'ack' };
    const r = await api.app.inject({ method: 'POST', url: '/api/v1/accounts/leaver/disable', headers: auth(api.tokens.admin) });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ changed: true, account: { status: 'disabled' }, disconnectError: null });
    expect(body.disconnects.map((d: { sessionId: number; outcome: string }) => [d.sessionId, d.outcome]).sort()).toEqual([
      [a, 'ack'],
      [b, 'ack'],
    ]);
    const reasons = await api.t.db.selectFrom('disconnect_requests').select('reason').where('account_id', '=', acct.id).execute();
    expect(reasons.map((x) => x.reason)).toEqual(['disabled', 'disabled']);
    expect((await get('/api/v1/accounts/leaver')).json()).toMatchObject({ dorm: { status: 'disabled' }, onlineSessions: [] });
    const audit = await api.t.db.selectFrom('audit_log').selectAll().where('action', '=', 'account.disable').where('target_id', '=', 'leaver').executeTakeFirstOrThrow();
    expect(audit).toMatchObject({ before: { status: 'active' }, after: { status: 'disabled' } });
  });
});
