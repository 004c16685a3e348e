import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { AttributeInput } from '../../src/radius/attributes.ts';
import { loadDictionary } from '../../src/radius/dictionary.ts';
import { encodeRequest, PacketCode, verifyResponse, type RequestCode } from '../../src/radius/packet.ts';
import { PASSWORD, passwordHash, seedNas, seedTopUps } from './db.ts';
import { Expectations, expectAuditPasses, expectCleanStop, scenarioDatabase, scrapeMetrics, serviceEnv, startService, waitFor, type Metrics, type Scenario } from './harness.ts';

const NOW = new Date('2026-09-01T08:00:00Z');
const SECRET = 'dorm-bras-secret';
const BALANCE = 4_000;
const COPIES = 10;
const BURST = 5;
const PER_SOCKET = 250;

interface Request {
  readonly kind: 'dorm' | 'office' | 'start' | 'interim';
  readonly code: RequestCode;
  readonly port: 'auth' | 'acct';
  readonly socket: number;
  readonly bytes: Buffer;
  readonly replies: Buffer[];
  sent: number;
  /** Copies sent after the first reply had arrived: each must be answered from the reply cache. */
  sentAfterReply: number;
}

/**
 * Scenario 5: a storm of retransmissions (RFC 5080 §2.2.2). Every request, Access-Requests that open a
 * dorm cycle or log in to the office area and accounting Starts and Interim-Updates, is sent at least 10 times with
 * the same source port, identifier and authenticator: five copies at once, one every 2 s while it is still
 * unanswered, five more after the answer.
 * Each must be processed once (the server's decision and commit counters move once per request, one cycle
 * per account) and every answer to one request must be the same bytes; a copy that arrives while the
 * request is still being processed may be dropped, but must be counted as a duplicate.
 */
