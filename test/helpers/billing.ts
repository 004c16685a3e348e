import { Billing } from '../../src/billing/billing.ts';
import { SimulatedClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/connection.ts';
import type { TariffTerms } from '../../src/billing/tariff.ts';

export const DAY_S = 86_400;
export const DAY_MS = DAY_S * 1000;
export const defaultTerms: TariffTerms = { feeFen: 2000, cycleSeconds: 30 * DAY_S, thresholdFen: 2000, renewal: 'continuous' };

/** A fixed, fake-but-valid argon2id hash: tests that do not log in skip the KDF's cost. */
export const DUMMY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0000000000000000000000000000000000000000000';

let counter = 0;
export function uniqueUsername(prefix = 'u'): string {
  counter++;
  return `${prefix}${process.pid}x${counter}x${Math.floor(Math.random() * 1e6)}`;
}

export async function newBilling(db: Db, start = new Date('2026-09-01T08:00:00Z'), terms: TariffTerms = defaultTerms) {
  const clock = new SimulatedClock(start);
  const billing = new Billing(db, clock);
  await billing.init(terms);
  return { billing, clock };
}

export async function newAccount(billing: Billing, balanceFen = 0, username = uniqueUsername()) {
  const account = await billing.createAccount({ username, kind: 'student', passwordHash: DUMMY_HASH });
  if (balanceFen > 0) {
    await billing.topUp({ username, channel: 'cash', orderId: `seed-${username}`, amountFen: balanceFen });
  }
  return account;
}
