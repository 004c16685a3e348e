import dgram from 'node:dgram';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hash as argon2Hash } from '@node-rs/argon2';
import { hashPassword, verifyPassword } from '../../../src/billing/password.ts';
import { credentialKeyBytes } from '../../../src/config.ts';
import type { App } from '../../../src/main.ts';
import { chapPasswordOf, encodeRequest, PacketCode, verifyResponse } from '../../../src/radius/packet.ts';
import { RadiusClient, RadiusTimeoutError } from '../../../src/radius/client.ts';
import { replacePasswordHash, storeChapCredential } from '../../../src/radius/credential.ts';
import { insertNasClient } from '../../../src/radius/nas-store.ts';
import type { TestDatabase } from '../../helpers/db.ts';
import { CREDENTIAL_KEY, dictionary, hasIpv6Loopback, radclient, startTestApp, startTestNas, waitFor } from './helpers.ts';

const ipv6 = await hasIpv6Loopback();

const SECRET = 'dorm-bras-secret';
const PASSWORD = 'Campus-2026';
const THIRTY_DAYS_S = 30 * 86_400;

let app: App;
let t: TestDatabase;
let stop: () => Promise<void>;
let client: RadiusClient;
let coaNas: Awaited<ReturnType<typeof startTestNas>>;
let hash: string;
let seq = 0;

function user(prefix: string): string {
  seq++;
  return `${prefix}${seq}x${process.pid}`;
}

async function account(prefix: string, balanceFen = 0): Promise<{ id: number; username: string }> {
  const username = user(prefix);
  const a = await app.billing.createAccount({ username, kind: 'student', passwordHash: hash });
  if (balanceFen > 0) await app.billing.topUp({ username, channel: 'cash', orderId: `seed-${username}`, amountFen: balanceFen });
  return { id: a.id, username };
}

function auth(
  attributes: [string, string | number | Buffer][],
  opts: { secret?: string; port?: number; host?: string; c?: RadiusClient; timeoutsMs?: number[] } = {},
) {
  return (opts.c ?? client).request({
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? app.radius.authPort,
    code: PacketCode.AccessRequest,
    attributes,
    secret: opts.secret ?? SECRET,
    timeoutsMs: opts.timeoutsMs ?? [700],
  });
}

function acct(attributes: [string, string | number | Buffer][]) {
  return client.request({
    host: '127.0.0.1',
    port: app.radius.acctPort,
    code: PacketCode.AccountingRequest,
    attributes,
    secret: SECRET,
    timeoutsMs: [1500],
  });
}

async function silent(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return false;
  } catch (e) {
    if (e instanceof RadiusTimeoutError) return true;
    throw e;
  }
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = await app.metrics.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

beforeAll(async () => {
  ({ app, t, stop } = await startTestApp());
  hash = await hashPassword(PASSWORD);
  coaNas = await startTestNas(SECRET);
  await insertNasClient(t.db, {
    name: 'bras-dorm',
    address: '127.0.0.1',
    secret: SECRET,
    area: 'dorm',
    coaPort: coaNas.port,
    areaRules: [{ attribute: 'NAS-Port-Id', pattern: '^office', area: 'office' }],
  });
  await insertNasClient(t.db, { name: 'bras-v6', address: '::1', secret: SECRET, area: 'office' });
  // Applied without a restart: the server reloads on the nas_clients_changed notification.
  await waitFor(() => app.radius.server.nasFor('127.0.0.1') && app.radius.server.nasFor('::1'), 3_000, 'NAS clients');
  client = await RadiusClient.open(dictionary);
});

afterAll(async () => {
  await client?.close();
  await coaNas?.close();
  await stop?.();
});

