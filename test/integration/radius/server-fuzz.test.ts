import { Writable } from 'node:stream';
import fc from 'fast-check';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Billing } from '../../../src/billing/billing.ts';
import { hashPassword, verifyPassword } from '../../../src/billing/password.ts';
import { SimulatedClock } from '../../../src/clock.ts';
import { RadiusClient } from '../../../src/radius/client.ts';
import { loadDictionary } from '../../../src/radius/dictionary.ts';
import { insertNasClient } from '../../../src/radius/nas-store.ts';
import { decodePacket, encodeRequest, PacketCode, type RequestCode } from '../../../src/radius/packet.ts';
import { startRadius, type RadiusService } from '../../../src/radius/server.ts';
import { defaultTerms } from '../../helpers/billing.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { testRadiusConfig } from '../../helpers/radius.ts';

const dictionary = loadDictionary();
const SECRET = 'fuzz-nas-secret-7f3a';
const PASSWORD = 'FuzzPassw0rd!';
const PACKETS = 24_000;

let t: TestDatabase;
let radius: RadiusService;
let client: RadiusClient;
const registry = new Registry();
const logLines: string[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  const billing = new Billing(t.db, new SimulatedClock(new Date('2026-09-01T08:00:00Z')));
  await billing.init(defaultTerms);
  // 'auto': Access-Requests without Message-Authenticator are parsed and decided, so random ones go deep.
  await insertNasClient(t.db, { name: 'fuzz', address: '127.0.0.1', secret: SECRET, area: 'dorm', messageAuthenticator: 'auto', areaRules: [{ attribute: 'NAS-Port-Id', pattern: '^off', area: 'office' }] });
  await billing.createAccount({ username: 'fuzzer', kind: 'student', passwordHash: await hashPassword(PASSWORD) });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  radius = await startRadius({
    config: testRadiusConfig('::'),
    db: t.db,
    databaseUrl: t.url,
    billing,
    log: pino({ level: 'debug' }, sink),
    registry,
    verifyPassword,
    dictionary,
  });
  client = await RadiusClient.open(dictionary);
});

afterAll(async () => {
  await client?.close();
  await radius?.close();
  await t?.drop();
});

const attribute = fc.oneof(
  fc.tuple(fc.constant('User-Name'), fc.oneof(fc.constant('fuzzer'), fc.string({ maxLength: 80 }))),
  fc.tuple(fc.constant('User-Password'), fc.oneof(fc.constant(PASSWORD), fc.string({ maxLength: 100 }))),
  fc.tuple(fc.constant('CHAP-Password'), fc.uint8Array({ minLength: 17, maxLength: 17 }).map((b) => Buffer.from(b))),
  fc.tuple(fc.constant('NAS-Port-Id'), fc.oneof(fc.constant('office-1'), fc.string({ maxLength: 40 }))),
  fc.tuple(fc.constant('Acct-Status-Type'), fc.oneof(fc.constantFrom(1, 2, 3, 7, 8, 15), fc.nat(0xffffffff))),
  fc.tuple(fc.constant('Acct-Session-Id'), fc.string({ minLength: 1, maxLength: 60 })),
  fc.tuple(fc.constant('Acct-Session-Time'), fc.nat(0xffffffff)),
  fc.tuple(fc.constant('Acct-Input-Gigawords'), fc.nat(0xffffffff)),
  fc.tuple(fc.constant('Event-Timestamp'), fc.nat(0xffffffff)),
  fc.tuple(fc.constant('Framed-IP-Address'), fc.ipV4()),
  fc.tuple(fc.constant('Proxy-State'), fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b))),
  fc.tuple(fc.constant('Huawei-User-Mac'), fc.string({ maxLength: 30 })),
);

const wellFormed = fc
  .record({
    code: fc.constantFrom<RequestCode>(PacketCode.AccessRequest, PacketCode.AccountingRequest, PacketCode.StatusServer, PacketCode.DisconnectRequest),
    identifier: fc.nat(255),
    attributes: fc.array(attribute, { maxLength: 12 }),
    ma: fc.boolean(),
    wrongSecret: fc.boolean(),
  })
  .map(({ code, identifier, attributes, ma, wrongSecret }) => {
    try {
      return encodeRequest({ code, identifier, attributes: attributes as [string, string | number | Buffer][], secret: wrongSecret ? 'other' : SECRET, dictionary, messageAuthenticator: ma });
    } catch {
      return Buffer.from([code, identifier, 0, 20, ...new Array<number>(16).fill(0)]);
    }
  });

