import net from 'node:net';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Billing } from '../../../src/billing/billing.ts';
import { hashPassword, verifyPassword } from '../../../src/billing/password.ts';
import { SimulatedClock } from '../../../src/clock.ts';
import { createDb, type Db } from '../../../src/db/connection.ts';
import { RadiusClient, RadiusTimeoutError } from '../../../src/radius/client.ts';
import { loadDictionary } from '../../../src/radius/dictionary.ts';
import { insertNasClient } from '../../../src/radius/nas-store.ts';
import { PacketCode } from '../../../src/radius/packet.ts';
import { startRadius, type RadiusService } from '../../../src/radius/server.ts';
import { defaultTerms } from '../../helpers/billing.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { testRadiusConfig } from '../../helpers/radius.ts';

/** A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones: a real outage. */
async function pgProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  let server: net.Server;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((client) => {
        const upstream = net.connect(Number(target.port), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  await listen();
  return {
    get port() {
      return port;
    },
    async cut() {
      await new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      });
    },
    restore: listen,
  };
}

const dictionary = loadDictionary();
const SECRET = 'outage-secret';
let t: TestDatabase;
let db: Db;
let proxy: Awaited<ReturnType<typeof pgProxy>>;
let radius: RadiusService;
let client: RadiusClient;
const registry = new Registry();

beforeAll(async () => {
  t = await createTestDatabase();
  const url = new URL(t.url);
  proxy = await pgProxy(url);
  const proxied = new URL(t.url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  ({ db } = createDb({ url: proxied.toString(), poolMax: 5 }));
  const billing = new Billing(db, new SimulatedClock(new Date('2026-09-01T08:00:00Z')));
  await billing.init(defaultTerms);
  await insertNasClient(t.db, { name: 'bras', address: '127.0.0.1', secret: SECRET, area: 'dorm' });
  const hash = await hashPassword('pw-outage');
  await billing.createAccount({ username: 'outage1', kind: 'student', passwordHash: hash });
  await billing.topUp({ username: 'outage1', channel: 'cash', orderId: 'o1', amountFen: 4000 });
  radius = await startRadius({
    config: testRadiusConfig(),
    db,
    databaseUrl: proxied.toString(),
    billing,
    log: pino({ level: 'silent' }),
    registry,
    verifyPassword,
    dictionary,
  });
  client = await RadiusClient.open(dictionary);
});

afterAll(async () => {
  await client?.close();
  await radius?.close();
  await db?.destroy();
  await t?.drop();
});

function login() {
  return client.request({
    host: '127.0.0.1',
    port: radius.authPort,
    code: PacketCode.AccessRequest,
    attributes: [['User-Name', 'outage1'], ['User-Password', 'pw-outage']],
    secret: SECRET,
    timeoutsMs: [400],
  });
}

function accounting(sid: string) {
  return client.request({
    host: '127.0.0.1',
    port: radius.acctPort,
    code: PacketCode.AccountingRequest,
    attributes: [['User-Name', 'outage1'], ['Acct-Session-Id', sid], ['Acct-Status-Type', 'Start']],
    secret: SECRET,
    timeoutsMs: [400],
  });
}

async function timesOut(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return false;
  } catch (e) {
    return e instanceof RadiusTimeoutError;
  }
}

async function dropped(reason: string): Promise<number> {
  const m = await registry.getSingleMetric('radius_dropped_total')?.get();
  return m?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('database outage', () => {
  it('stops answering while the database is unreachable, then answers again by itself when it returns', async () => {
    expect((await login()).reply.code).toBe(PacketCode.AccessAccept);
    expect((await accounting('before')).reply.code).toBe(PacketCode.AccountingResponse);
    expect(radius.ready()).toBe(true);

    await proxy.cut();
    for (let i = 0; i < 50 && radius.ready(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(radius.ready()).toBe(false);
    // Not even the login the in-memory view could decide is answered: nothing is sure without the database.
    expect(await timesOut(login())).toBe(true);
    expect(await timesOut(accounting('during'))).toBe(true);
    expect(await dropped('db_unavailable')).toBeGreaterThanOrEqual(2);

    await proxy.restore();
    const deadline = Date.now() + 15_000;
    let answered = false;
    while (!answered && Date.now() < deadline) answered = !(await timesOut(login()));
    expect(answered).toBe(true);
    expect((await accounting('after')).reply.code).toBe(PacketCode.AccountingResponse);
    // The change listener reconnects with backoff and reloads the view; then the server is ready again.
    for (let i = 0; i < 300 && !radius.ready(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(radius.ready()).toBe(true);
    // The request dropped during the outage was not stored; the ones answered were.
    const sessions = await t.db.selectFrom('acct_sessions').select('session_id').orderBy('session_id').execute();
    expect(sessions.map((s) => s.session_id)).toEqual(['after', 'before']);
  });
});