describe('Access-Request', () => {
  it('accepts an office login with a bilingual Reply-Message and no Session-Timeout', async () => {
    const a = await account('off');
    const r = await auth([['User-Name', a.username], ['User-Password', PASSWORD], ['NAS-Port-Id', 'office-3F']]);
    expect(r.reply.code).toBe(PacketCode.AccessAccept);
    expect(r.reply.get('Reply-Message')).toMatch(/^认证成功.* \/ Welcome/);
    expect(r.reply.get('Session-Timeout')).toBeUndefined();
  });

  it('refuses a dorm login at balance 0 with the arrears message', async () => {
    const a = await account('arr');
    const r = await auth([['User-Name', a.username], ['User-Password', PASSWORD]]);
    expect(r.reply.code).toBe(PacketCode.AccessReject);
    expect(r.reply.get('Reply-Message')).toBe('账户欠费：余额 0.00 元，需 20.00 元 / Account in arrears: balance 0.00 yuan, 20.00 needed');
  });

  it('refuses a dorm login at 10.00 yuan with the balance and the amount needed', async () => {
    const a = await account('ten', 1000);
    const r = await auth([['User-Name', a.username], ['User-Password', PASSWORD]]);
    expect(r.reply.get('Reply-Message')).toBe('账户欠费：余额 10.00 元，需 20.00 元 / Account in arrears: balance 10.00 yuan, 20.00 needed');
  });

  it('opens a cycle at the first dorm login after a top-up and sends Session-Timeout to its end', async () => {
    const a = await account('top');
    expect((await auth([['User-Name', a.username], ['User-Password', PASSWORD]])).reply.code).toBe(PacketCode.AccessReject);
    await app.billing.topUp({ username: a.username, channel: 'wechat', orderId: `o-${a.username}`, amountFen: 2000 });
    const r = await auth([['User-Name', a.username], ['User-Password', PASSWORD]]);
    expect(r.reply.code).toBe(PacketCode.AccessAccept);
    expect(r.reply.get('Session-Timeout')).toBe(THIRTY_DAYS_S);
    expect(r.reply.get('Reply-Message')).toContain('2026-10-01 16:00');
    const s = await app.billing.summary(a.username);
    expect(s.running?.startedAt.toISOString()).toBe('2026-09-01T08:00:00.000Z');
    // Once the change notifications are in, the next login is decided from memory, on the same cycle.
    await waitFor(async () => {
      const before = await metric('radius_auth_decisions_total', { path: 'memory' });
      const again = await auth([['User-Name', a.username], ['User-Password', PASSWORD]]);
      expect(again.reply.get('Session-Timeout')).toBe(THIRTY_DAYS_S);
      return (await metric('radius_auth_decisions_total', { path: 'memory' })) === before + 1;
    }, 3_000, 'a decision from memory');
    expect((await app.billing.cycles(a.username, { limit: 10 })).length).toBe(1);
  });

  it('opens exactly one cycle when many first logins of one account arrive at once', async () => {
    const a = await account('race', 2000);
    // The 20 decisions queue on the account's row lock; on a loaded machine that can outlast one 700 ms
    // wait, so retransmit as a NAS would (the reply cache answers a retransmit without deciding again).
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => auth([['User-Name', a.username], ['User-Password', PASSWORD]], { timeoutsMs: [1_000, 2_000, 4_000] })),
    );
    expect(replies.every((r) => r.reply.code === PacketCode.AccessAccept)).toBe(true);
    expect((await app.billing.cycles(a.username, { limit: 10 })).length).toBe(1);
    expect((await app.billing.summary(a.username)).account.balanceFen).toBe(2000);
  });

  it('refuses a wrong password and an unknown user with the same message', async () => {
    const a = await account('pw');
    const wrong = await auth([['User-Name', a.username], ['User-Password', 'nope']]);
    const unknown = await auth([['User-Name', 'nobody-here'], ['User-Password', PASSWORD]]);
    for (const r of [wrong, unknown]) {
      expect(r.reply.code).toBe(PacketCode.AccessReject);
      expect(r.reply.get('Reply-Message')).toBe('用户名或密码错误 / Wrong username or password');
    }
  });

  it('refuses a disabled account, and a changed password takes effect at once', async () => {
    const a = await account('dis', 5000);
    await sql`UPDATE accounts SET status = 'disabled' WHERE id = ${a.id}`.execute(t.db);
    const r = await waitFor(async () => {
      const x = await auth([['User-Name', a.username], ['User-Password', PASSWORD], ['NAS-Port-Id', 'office-1']]);
      return x.reply.get('Reply-Message') === '账号已停用 / Account disabled' ? x : null;
    }, 3_000, 'the disable to be seen');
    expect(r.reply.code).toBe(PacketCode.AccessReject);

    const b = await account('chg');
    expect((await auth([['User-Name', b.username], ['User-Password', PASSWORD], ['NAS-Port-Id', 'office-1']])).reply.code).toBe(PacketCode.AccessAccept);
    await sql`UPDATE accounts SET password_hash = ${await hashPassword('NewPass!1')} WHERE id = ${b.id}`.execute(t.db);
    await waitFor(async () => (await auth([['User-Name', b.username], ['User-Password', PASSWORD], ['NAS-Port-Id', 'office-1']])).reply.code === PacketCode.AccessReject, 3_000, 'the old password to fail');
    expect((await auth([['User-Name', b.username], ['User-Password', 'NewPass!1'], ['NAS-Port-Id', 'office-1']])).reply.code).toBe(PacketCode.AccessAccept);
  });

  it('accepts CHAP for an account with a sealed credential and refuses it otherwise', async () => {
    const withCred = await account('chap');
    await storeChapCredential(t.db, credentialKeyBytes(CREDENTIAL_KEY)!, withCred.id, hash, PASSWORD);
    const challenge = Buffer.alloc(16, 7);
    const chap = (username: string, password: string) =>
      auth([['User-Name', username], ['CHAP-Password', chapPasswordOf(1, password, challenge)], ['CHAP-Challenge', challenge], ['NAS-Port-Id', 'office-2']]);
    const ok = await waitFor(async () => {
      const r = await chap(withCred.username, PASSWORD);
      return r.reply.code === PacketCode.AccessAccept ? r : null;
    }, 3_000, 'CHAP accept');
    expect(ok.reply.code).toBe(PacketCode.AccessAccept);
    expect((await chap(withCred.username, 'wrong')).reply.get('Reply-Message')).toBe('用户名或密码错误 / Wrong username or password');
    const without = await account('nochap');
    const r = await chap(without.username, PASSWORD);
    expect(r.reply.code).toBe(PacketCode.AccessReject);
    expect(r.reply.get('Reply-Message')).toMatch(/CHAP is not available/);
  });

  it('learns a CHAP credential from a PAP login so the next CHAP login works', async () => {
    const a = await account('learn');
    await auth([['User-Name', a.username], ['User-Password', PASSWORD], ['NAS-Port-Id', 'office-1']]);
    const challenge = Buffer.alloc(16, 9);
    const r = await waitFor(async () => {
      const x = await auth([['User-Name', a.username], ['CHAP-Password', chapPasswordOf(3, PASSWORD, challenge)], ['CHAP-Challenge', challenge], ['NAS-Port-Id', 'office-1']]);
      return x.reply.code === PacketCode.AccessAccept ? x : null;
    }, 3_000, 'CHAP after PAP');
    expect(r.reply.code).toBe(PacketCode.AccessAccept);
  });

  it('upgrades a hash of another argon2 cost to the current one after a PAP login, keeping PAP and CHAP working', async () => {
    const username = user('rehash');
    const legacy = await argon2Hash(PASSWORD, { algorithm: 2, memoryCost: 1024, timeCost: 1, parallelism: 1 });
    const a = await app.billing.createAccount({ username, kind: 'student', passwordHash: legacy });
    const storedHash = async () => (await sql<{ h: string }>`SELECT password_hash AS h FROM accounts WHERE id = ${a.id}`.execute(t.db)).rows[0]!.h;
    expect((await auth([['User-Name', username], ['User-Password', PASSWORD], ['NAS-Port-Id', 'office-1']])).reply.code).toBe(PacketCode.AccessAccept);
    const upgraded = await waitFor(async () => {
      const h = await storedHash();
      return h !== legacy ? h : null;
    }, 3_000, 'the hash to be upgraded');
    expect(upgraded).toMatch(/^\$argon2id\$v=19\$m=7168,t=5,p=1\$/);
    expect(await verifyPassword(upgraded, PASSWORD)).toBe(true);
    // Once the view has the new hash, the same password still logs in, by PAP and, with the credential sealed again, by CHAP.
    const challenge = Buffer.alloc(16, 5);
    const chap = await waitFor(async () => {
      const x = await auth([['User-Name', username], ['CHAP-Password', chapPasswordOf(4, PASSWORD, challenge)], ['CHAP-Challenge', challenge], ['NAS-Port-Id', 'office-1']]);
      return x.reply.code === PacketCode.AccessAccept ? x : null;
    }, 3_000, 'CHAP with the upgraded hash');
    expect(chap.reply.code).toBe(PacketCode.AccessAccept);
    expect((await auth([['User-Name', username], ['User-Password', PASSWORD], ['NAS-Port-Id', 'office-1']])).reply.code).toBe(PacketCode.AccessAccept);
    expect((await auth([['User-Name', username], ['User-Password', 'not-it'], ['NAS-Port-Id', 'office-1']])).reply.code).toBe(PacketCode.AccessReject);
    // A hash already at the current cost is left alone.
    const current = await account('current');
    const before = (await sql<{ h: string }>`SELECT password_hash AS h FROM accounts WHERE id = ${current.id}`.execute(t.db)).rows[0]!.h;
    expect((await auth([['User-Name', current.username], ['User-Password', PASSWORD], ['NAS-Port-Id', 'office-1']])).reply.code).toBe(PacketCode.AccessAccept);
    await new Promise((r) => setTimeout(r, 200));
    expect((await sql<{ h: string }>`SELECT password_hash AS h FROM accounts WHERE id = ${current.id}`.execute(t.db)).rows[0]!.h).toBe(before);
  });

  it('never lets an upgrade overwrite a password changed since the login that verified the old one', async () => {
    const a = await account('race');
    const changed = await hashPassword('Changed-2026');
    await sql`UPDATE accounts SET password_hash = ${changed} WHERE id = ${a.id}`.execute(t.db);
    const key = credentialKeyBytes(CREDENTIAL_KEY)!;
    expect(await replacePasswordHash(t.db, key, a.id, hash, await hashPassword(PASSWORD), PASSWORD)).toBe(false);
    expect((await sql<{ h: string }>`SELECT password_hash AS h FROM accounts WHERE id = ${a.id}`.execute(t.db)).rows[0]!.h).toBe(changed);
  });

  it('puts Message-Authenticator first in every reply', async () => {
    const a = await account('ma');
    const r = await auth([['User-Name', a.username], ['User-Password', PASSWORD]]);
    expect(r.raw[20]).toBe(80);
    expect(r.raw[21]).toBe(18);
  });

  it('answers a retransmission with the identical reply bytes, processed once', async () => {
    const a = await account('dup');
    const packet = encodeRequest({
      code: PacketCode.AccessRequest,
      identifier: 77,
      attributes: [['User-Name', a.username], ['User-Password', PASSWORD], ['NAS-Port-Id', 'office-9']],
      secret: SECRET,
      dictionary,
    });
    const raw = await RadiusClient.open(dictionary);
    try {
      const first = raw.nextRaw(2_000);
      raw.sendRaw(packet, '127.0.0.1', app.radius.authPort);
      const one = await first;
      const replayedBefore = await metric('radius_requests_total', { code: 'access', result: 'replayed' });
      const second = raw.nextRaw(2_000);
      raw.sendRaw(packet, '127.0.0.1', app.radius.authPort);
      const two = await second;
      expect(one).not.toBeNull();
      expect(two!.equals(one!)).toBe(true);
      expect(verifyResponse(two!, packet, { dictionary, secret: SECRET }).code).toBe(PacketCode.AccessAccept);
      expect(await metric('radius_requests_total', { code: 'access', result: 'replayed' })).toBe(replayedBefore + 1);
    } finally {
      await raw.close();
    }
  });

  it('stays silent to an unknown address, a wrong secret and a missing Message-Authenticator', async () => {
    const a = await account('sil');
    const attrs: [string, string][] = [['User-Name', a.username], ['User-Password', PASSWORD]];
    const unknownBefore = await metric('radius_dropped_total', { reason: 'unknown_client' });
    const stranger = await RadiusClient.open(dictionary, { bindAddress: '127.0.0.2' });
    try {
      expect(await silent(auth(attrs, { c: stranger }))).toBe(true);
    } finally {
      await stranger.close();
    }
    expect(await metric('radius_dropped_total', { reason: 'unknown_client' })).toBeGreaterThan(unknownBefore);
    expect(await silent(auth(attrs, { secret: 'not-the-secret' }))).toBe(true);
    const noMa = client.request({ host: '127.0.0.1', port: app.radius.authPort, code: PacketCode.AccessRequest, attributes: attrs, secret: SECRET, messageAuthenticator: false, timeoutsMs: [500] });
    expect(await silent(noMa)).toBe(true);
    expect(await metric('radius_dropped_total', { reason: 'missing_message_authenticator' })).toBeGreaterThan(0);
  });

  it.skipIf(!ipv6)('serves a NAS over IPv6', async () => {
    const a = await account('six');
    const c6 = await RadiusClient.open(dictionary, { family: 6 });
    try {
      const r = await auth([['User-Name', a.username], ['User-Password', PASSWORD]], { host: '::1', c: c6 });
      expect(r.reply.code).toBe(PacketCode.AccessAccept);
    } finally {
      await c6.close();
    }
  });
});