const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(5000), bit: fc.nat(7) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat(300) }),
  fc.record({ op: fc.constant('extend' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ op: fc.constant('length' as const), value: fc.nat(0xffff) }),
  fc.record({ op: fc.constant('attrLength' as const), at: fc.nat(300), value: fc.nat(255) }),
);

function mutate(packet: Buffer, ops: readonly { op: string }[]): Buffer {
  let b = Buffer.from(packet);
  for (const m of ops as { op: string; at?: number; bit?: number; value?: number; bytes?: Uint8Array }[]) {
    if (m.op === 'flip' && b.length > 0) b[m.at! % b.length] = b[m.at! % b.length]! ^ (1 << m.bit!);
    else if (m.op === 'truncate') b = b.subarray(0, Math.min(b.length, m.at!));
    else if (m.op === 'extend') b = Buffer.concat([b, m.bytes!]);
    else if (m.op === 'length' && b.length >= 4) b.writeUInt16BE(m.value!, 2);
    else if (m.op === 'attrLength' && b.length > 21) b[20 + (m.at! % (b.length - 20))] = m.value!;
  }
  return b;
}

const datagram = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(wellFormed, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([p, ops]) => mutate(p, ops)) },
  { weight: 2, arbitrary: wellFormed },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 4200 }).map((b) => Buffer.from(b)) },
);

describe('the RADIUS server under random and mutated datagrams', () => {
  it('drops what is malformed, never crashes, never stores it, never logs a password or secret, and keeps serving', async () => {
    const packets = fc.sample(datagram, { numRuns: PACKETS, seed: 20_260_901 });
    const storable = new Set<string>();
    for (const p of packets) {
      // The oracle: which datagrams are authentic accounting records the server may store.
      try {
        const d = decodePacket(p, { dictionary, secret: SECRET });
        const sid = d.code === PacketCode.AccountingRequest ? d.get('Acct-Session-Id') : undefined;
        if (sid !== undefined) storable.add(sid.replace(/\0/g, ''));
      } catch {
        // malformed or unauthentic
      }
    }
    for (let i = 0; i < packets.length; i++) {
      client.sendRaw(packets[i]!, '127.0.0.1', i % 2 === 0 ? radius.authPort : radius.acctPort);
      if (i % 200 === 199) await new Promise((r) => setTimeout(r, 2));
    }
    await new Promise((r) => setTimeout(r, 1_500));

    // Still serving: a real login and Status-Server are answered.
    const login = await client.request({
      host: '127.0.0.1',
      port: radius.authPort,
      code: PacketCode.AccessRequest,
      attributes: [['User-Name', 'fuzzer'], ['User-Password', PASSWORD], ['NAS-Port-Id', 'office-1']],
      secret: SECRET,
      timeoutsMs: [2_000],
    });
    expect(login.reply.code).toBe(PacketCode.AccessAccept);
    const status = await client.request({ host: '127.0.0.1', port: radius.acctPort, code: PacketCode.StatusServer, attributes: [], secret: SECRET, timeoutsMs: [2_000] });
    expect(status.reply.code).toBe(PacketCode.AccountingResponse);

    // Only authentic accounting records reached the database.
    const rows = await t.db.selectFrom('acct_sessions').select('session_id').execute();
    for (const r of rows) expect(storable.has(r.session_id)).toBe(true);

    const dropped = (await registry.getSingleMetric('radius_dropped_total')!.get()).values;
    const total = dropped.reduce((a, v) => a + v.value, 0);
    expect(total).toBeGreaterThan(PACKETS / 3);
    for (const reason of ['bad_length', 'bad_authenticator', 'bad_message_authenticator', 'too_short']) {
      expect(dropped.find((v) => v.labels.reason === reason)?.value ?? 0).toBeGreaterThan(0);
    }

    // Logged at most once per kind per 10 s, and never a password or a secret.
    const text = logLines.join('');
    expect(logLines.length).toBeLessThan(100);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(SECRET);
  }, 120_000);
});
