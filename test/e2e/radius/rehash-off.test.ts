import { hash as argon2Hash } from '@node-rs/argon2';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/main.ts';
import { RadiusClient } from '../../../src/radius/client.ts';
import { insertNasClient } from '../../../src/radius/nas-store.ts';
import { PacketCode } from '../../../src/radius/packet.ts';
import type { TestDatabase } from '../../helpers/db.ts';
import { dictionary, startTestApp } from './helpers.ts';

const SECRET = 'rehash-off-secret';
const PASSWORD = 'Campus-2026';

let app: App;
let t: TestDatabase;
let stop: () => Promise<void>;
let client: RadiusClient;

beforeAll(async () => {
  ({ app, t, stop } = await startTestApp({ PASSWORD_REHASH: 'off' }));
  await insertNasClient(t.db, { name: 'bras', address: '127.0.0.1', secret: SECRET, area: 'office' });
  client = await RadiusClient.open(dictionary);
});

afterAll(async () => {
  await client?.close();
  await stop?.();
});

describe('PASSWORD_REHASH=off', () => {
  it('leaves a hash of another argon2 cost as it is after a login', async () => {
    const legacy = await argon2Hash(PASSWORD, { algorithm: 2, memoryCost: 1024, timeCost: 1, parallelism: 1 });
    const a = await app.billing.createAccount({ username: `keep${process.pid}`, kind: 'staff', passwordHash: legacy });
    // The NAS client and the account reach the service's view through notifications: retry until answered.
    let code: number | undefined;
    for (let i = 0; i < 30 && code !== PacketCode.AccessAccept; i++) {
      const r = await client.request({
        host: '127.0.0.1',
        port: app.radius.authPort,
        code: PacketCode.AccessRequest,
        attributes: [
          ['User-Name', `keep${process.pid}`],
          ['User-Password', PASSWORD],
        ],
        secret: SECRET,
        timeoutsMs: [300],
      }).catch(() => undefined);
      code = r?.reply.code;
    }
    expect(code).toBe(PacketCode.AccessAccept);
    await new Promise((r) => setTimeout(r, 300));
    const stored = (await sql<{ h: string }>`SELECT password_hash AS h FROM accounts WHERE id = ${a.id}`.execute(t.db)).rows[0]!.h;
    expect(stored).toBe(legacy);
  });
});