export const retransmitStorm: Scenario = {
  id: 'retransmit-storm',
  title: 'a storm of retransmissions: each request processed once, answered with identical bytes',
  budgetMs: (quick) => (quick ? 60_000 : 90_000),
  async run(ctx, cleanup) {
    const logins = ctx.quick ? 100 : 400;
    const sessions = ctx.quick ? 100 : 400;
    const x = new Expectations();
    const { pg, db } = await scenarioDatabase(ctx, cleanup);
    const hash = await passwordHash();
    await sql`
      INSERT INTO accounts (username, kind, password_hash, balance_fen)
      SELECT 'r' || g, 'student', ${hash}, ${BALANCE} FROM generate_series(1, ${logins}::int) g`.execute(db);
    await seedTopUps(db, NOW);
    await seedNas(db, { name: 'bras', address: '127.0.0.1', secret: SECRET, area: 'dorm', areaRules: [{ attribute: 'NAS-Port-Id', pattern: '^office', area: 'office' }] });

    const service = await startService(ctx, cleanup, serviceEnv(pg, NOW));
    const dictionary = loadDictionary();

    // Three in four logins are a first dorm login (a cycle opens); the rest are office logins.
    const specs: { kind: Request['kind']; code: RequestCode; attributes: [string, AttributeInput][] }[] = [];
    for (let g = 1; g <= logins; g++) {
      const office = g % 4 === 0;
      specs.push({
        kind: office ? 'office' : 'dorm',
        code: PacketCode.AccessRequest,
        attributes: [['User-Name', `r${g}`], ['User-Password', PASSWORD], ['NAS-Port-Id', office ? 'office-2F' : 'dorm-7']],
      });
    }
    for (let k = 1; k <= sessions; k++) {
      const base: [string, AttributeInput][] = [['User-Name', `r${1 + (k % logins)}`], ['Acct-Session-Id', `storm-${k}`], ['NAS-IP-Address', '127.0.0.1'], ['NAS-Port-Id', 'dorm-7']];
      specs.push({ kind: 'start', code: PacketCode.AccountingRequest, attributes: [...base, ['Acct-Status-Type', 'Start']] });
      specs.push({
        kind: 'interim',
        code: PacketCode.AccountingRequest,
        attributes: [...base, ['Acct-Status-Type', 'Interim-Update'], ['Acct-Session-Time', 600], ['Acct-Input-Octets', 1_000 + k], ['Acct-Output-Octets', 5_000 + k]],
      });
    }
    // Starts before their Interim-Updates in the first burst, as a NAS sends them.
    const requests: Request[] = specs.map((s, i) => ({
      kind: s.kind,
      code: s.code,
      port: s.code === PacketCode.AccessRequest ? 'auth' : 'acct',
      socket: Math.floor(i / PER_SOCKET),
      bytes: encodeRequest({ code: s.code, identifier: i % PER_SOCKET, attributes: s.attributes, secret: SECRET, dictionary }),
      replies: [],
      sent: 0,
      sentAfterReply: 0,
    }));
    const sockets = await Promise.all(
      Array.from({ length: Math.ceil(requests.length / PER_SOCKET) }, async (_, si) => {
        const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
        await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
        socket.on('message', (msg) => {
          const r = requests[si * PER_SOCKET + (msg[1] ?? 0)];
          if (r) r.replies.push(msg);
        });
        return socket;
      }),
    );
    cleanup.add('sockets', () => {
      for (const s of sockets) s.close();
    });
    const send = (r: Request) => {
      r.sent++;
      if (r.replies.length > 0) r.sentAfterReply++;
      sockets[r.socket]!.send(r.bytes, r.port === 'auth' ? service.authPort : service.acctPort, '127.0.0.1');
    };

    const counters = (m: Metrics) => ({
      total: m.sum('radius_requests_total'),
      decided: m.sum('radius_requests_total', { result: 'accept' }) + m.sum('radius_requests_total', { result: 'reject' }),
      stored: m.sum('radius_requests_total', { code: 'accounting', result: 'stored' }),
      replayed: m.sum('radius_requests_total', { result: 'replayed' }),
      duplicates: m.sum('radius_dropped_total', { reason: 'duplicate' }),
      overload: m.sum('radius_dropped_total', { reason: 'overload' }),
      dropped: m.sum('radius_dropped_total'),
      decisions: m.sum('radius_auth_decisions_total'),
      committed: m.sum('radius_acct_batch_size_sum'),
    });
    const before = counters(await scrapeMetrics(service.apiUrl));

    for (let copy = 0; copy < BURST; copy++) for (const r of requests) send(r);
    // Then, as a NAS does, a copy every 2 s of whatever is still unanswered: a request whose five copies all
    // arrived while the password verification queue was full (all shed as overload) is processed on one of
    // these. Without them the test waited for answers no NAS would get either (with 2 verifications at once
    // instead of 4, every copy of ~100 logins was shed).
    let retriedAt = Date.now();
    let retries = 0;
    await waitFor(
      () => {
        if (Date.now() - retriedAt >= 2_000) {
          retriedAt = Date.now();
          for (const r of requests) {
            if (r.replies.length > 0) continue;
            send(r);
            retries++;
          }
        }
        return requests.every((r) => r.replies.length > 0);
      },
      30_000,
      'a first answer to every request',
      20,
    );
    for (let copy = BURST; copy < COPIES; copy++) {
      for (const r of requests) send(r);
      await sleep(50);
    }
    const sent = requests.reduce((s, r) => s + r.sent, 0);
    await waitFor(async () => (await scrapeMetrics(service.apiUrl)).sum('radius_requests_total') - before.total >= sent, 10_000, 'the server to account for every copy');
    await sleep(200);
    const after = counters(await scrapeMetrics(service.apiUrl));
    const d = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]])) as typeof before;

    const auth = requests.filter((r) => r.port === 'auth').length;
    const acct = requests.length - auth;
    let notIdentical = 0;
    let unanswered = 0;
    let lateUnanswered = 0;
    let wrongCode = 0;
    for (const r of requests) {
      if (r.replies.length === 0) unanswered++;
      if (r.replies.some((b) => !b.equals(r.replies[0]!))) notIdentical++;
      if (r.replies.length < 1 + r.sentAfterReply) lateUnanswered++;
      const first = r.replies[0];
      if (first) {
        const reply = verifyResponse(first, r.bytes, { dictionary, secret: SECRET });
        const want = r.port === 'auth' ? PacketCode.AccessAccept : PacketCode.AccountingResponse;
        if (reply.code !== want) wrongCode++;
      }
    }
    const received = requests.reduce((s, r) => s + r.replies.length, 0);
    x.eq(unanswered, 0, 'requests never answered');
    x.eq(notIdentical, 0, 'requests whose answers differ in their bytes');
    x.eq(lateUnanswered, 0, 'requests with a copy sent after the answer that was not answered again');
    x.eq(wrongCode, 0, 'answers with an unexpected code (Accept for every funded login, Accounting-Response)');
    x.eq(d.total, sent, 'copies the server accounted for (answered, replayed or dropped)');
    x.eq(d.decided, auth, 'Access-Requests decided (once each)');
    x.eq(d.stored, acct, 'Accounting-Requests stored (once each)');
    x.eq(d.committed, acct, 'accounting records committed to the database (once each)');
    x.eq(d.replayed, received - requests.length, 'answers replayed from the reply cache');
    x.eq(d.dropped, sent - received, 'copies dropped (counted) vs copies sent - answers received');
    // A copy of a request in progress is dropped as a duplicate; a first copy may be shed as overload when
    // the password verification queue is full (the next copy is then processed). Nothing else.
    x.eq(d.dropped - d.duplicates - d.overload, 0, 'copies dropped for another reason than a duplicate in progress or overload');

    const db2 = (
      await sql<{ cycles: number; two_running: number; balances: number; sessions: number; interim_ok: number }>`
        SELECT (SELECT count(*) FROM cycles)::bigint AS cycles,
               (SELECT count(*) FROM (SELECT account_id FROM cycles GROUP BY account_id HAVING count(*) > 1) r)::bigint AS two_running,
               (SELECT coalesce(sum(balance_fen), 0) FROM accounts)::bigint AS balances,
               (SELECT count(*) FROM acct_sessions WHERE session_id LIKE 'storm-%')::bigint AS sessions,
               (SELECT count(*) FROM acct_sessions WHERE session_id LIKE 'storm-%'
                  AND input_octets = 1000 + substr(session_id, 7)::int AND output_octets = 5000 + substr(session_id, 7)::int)::bigint AS interim_ok`.execute(db)
    ).rows[0]!;
    const dormLogins = requests.filter((r) => r.kind === 'dorm').length;
    x.eq(db2.cycles, dormLogins, 'cycles opened (one per dorm account)');
    x.eq(db2.two_running, 0, 'accounts with more than one cycle');
    x.eq(db2.balances, logins * BALANCE, 'fen held (nothing is charged before an anniversary)');
    x.eq(db2.sessions, sessions, 'accounting sessions stored');
    x.eq(db2.interim_ok, sessions, 'sessions holding their Interim-Update counters');

    await expectCleanStop(x, service);
    const audit = await expectAuditPasses(x, pg, NOW);

    return {
      failures: x.failures,
      figures: {
        'distinct requests': requests.length,
        'Access-Requests': auth,
        'Accounting-Requests': acct,
        'copies sent': sent,
        'copies resent every 2 s while unanswered': retries,
        'answers received': received,
        'answers replayed from the cache': d.replayed,
        'copies dropped while in progress (counted as duplicate)': d.duplicates,
        'first copies shed as overload (password verification queue full), processed on a later copy': d.overload,
        'decisions made': d.decisions,
        'accounting records committed': d.committed,
        'requests with differing answers': notIdentical,
        'cycles opened': db2.cycles,
        audit,
      },
    };
  },
};