describe('Status-Server', () => {
  it('is answered on the auth port with Access-Accept and on the accounting port with Accounting-Response', async () => {
    const onAuth = await client.request({ host: '127.0.0.1', port: app.radius.authPort, code: PacketCode.StatusServer, attributes: [], secret: SECRET, timeoutsMs: [700] });
    expect(onAuth.reply.code).toBe(PacketCode.AccessAccept);
    const onAcct = await client.request({ host: '127.0.0.1', port: app.radius.acctPort, code: PacketCode.StatusServer, attributes: [], secret: SECRET, timeoutsMs: [700] });
    expect(onAcct.reply.code).toBe(PacketCode.AccountingResponse);
  });
});

describe('Accounting-Request', () => {
  async function row(sessionId: string) {
    return t.db.selectFrom('acct_sessions').selectAll().where('session_id', '=', sessionId).executeTakeFirst();
  }

  it('stores Start, Interim-Update and Stop, each answered only once committed', async () => {
    const a = await account('acc');
    const sid = `S-${a.username}`;
    const base: [string, string | number][] = [['User-Name', a.username], ['Acct-Session-Id', sid], ['NAS-IP-Address', '127.0.0.1'], ['NAS-Port', 7], ['Framed-IP-Address', '10.9.8.7']];
    const start = await acct([...base, ['Acct-Status-Type', 'Start'], ['Event-Timestamp', 1_788_249_600]]);
    expect(start.reply.code).toBe(PacketCode.AccountingResponse);
    let r = await row(sid);
    expect(r).toMatchObject({ username: a.username, account_id: a.id, area: 'dorm', framed_ip: '10.9.8.7', stopped_at: null });
    expect(r!.started_at!.getTime()).toBe(1_788_249_600_000);

    await acct([...base, ['Acct-Status-Type', 'Interim-Update'], ['Acct-Session-Time', 600], ['Acct-Input-Octets', 5], ['Acct-Input-Gigawords', 1], ['Acct-Output-Octets', 10], ['Event-Timestamp', 1_788_250_200]]);
    r = await row(sid);
    expect(r).toMatchObject({ session_seconds: 600, input_octets: 2 ** 32 + 5, output_octets: 10, stopped_at: null });

    await acct([...base, ['Acct-Status-Type', 'Stop'], ['Acct-Session-Time', 900], ['Acct-Terminate-Cause', 'User-Request'], ['Event-Timestamp', 1_788_250_500]]);
    r = await row(sid);
    expect(r).toMatchObject({ session_seconds: 900, terminate_cause: 'User-Request' });
    expect(r!.stopped_at!.getTime()).toBe(1_788_250_500_000);

    // An Interim-Update arriving after the Stop does not reopen the session.
    await acct([...base, ['Acct-Status-Type', 'Interim-Update'], ['Acct-Session-Time', 700], ['Event-Timestamp', 1_788_250_300]]);
    r = await row(sid);
    expect(r!.stopped_at!.getTime()).toBe(1_788_250_500_000);
    expect(r!.session_seconds).toBe(900);
  });

  it('records a Stop whose Start was lost', async () => {
    const a = await account('lost');
    const sid = `L-${a.username}`;
    await acct([['User-Name', a.username], ['Acct-Session-Id', sid], ['Acct-Status-Type', 'Stop'], ['Acct-Session-Time', 120], ['Event-Timestamp', 1_788_250_000]]);
    const r = await row(sid);
    expect(r!.started_at!.getTime()).toBe(1_788_249_880_000);
    expect(r!.stopped_at!.getTime()).toBe(1_788_250_000_000);
  });

  it('closes every open session of the NAS on Accounting-On', async () => {
    const a = await account('on');
    const sids = [`On1-${a.username}`, `On2-${a.username}`];
    for (const sid of sids) await acct([['User-Name', a.username], ['Acct-Session-Id', sid], ['Acct-Status-Type', 'Start'], ['NAS-IP-Address', '127.0.0.9'], ['Event-Timestamp', 1_788_249_000]]);
    await acct([['Acct-Status-Type', 'Accounting-On'], ['NAS-IP-Address', '127.0.0.9'], ['Event-Timestamp', 1_788_260_000]]);
    for (const sid of sids) {
      const r = await row(sid);
      expect(r!.terminate_cause).toBe('NAS-Reboot');
      expect(r!.stopped_at!.getTime()).toBe(1_788_260_000_000);
    }
  });

  it('closes sessions not updated for ACCT_STALE_INTERVALS interim intervals', async () => {
    const a = await account('stale');
    const now = app.clock.now().getTime() / 1000;
    await acct([['User-Name', a.username], ['Acct-Session-Id', `St-${a.username}`], ['Acct-Status-Type', 'Start'], ['Event-Timestamp', now - 3 * 600 - 5]]);
    await acct([['User-Name', a.username], ['Acct-Session-Id', `Fr-${a.username}`], ['Acct-Status-Type', 'Start'], ['Event-Timestamp', now - 60]]);
    await app.radius.server.sweepStale();
    expect((await row(`St-${a.username}`))!.terminate_cause).toBe('Stale-Session');
    expect((await row(`Fr-${a.username}`))!.stopped_at).toBeNull();
  });
});

