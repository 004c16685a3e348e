import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Billing } from '../../../src/billing/billing.ts';
import { AccountReader, AccountView } from '../../../src/radius/account-view.ts';
import { DbListener } from '../../../src/radius/db-listener.ts';
import { newAccount, newBilling } from '../../helpers/billing.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';

let t: TestDatabase;
let billing: Billing;
let view: AccountView;
let listener: DbListener;

async function until<T>(fn: () => T | undefined | null | false, ms = 3_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function sure(username: string) {
  const l = view.lookup(username);
  return l.state === 'sure' ? l.account : undefined;
}

beforeAll(async () => {
  t = await createTestDatabase();
  ({ billing } = await newBilling(t.db));
  view = new AccountView(t.db);
  listener = new DbListener({
    url: t.url,
    channels: ['accounts_changed'],
    log: pino({ level: 'silent' }),
    onConnected: () => view.reload(),
    onDisconnected: () => view.invalidate(),
    onNotification: (_channel, payload) => view.notify(payload),
  });
  await listener.start();
});

afterAll(async () => {
  await listener.stop();
  await t.drop();
});

describe('AccountView', () => {
  it('is sure after the first load and learns new accounts from notifications', async () => {
    expect(view.ready).toBe(true);
    const a = await newAccount(billing, 0);
    const seen = await until(() => sure(a.username));
    expect(seen).toMatchObject({ id: a.id, status: 'active', balanceFen: 0, cycleId: null });
  });

  it('follows top-ups, cycles opened at a login, status and password changes', async () => {
    const a = await newAccount(billing, 0);
    await billing.topUp({ username: a.username, channel: 'cash', orderId: `v-${a.username}`, amountFen: 2500 });
    await until(() => sure(a.username)?.balanceFen === 2500);
    const r = await billing.authorizeDormLogin({ id: a.id });
    const seen = await until(() => sure(a.username)?.cycleId === r.cycleId && sure(a.username));
    expect(seen.cycleEndsAtMs).toBe(r.decision.kind === 'accept' ? r.decision.endsAt.getTime() : -1);
    await sql`UPDATE accounts SET status = 'disabled', password_hash = 'NEW' WHERE id = ${a.id}`.execute(t.db);
    const after = await until(() => sure(a.username)?.status === 'disabled' && sure(a.username));
    expect(after.passwordHash).toBe('NEW');
  });

  it('calls a notified account unsure until it has been read again', async () => {
    const a = await newAccount(billing, 0);
    await until(() => sure(a.username));
    view.notify(String(a.id));
    expect(view.lookup(a.username).state).toBe('unsure');
    await view.settled();
    expect(view.lookup(a.username).state).toBe('sure');
  });

  it('calls everything unsure once the listener lost the database, until a reload', async () => {
    const a = await newAccount(billing, 0);
    await until(() => sure(a.username));
    view.invalidate();
    expect(view.lookup(a.username).state).toBe('unsure');
    await view.reload();
    expect(view.lookup(a.username).state).toBe('sure');
  });

  it('never lets an older read overwrite a newer one when changes come in bursts', async () => {
    const a = await newAccount(billing, 0);
    for (let i = 1; i <= 30; i++) {
      await billing.topUp({ username: a.username, channel: 'cash', orderId: `burst-${a.username}-${i}`, amountFen: 100 });
    }
    await until(() => sure(a.username)?.balanceFen === 3000);
    await new Promise((r) => setTimeout(r, 100));
    expect(sure(a.username)?.balanceFen).toBe(3000);
  });
});

describe('AccountReader', () => {
  it('reads many accounts asked for in one turn of the event loop with one statement each batch', async () => {
    const accounts = await Promise.all(Array.from({ length: 20 }, () => newAccount(billing, 1000)));
    const reader = new AccountReader(t.db, 8);
    const got = await Promise.all([...accounts.map((a) => reader.read(a.username)), reader.read('nobody-like-this')]);
    expect(got.slice(0, 20).map((g) => g?.id)).toEqual(accounts.map((a) => a.id));
    expect(got.slice(0, 20).every((g) => g?.balanceFen === 1000)).toBe(true);
    expect(got[20]).toBeUndefined();
  });
});
