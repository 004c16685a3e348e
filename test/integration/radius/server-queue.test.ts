import dgram from 'node:dgram';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Billing } from '../../../src/billing/billing.ts';
import { verifyPassword } from '../../../src/billing/password.ts';
import { SimulatedClock } from '../../../src/clock.ts';
import { loadDictionary } from '../../../src/radius/dictionary.ts';
import { insertNasClient } from '../../../src/radius/nas-store.ts';
import { encodeRequest, PacketCode } from '../../../src/radius/packet.ts';
import { startRadius, type RadiusService } from '../../../src/radius/server.ts';
import { defaultTerms } from '../../helpers/billing.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { testRadiusConfig } from '../../helpers/radius.ts';

const dictionary = loadDictionary();
const SECRET = 'queue-nas-secret-31';
const MAX_QUEUED = 8;

let t: TestDatabase;
let radius: RadiusService;
const registry = new Registry();
const logLines: string[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  const billing = new Billing(t.db, new SimulatedClock(new Date('2026-09-01T08:00:00Z')));
  await billing.init(defaultTerms);
  await insertNasClient(t.db, { name: 'queue', address: '127.0.0.1', secret: SECRET, area: 'dorm' });
  radius = await startRadius({
    config: testRadiusConfig(),
    db: t.db,
    databaseUrl: t.url,
    billing,
    log: pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          logLines.push(chunk.toString());
          cb();
        },
      }),
    ),
    registry,
    verifyPassword,
    dictionary,
    maxQueued: MAX_QUEUED,
  });
});

afterAll(async () => {
  await radius?.close();
  await t?.drop();
});

async function metric(name: string, labels: string): Promise<number> {
  const text = await registry.metrics();
  const m = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('the queue between reading datagrams and handling them', () => {
  it('drops and counts as overload what arrives beyond its bound, answers the rest, and answers the retransmissions', async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const answered = new Set<number>();
    socket.on('message', (msg) => {
      if (msg[0] === PacketCode.AccessAccept) answered.add(msg[1]!);
    });
    const status = (identifier: number) => encodeRequest({ code: PacketCode.StatusServer, identifier, attributes: [], secret: SECRET, dictionary });
    const droppedBefore = await metric('radius_dropped_total', 'reason="overload"');

    // 200 Status-Server requests in one go: this test shares the server's thread, so all of them are in the
    // socket buffer before the server reads any, and one read takes more than MAX_QUEUED.
    for (let id = 0; id < 200; id++) socket.send(status(id), radius.authPort, '127.0.0.1');
    await waitFor(async () => answered.size + (await metric('radius_dropped_total', 'reason="overload"')) - droppedBefore >= 200);
    const dropped = (await metric('radius_dropped_total', 'reason="overload"')) - droppedBefore;
    expect(dropped).toBeGreaterThan(0);
    expect(answered.size + dropped).toBe(200);
    // Said once for the burst (at most once per 10 s), not once per dropped datagram.
    const warnings = logLines.filter((l) => l.includes('read queue full'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, kind: 'queue_full', port: 'auth' });

    // The NAS retransmits what went unanswered, a few at a time: every one is answered.
    const missing = Array.from({ length: 200 }, (_, id) => id).filter((id) => !answered.has(id));
    for (let i = 0; i < missing.length; i += MAX_QUEUED / 2) {
      for (const id of missing.slice(i, i + MAX_QUEUED / 2)) socket.send(status(id), radius.authPort, '127.0.0.1');
      await waitFor(() => missing.slice(i, i + MAX_QUEUED / 2).every((id) => answered.has(id)));
    }
    expect(answered.size).toBe(200);
    socket.close();
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