describe('radclient (FreeRADIUS) as a BRAS', () => {
  const host = () => `127.0.0.1:${app.radius.authPort}`;

  it('gets an Accept for an office login with no Blast-RADIUS warning', async () => {
    const a = await account('rc');
    const r = await radclient(['-x', '-t', '2', '-r', '1', host(), 'auth', SECRET], `User-Name=${a.username},User-Password=${PASSWORD},NAS-Port-Id=office-5,Message-Authenticator=0x00\n`);
    expect(r.stdout).toMatch(/Received Access-Accept/);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/blast/i);
    expect(r.code).toBe(0);
  });

  it('gets a Reject with the arrears Reply-Message for a dorm login at balance 0, then an Accept with Session-Timeout after a top-up', async () => {
    const a = await account('rcd');
    const input = `User-Name=${a.username},User-Password=${PASSWORD},Message-Authenticator=0x00\n`;
    const rej = await radclient(['-x', '-t', '2', '-r', '1', host(), 'auth', SECRET], input);
    expect(rej.stdout).toMatch(/Received Access-Reject/);
    expect(rej.stdout).toContain('Account in arrears: balance 0.00 yuan, 20.00 needed');
    await app.billing.topUp({ username: a.username, channel: 'alipay', orderId: `rc-${a.username}`, amountFen: 2000 });
    const acc = await radclient(['-x', '-t', '2', '-r', '1', host(), 'auth', SECRET], input);
    expect(acc.stdout).toMatch(/Received Access-Accept/);
    expect(acc.stdout).toMatch(new RegExp(`Session-Timeout = ${THIRTY_DAYS_S}`));
    expect(`${acc.stdout}${acc.stderr}`).not.toMatch(/blast/i);
  });

  it('gets an Accounting-Response for Start, Interim-Update and Stop', async () => {
    const a = await account('rca');
    for (const type of ['Start', 'Interim-Update', 'Stop']) {
      const r = await radclient(['-x', '-t', '2', '-r', '1', `127.0.0.1:${app.radius.acctPort}`, 'acct', SECRET], `User-Name=${a.username},Acct-Session-Id=rc-${a.username},Acct-Status-Type=${type},Acct-Session-Time=60\n`);
      expect(r.stdout).toMatch(/Received Accounting-Response/);
    }
    const s = await t.db.selectFrom('acct_sessions').selectAll().where('session_id', '=', `rc-${a.username}`).executeTakeFirstOrThrow();
    expect(s.stopped_at).not.toBeNull();
  });

  it('gets the cached reply when it retransmits after a lost answer, and the login is decided once', async () => {
    const a = await account('rcr');
    // A relay that loses the server's first answer, so radclient retransmits the identical request.
    const relay = dgram.createSocket('udp4');
    const upstream = dgram.createSocket('udp4');
    await new Promise<void>((r) => relay.bind(0, '127.0.0.1', () => r()));
    await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', () => r()));
    let peer: { port: number; address: string } | null = null;
    let answers = 0;
    relay.on('message', (msg, rinfo) => {
      peer = { port: rinfo.port, address: rinfo.address };
      upstream.send(msg, app.radius.authPort, '127.0.0.1');
    });
    upstream.on('message', (msg) => {
      if (++answers === 1 || !peer) return;
      relay.send(msg, peer.port, peer.address);
    });
    try {
      const replayed = await metric('radius_requests_total', { code: 'access', result: 'replayed' });
      const r = await radclient(['-x', '-t', '1', '-r', '3', `127.0.0.1:${relay.address().port}`, 'auth', SECRET], `User-Name=${a.username},User-Password=${PASSWORD},NAS-Port-Id=office-7,Message-Authenticator=0x00\n`);
      expect(r.stdout).toMatch(/Received Access-Accept/);
      expect(answers).toBe(2);
      expect(await metric('radius_requests_total', { code: 'access', result: 'replayed' })).toBe(replayed + 1);
    } finally {
      relay.close();
      upstream.close();
    }
  });

  it('gets no reply with a wrong secret', async () => {
    const r = await radclient(['-t', '1', '-r', '1', host(), 'auth', 'wrong-secret'], `User-Name=x,User-Password=y,Message-Authenticator=0x00\n`);
    expect(r.stdout).not.toMatch(/Received/);
    expect(r.code).not.toBe(0);
  });

  it('gets an answer to Status-Server', async () => {
    const r = await radclient(['-x', '-t', '2', '-r', '1', host(), 'status', SECRET], 'Message-Authenticator=0x00\n');
    expect(r.stdout).toMatch(/Received Access-Accept/);
  });
});

