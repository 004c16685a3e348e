import pino from 'pino';
import { Registry } from 'prom-client';
import { buildApi, type ApiInstance } from '../../../src/api/app.ts';
import { insertToken } from '../../../src/api/token-store.ts';
import type { Billing } from '../../../src/billing/billing.ts';
import type { SimulatedClock } from '../../../src/clock.ts';
import type { ApiRole } from '../../../src/db/schema.ts';
import { migrationsApplied } from '../../../src/db/migrate.ts';
import { sealCredential } from '../../../src/radius/credential.ts';
import type { Disconnector } from '../../../src/radius/disconnect.ts';
import { newBilling } from '../../helpers/billing.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';

/**
 * For tests whose requests never disconnect anything: fails loudly if one does. Tests of disconnects
 * use the real RadiusDisconnector against a UDP listener playing the NAS.
 */
export const neverDisconnects: Disconnector = {
  disconnectSession: async () => {
    throw new Error('this test does not expect a disconnect');
  },
  disconnectAccount: async () => {
    throw new Error('this test does not expect a disconnect');
  },
  disconnectAccounts: async () => {
    throw new Error('this test does not expect a disconnect');
  },
};

export const ADMIN_TOKEN = 'env-admin-token-for-tests-0123456789';

export interface TestApi {
  readonly app: ApiInstance;
  readonly t: TestDatabase;
  readonly billing: Billing;
  readonly clock: SimulatedClock;
  readonly metrics: Registry;
  /** A bearer token per role, created through the token store. */
  readonly tokens: Record<ApiRole, string>;
  close(): Promise<void>;
}

export interface TestApiOptions {
  /** The Disconnector, or a function making one over the test database and clock. */
  readonly disconnector?: Disconnector | ((ctx: { db: TestDatabase['db']; now: () => Date }) => Disconnector);
  readonly simulated?: boolean;
  readonly radiusReady?: () => boolean;
  /** CREDENTIAL_KEY's bytes: passwords set from plaintext are sealed for CHAP. */
  readonly credentialKey?: Buffer;
}

/** The API over a fresh database cloned from the migrated template, with a simulated clock. */
export async function startTestApi(opts: TestApiOptions = {}): Promise<TestApi> {
  const t = await createTestDatabase({ poolMax: 30 });
  const { billing, clock } = await newBilling(t.db);
  const metrics = new Registry();
  const simulated = opts.simulated ?? true;
  const disconnector = typeof opts.disconnector === 'function' ? opts.disconnector({ db: t.db, now: () => clock.now() }) : (opts.disconnector ?? neverDisconnects);
  const app = await buildApi({
    db: t.db,
    pool: t.pool,
    billing,
    disconnector,
    clock: {
      simulated,
      now: () => clock.now(),
      async advance(seconds) {
        const now = clock.advance(seconds);
        return { now, report: await billing.settleDue(now) };
      },
    },
    settleNow: () => billing.settleDue(clock.now()),
    adminToken: ADMIN_TOKEN,
    log: pino({ level: process.env.API_TEST_LOG ?? 'silent' }),
    metrics,
    migrationsApplied: () => migrationsApplied(t.db),
    ...(opts.radiusReady ? { radiusReady: opts.radiusReady } : {}),
    ...(opts.credentialKey ? { sealChapCredential: (id: number, hash: string, password: string) => sealCredential(opts.credentialKey!, id, hash, password) } : {}),
  });
  const tokens = {} as Record<ApiRole, string>;
  for (const role of ['admin', 'operator', 'payment', 'readonly'] as const) {
    tokens[role] = (await insertToken(t.db, { name: `test ${role}`, role, createdBy: 'test' })).token;
  }
  return {
    app,
    t,
    billing,
    clock,
    metrics,
    tokens,
    async close() {
      await app.close();
      await t.drop();
    },
  };
}

export function auth(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

/** A valid-looking argon2id PHC string: tests that never log in skip the KDF's cost. */
export const PHC = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0000000000000000000000000000000000000000000';