describe('Disconnect on arrears (RFC 5176)', () => {
  it('sends a Disconnect-Request to the NAS when settlement leaves an account in arrears, and records the ACK', async () => {
    const a = await account('kick', 2000);
    const login = await auth([['User-Name', a.username], ['User-Password', PASSWORD]]);
    expect(login.reply.code).toBe(PacketCode.AccessAccept);
    const sid = `K-${a.username}`;
    await acct([['User-Name', a.username], ['Acct-Session-Id', sid], ['Acct-Status-Type', 'Start'], ['NAS-IP-Address', '127.0.0.1'], ['Framed-IP-Address', '10.1.2.3']]);
    const before = coaNas.received.length;
    const { report } = await app.clock.advance(THIRTY_DAYS_S);
    expect(report.closed).toBeGreaterThanOrEqual(1);
    const req = coaNas.received.slice(before).find((p) => p.get('User-Name') === a.username);
    expect(req).toBeDefined();
    expect(req!.code).toBe(PacketCode.DisconnectRequest);
    expect(req!.get('Acct-Session-Id')).toBe(sid);
    expect(req!.get('Framed-IP-Address')).toBe('10.1.2.3');
    expect(req!.hasMessageAuthenticator).toBe(true);
    const recorded = await t.db.selectFrom('disconnect_requests').selectAll().where('account_id', '=', a.id).executeTakeFirstOrThrow();
    expect(recorded).toMatchObject({ reason: 'arrears', outcome: 'ack', attempts: 1 });
    const s = await t.db.selectFrom('acct_sessions').selectAll().where('session_id', '=', sid).executeTakeFirstOrThrow();
    expect(s.terminate_cause).toBe('Admin-Reset');
    // And the next dorm login is refused with the arrears message.
    const after = await auth([['User-Name', a.username], ['User-Password', PASSWORD]]);
    expect(after.reply.get('Reply-Message')).toBe('账户欠费：余额 0.00 元，需 20.00 元 / Account in arrears: balance 0.00 yuan, 20.00 needed');
  });
});
