import { createHash, createHmac } from 'node:crypto';
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { AttributeInput } from '../../src/radius/attributes.ts';
import { loadDictionary, type Dictionary } from '../../src/radius/dictionary.ts';
import { chapPasswordOf, encodeRequest, PacketCode, type RequestCode } from '../../src/radius/packet.ts';
import { PASSWORD, passwordHash, seedNas, seedTopUps } from './db.ts';
import { Expectations, expectAuditPasses, expectCleanStop, mib, scenarioDatabase, scrapeMetrics, serviceEnv, startService, udpRcvbufErrors, type Scenario } from './harness.ts';

const NOW = new Date('2026-09-01T08:00:00Z');
const SECRET = Buffer.from('fuzz-bras-secret');
const AUTO_SECRET = Buffer.from('fuzz-auto-secret');
const MA = 80;
/**
 * Allowed growth from the end of the warm-up (a tenth of the packets) to the end of the run, both measured
 * right after a full garbage collection: the server's caches (reply cache, credential verdicts) are full by
 * then, so anything beyond this is a leak.
 */
const RSS_BOUND = 48 * 2 ** 20;
const HEAP_BOUND = 24 * 2 ** 20;

type Rand = () => number;

function pick<T>(r: Rand, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

function int(r: Rand, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

const NOISE_BYTES = 1 << 20;
let noise: Buffer | null = null;

/**
 * Random bytes from the seeded generator (node's randomBytes would make a run unrepeatable): a copy of a
 * random stretch of one megabyte of noise drawn once, as drawing every byte costs more than sending it.
 */
function bytes(r: Rand, n: number): Buffer {
  if (noise === null) {
    noise = Buffer.allocUnsafe(NOISE_BYTES);
    for (let i = 0; i < NOISE_BYTES; i++) noise[i] = Math.floor(r() * 256);
  }
  const at = Math.floor(r() * (NOISE_BYTES - n));
  return Buffer.from(noise.subarray(at, at + n));
}

interface Seed {
  readonly name: string;
  /** How often it is picked, relative to the others. */
  readonly weight: number;
  readonly code: RequestCode;
  readonly port: 'auth' | 'acct';
  readonly secret: Buffer;
  readonly ma: boolean;
  readonly attributes: (r: Rand) => [string, AttributeInput][];
}

function seeds(): Seed[] {
  const user = (r: Rand) => (r() < 0.8 ? `f${int(r, 1, 50)}` : `nobody${int(r, 1, 1_000_000)}`);
  const nas: [string, AttributeInput][] = [
    ['NAS-IP-Address', '127.0.0.1'],
    ['NAS-Identifier', 'bras-fuzz'],
  ];
  const acct = (status: string) => (r: Rand): [string, AttributeInput][] => [
    ['User-Name', user(r)],
    ['Acct-Status-Type', status],
    ['Acct-Session-Id', `fz-${int(r, 100_000_000_000, 999_999_999_999)}`],
    ...nas,
    ['NAS-Port', int(r, 0, 4096)],
    ['NAS-Port-Id', pick(r, ['dorm-1', 'office-3', 'vlan 1024'])],
    ['Framed-IP-Address', `10.${int(r, 0, 255)}.${int(r, 0, 255)}.${int(r, 1, 254)}`],
    ['Calling-Station-Id', '00-11-22-33-44-55'],
    ['Acct-Session-Time', int(r, 0, 100_000)],
    ['Acct-Input-Octets', int(r, 0, 2 ** 32 - 1)],
    ['Acct-Input-Gigawords', int(r, 0, 3)],
    ['Acct-Output-Octets', int(r, 0, 2 ** 32 - 1)],
    ['Acct-Input-Packets', int(r, 0, 1_000_000)],
    ['Event-Timestamp', int(r, 1_700_000_000, 1_900_000_000)],
    ['Acct-Delay-Time', int(r, 0, 30)],
    ['Acct-Interim-Interval', 600],
    ...(status === 'Stop' ? ([['Acct-Terminate-Cause', 'User-Request']] as [string, AttributeInput][]) : []),
  ];
  const access = (r: Rand): [string, AttributeInput][] => [
    ['User-Name', user(r)],
    ['User-Password', r() < 0.7 ? PASSWORD : `wrong-${int(r, 1, 20)}`],
    ...nas,
    ['NAS-Port', int(r, 0, 4096)],
    ['NAS-Port-Id', pick(r, ['dorm-1', 'office-3'])],
    ['Called-Station-Id', 'campus-wifi'],
    ['Calling-Station-Id', '00-11-22-33-44-55'],
    ['Service-Type', 'Framed-User'],
    ['Proxy-State', Buffer.from('proxy-1')],
    ['Huawei-Input-Average-Rate', 1_000_000],
  ];
  const chap = (r: Rand): [string, AttributeInput][] => {
    const challenge = bytes(r, 16);
    return [['User-Name', user(r)], ['CHAP-Password', chapPasswordOf(int(r, 0, 255), PASSWORD, challenge)], ['CHAP-Challenge', challenge], ...nas];
  };
  return [
    { name: 'access-pap', weight: 6, code: PacketCode.AccessRequest, port: 'auth', secret: SECRET, ma: true, attributes: access },
    { name: 'access-pap-auto-nas', weight: 1, code: PacketCode.AccessRequest, port: 'auth', secret: AUTO_SECRET, ma: true, attributes: access },
    { name: 'access-chap', weight: 2, code: PacketCode.AccessRequest, port: 'auth', secret: SECRET, ma: true, attributes: chap },
    { name: 'status-auth', weight: 1, code: PacketCode.StatusServer, port: 'auth', secret: SECRET, ma: true, attributes: () => [['NAS-Identifier', 'bras-fuzz']] },
    { name: 'status-acct', weight: 1, code: PacketCode.StatusServer, port: 'acct', secret: SECRET, ma: true, attributes: () => [] },
    { name: 'acct-start', weight: 3, code: PacketCode.AccountingRequest, port: 'acct', secret: SECRET, ma: false, attributes: acct('Start') },
    { name: 'acct-interim', weight: 3, code: PacketCode.AccountingRequest, port: 'acct', secret: SECRET, ma: false, attributes: acct('Interim-Update') },
    { name: 'acct-stop', weight: 2, code: PacketCode.AccountingRequest, port: 'acct', secret: SECRET, ma: true, attributes: acct('Stop') },
    { name: 'acct-on', weight: 0.3, code: PacketCode.AccountingRequest, port: 'acct', secret: SECRET, ma: false, attributes: () => [['Acct-Status-Type', 'Accounting-On'], ...nas] },
  ];
}

/** The attributes of a well-formed packet as whole TLVs. */
function splitAttributes(packet: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let o = 20;
  while (o + 2 <= packet.length) {
    const len = packet[o + 1]!;
    if (len < 2 || o + len > packet.length) break;
    out.push(packet.subarray(o, o + len));
    o += len;
  }
  return out;
}

function tlv(type: number, value: Buffer): Buffer {
  const v = value.length > 253 ? value.subarray(0, 253) : value;
  return Buffer.concat([Buffer.from([type, v.length + 2]), v]);
}

/**
 * Signs a (mutated) request as its NAS would, so it passes authentication and the decoder and handlers
 * meet the malformed content: Message-Authenticator (RFC 3579 §3.2) when the first attribute is one, then
 * for Accounting-Request the Request Authenticator (RFC 2866 §3). Written here from the RFCs, not taken
 * from the server's code.
 */
function sign(packet: Buffer, secret: Buffer): void {
  if (packet.length < 20) return;
  const length = Math.min(packet.readUInt16BE(2), packet.length);
  const body = packet.subarray(0, length);
  const accounting = packet[0] === PacketCode.AccountingRequest;
  if (accounting) packet.fill(0, 4, 20);
  if (length >= 38 && packet[20] === MA && packet[21] === 18) {
    packet.fill(0, 22, 38);
    createHmac('md5', secret).update(body).digest().copy(packet, 22);
  }
  if (accounting) createHash('md5').update(body).update(secret).digest().copy(packet, 4);
}

const ACCT_SESSION_ID = 44;

/** Writes new random digits over the digits of a `fz-<12 digits>` Acct-Session-Id in place. */
function renameSession(r: Rand, packet: Buffer): void {
  for (let o = 20; o + 2 <= packet.length; o += packet[o + 1]!) {
    const len = packet[o + 1]!;
    if (len < 2) return;
    if (packet[o] === ACCT_SESSION_ID && len === 2 + 15) {
      for (let i = o + 5; i < o + len; i++) packet[i] = 0x30 + Math.floor(r() * 10);
      return;
    }
  }
}

const NASTY_STRINGS = [Buffer.from([0]), Buffer.from([0xff, 0xfe, 0xfd]), Buffer.from('%s%s%n'), Buffer.from("' OR 1=1; --"), Buffer.from('\u0000a\u0000'), Buffer.alloc(253, 0x41)];
const INTS = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff];

/** One attribute-level mutation of the TLV list; index 0 (Message-Authenticator when present) is kept. */
function mutateAttributes(r: Rand, attrs: Buffer[], keepFirst: boolean): void {
  const lo = keepFirst ? 1 : 0;
  const at = () => (attrs.length > lo ? int(r, lo, attrs.length - 1) : -1);
  switch (int(r, 0, 13)) {
    case 0: {
      const i = at();
      if (i >= 0) attrs[i] = tlv(attrs[i]![0]!, bytes(r, pick(r, [0, 1, 2, 3, 4, 5, 6, 8, 16, 17, 32, 253])));
      return;
    }
    case 1: {
      const i = at();
      if (i >= 0) {
        const b = Buffer.from(attrs[i]!);
        b[1] = pick(r, [0, 1, 2, 3, int(r, 0, 255)]);
        attrs[i] = b;
      }
      return;
    }
    case 2:
      attrs.splice(int(r, lo, attrs.length), 0, tlv(int(r, 1, 255), bytes(r, int(r, 0, 40))));
      return;
    case 3: {
      // A Vendor-Specific attribute, well formed or not, of a known vendor or another.
      const vendor = pick(r, [2011, 25506, 9, 311, int(r, 0, 2 ** 32 - 1)]);
      const subs: Buffer[] = [];
      for (let k = int(r, 0, 3); k > 0; k--) {
        const value = bytes(r, int(r, 0, 12));
        const len = r() < 0.8 ? value.length + 2 : int(r, 0, 255);
        subs.push(Buffer.concat([Buffer.from([int(r, 0, 255), len]), value]));
      }
      const head = Buffer.alloc(4);
      head.writeUInt32BE(vendor);
      attrs.splice(int(r, lo, attrs.length), 0, tlv(26, Buffer.concat([head, ...subs])));
      return;
    }
    case 4: {
      const i = at();
      if (i >= 0) attrs.splice(i, 1);
      return;
    }
    case 5: {
      const i = at();
      if (i >= 0) attrs.splice(i, 0, attrs[i]!);
      return;
    }
    case 6: {
      const i = at();
      const j = at();
      if (i >= 0 && j >= 0) [attrs[i], attrs[j]] = [attrs[j]!, attrs[i]!];
      return;
    }
    case 7: {
      // Integers at their limits, or an integer-typed attribute of a wrong width.
      const i = at();
      if (i < 0) return;
      const v = Buffer.alloc(pick(r, [4, 4, 4, 3, 5, 8]));
      if (v.length === 4) v.writeUInt32BE(pick(r, INTS));
      attrs[i] = tlv(attrs[i]![0]!, v);
      return;
    }
    case 8: {
      const i = at();
      if (i >= 0) attrs[i] = tlv(attrs[i]![0]!, pick(r, NASTY_STRINGS));
      return;
    }
    case 9:
      // A hidden User-Password of a length the RFC does not allow.
      attrs.splice(int(r, lo, attrs.length), 0, tlv(2, bytes(r, pick(r, [0, 1, 15, 17, 31, 144, 253]))));
      return;
    case 10:
      // Proxy-State enough to push the reply past the 4096-octet limit.
      for (let k = int(r, 1, 16); k > 0; k--) attrs.push(tlv(33, bytes(r, 253)));
      return;
    case 11:
      // EAP-Message: makes Message-Authenticator mandatory (RFC 3579 §3.3).
      attrs.push(tlv(79, bytes(r, int(r, 0, 60))));
      return;
    case 12:
      // A second Message-Authenticator.
      attrs.push(tlv(MA, Buffer.alloc(16)));
      return;
    default: {
      const i = at();
      if (i >= 0) attrs[i] = attrs[i]!.subarray(0, int(r, 0, attrs[i]!.length - 1));
    }
  }
}

/** Encoded variants of every seed, drawn once; each use copies one and gives it a new identifier. */
interface SeedPool {
  readonly seeds: readonly Seed[];
  readonly variants: readonly Buffer[][];
  readonly totalWeight: number;
}

function seedPool(r: Rand, dictionary: Dictionary, perSeed: number): SeedPool {
  const all = seeds();
  const variants = all.map((seed) =>
    Array.from({ length: perSeed }, () =>
      encodeRequest({
        code: seed.code,
        identifier: 0,
        attributes: seed.attributes(r),
        secret: seed.secret,
        dictionary,
        messageAuthenticator: seed.ma,
        ...(seed.code !== PacketCode.AccountingRequest ? { authenticator: bytes(r, 16) } : {}),
      }),
    ),
  );
  return { seeds: all, variants, totalWeight: all.reduce((sum, x) => sum + x.weight, 0) };
}

/** Makes one fuzz datagram and names the family it came from. */
function makePacket(r: Rand, pool: SeedPool): { packet: Buffer; port: 'auth' | 'acct'; source: 'nas' | 'auto' | 'unknown'; family: string } {
  let w = r() * pool.totalWeight;
  let index = pool.seeds.findIndex((x) => (w -= x.weight) < 0);
  if (index < 0) index = 0;
  const seed = pool.seeds[index]!;
  const variants = pool.variants[index]!;
  const source = seed.secret === AUTO_SECRET ? 'auto' : r() < 0.03 ? 'unknown' : 'nas';
  // A valid packet: a copy of a variant with a new identifier (and a new Acct-Session-Id, so accounting
  // does not keep hitting the same few rows), signed again.
  const fresh = () => {
    const packet = Buffer.from(variants[Math.floor(r() * variants.length)]!);
    packet[1] = int(r, 0, 255);
    if (seed.code === PacketCode.AccountingRequest) renameSession(r, packet);
    sign(packet, seed.secret);
    return packet;
  };
  const port = r() < 0.05 ? (seed.port === 'auth' ? 'acct' : 'auth') : seed.port;
  const roll = r();
  if (roll < 0.1) return { packet: fresh(), port, source, family: 'valid' };
  if (roll < 0.55) {
    // Structure-aware: mutate the attributes, fix the length (mostly) and sign it as the NAS would.
    const base = fresh();
    const attrs = splitAttributes(base);
    for (let k = int(r, 1, 3); k > 0; k--) mutateAttributes(r, attrs, seed.ma);
    const tail = r() < 0.1 ? bytes(r, int(r, 1, 64)) : Buffer.alloc(0);
    const packet = Buffer.concat([base.subarray(0, 20), ...attrs, tail]);
    const length = r() < 0.9 ? packet.length - tail.length : int(r, 0, 0xffff);
    packet.writeUInt16BE(Math.min(length, 0xffff), 2);
    sign(packet, seed.secret);
    return { packet, port, source, family: 'signed-mutation' };
  }
  if (roll < 0.85) {
    // Byte-level damage to a valid packet, not signed again.
    const packet = Buffer.from(fresh());
    switch (int(r, 0, 4)) {
      case 0:
        for (let k = int(r, 1, 8); k > 0; k--) {
          const i = int(r, 0, packet.length - 1);
          packet[i] = packet[i]! ^ (1 << int(r, 0, 7));
        }
        return { packet, port, source, family: 'bit-flip' };
      case 1:
        for (let k = int(r, 1, 4); k > 0; k--) packet[int(r, 0, packet.length - 1)] = int(r, 0, 255);
        return { packet, port, source, family: 'byte-set' };
      case 2:
        return { packet: packet.subarray(0, int(r, 0, packet.length - 1)), port, source, family: 'truncated' };
      case 3:
        packet[0] = pick(r, [0, 2, 3, 5, 11, 13, 40, 41, 43, 44, 255, int(r, 0, 255)]);
        return { packet, port, source, family: 'code' };
      default:
        packet.writeUInt16BE(pick(r, [0, 19, 20, packet.length - 1, packet.length + 1, 4097, 0xffff]), 2);
        return { packet, port, source, family: 'length-field' };
    }
  }
  // Garbage, sometimes dressed as a signed request of the right length.
  const packet = bytes(r, pick(r, [0, 1, 19, 20, int(r, 20, 300), int(r, 300, 4200)]));
  if (packet.length >= 20 && r() < 0.5) {
    packet[0] = pick(r, [PacketCode.AccessRequest, PacketCode.AccountingRequest, PacketCode.StatusServer]);
    packet.writeUInt16BE(Math.min(packet.length, 0xffff), 2);
    sign(packet, seed.secret);
    return { packet, port, source, family: 'signed-garbage' };
  }
  return { packet, port, source, family: 'garbage' };
}

/**
 * Scenario 6: at least 1,000,000 random and mutated datagrams against the running service: valid packets,
 * structure-aware mutations signed with the right secret from registered NAS addresses (so they reach the
 * attribute decoding and the handlers), byte-level damage, and garbage, some from an unknown address. Sent
 * in windows; after each the suite waits until the server has accounted for every datagram (answered,
 * replayed or dropped with a reason), which also keeps the kernel's socket buffer from overflowing. No
 * crash, no unhandled rejection, RSS bounded, and dropped = sent - answered exactly.
 */
export const fuzz: Scenario = {
  id: 'fuzz',
  title: 'decoder fuzzing: random and mutated packets against the running server',
  budgetMs: (quick) => (quick ? 120_000 : 420_000),
  async run(ctx, cleanup) {
    const total = ctx.quick ? 100_000 : 1_000_000;
    const creditPackets = 4_000;
    const creditBytes = 3 << 20;
    const pollMs = 15;
    const x = new Expectations();
    const { pg, db, tariffId } = await scenarioDatabase(ctx, cleanup);
    const hash = await passwordHash();
    // Fifty accounts: funded with a running cycle, funded without one, and in arrears.
    await sql`
      INSERT INTO accounts (username, kind, password_hash, balance_fen)
      SELECT 'f' || g, 'student', ${hash}, CASE WHEN g % 3 = 0 THEN 500 ELSE 1000000 END FROM generate_series(1, 50) g`.execute(db);
    await seedTopUps(db, NOW);
    await sql`
      INSERT INTO cycles (account_id, seq, started_at, ends_at, fee_fen, tariff_id, opened_by)
      SELECT id, 1, ${NOW}::timestamptz - interval '1 day', ${NOW}::timestamptz + interval '29 days', 2000, ${tariffId}, 'login'
      FROM accounts WHERE substr(username, 2)::int % 3 = 1`.execute(db);
    await seedNas(db, { name: 'bras-fuzz', address: '127.0.0.1', secret: SECRET.toString(), area: 'dorm', areaRules: [{ attribute: 'NAS-Port-Id', pattern: '^office', area: 'office' }] });
    await seedNas(db, { name: 'bras-auto', address: '127.0.0.3', secret: AUTO_SECRET.toString(), area: 'office', messageAuthenticator: 'auto' });

    const service = await startService(ctx, cleanup, serviceEnv(pg, NOW), { nodeFlags: ['--expose-gc'] });
    const dictionary = loadDictionary();
    const pool = seedPool(ctx.random, dictionary, 2_000);

    let received = 0;
    const open = async (address: string) => {
      const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      await new Promise<void>((resolve) => s.bind(0, address, () => resolve()));
      s.on('message', () => received++);
      s.on('error', () => undefined);
      return s;
    };
    const sockets = {
      nas: await Promise.all([1, 2, 3, 4].map(() => open('127.0.0.1'))),
      auto: [await open('127.0.0.3')],
      unknown: [await open('127.0.0.2')],
    };
    cleanup.add('sockets', () => {
      for (const list of Object.values(sockets)) for (const s of list) s.close();
    });

    const base = await scrapeMetrics(service.apiUrl);
    const baseTotal = base.sum('radius_requests_total');
    const baseDropped = base.sum('radius_dropped_total');
    const baseReasons = base.byLabel('radius_dropped_total', 'reason');
    const kernelDropsBefore = udpRcvbufErrors();
    const families: Record<string, number> = {};
    let sent = 0;
    let bytesSent = 0;
    let warm: { rss: number; heapUsed: number } | null = null;
    let rssMax = 0;
    const start = await service.memoryAfterGc();
    const cpuStart = service.cpuSeconds();
    const t0 = performance.now();
    let stuck: string | null = null;
    let waitMs = 0;
    let scrapes = 0;

    // Credit-based flow: at most CREDIT_PACKETS datagrams (and about CREDIT_BYTES of socket buffer) may be
    // sent and not yet accounted for by the server, so the kernel never has to drop one for lack of room.
    const estimate = (len: number) => len + 1_024;
    const cum: number[] = [0];
    let seen = 0;
    let lastProgress = Date.now();
    let nextLog = 100_000;
    while (seen < total && stuck === null) {
      let burst = 0;
      while (sent < total && sent - seen < creditPackets && cum[sent]! - cum[seen]! < creditBytes) {
        const p = makePacket(ctx.random, pool);
        const list = sockets[p.source];
        const socket = list[sent % list.length]!;
        socket.send(p.packet, p.port === 'auth' ? service.authPort : service.acctPort, '127.0.0.1');
        families[p.family] = (families[p.family] ?? 0) + 1;
        bytesSent += p.packet.length;
        cum.push(cum[sent]! + estimate(p.packet.length));
        sent++;
        // Let the replies be read now and then.
        if (++burst % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      const waitStart = performance.now();
      await sleep(pollMs);
      scrapes++;
      const now = (await scrapeMetrics(service.apiUrl)).sum('radius_requests_total') - baseTotal;
      waitMs += performance.now() - waitStart;
      if (now !== seen) lastProgress = Date.now();
      seen = Math.min(now, sent);
      if (now > sent) stuck = `the server accounted for ${now} datagrams but only ${sent} were sent`;
      else if (!service.alive) stuck = `the service exited (${JSON.stringify(service.exitStatus)}) after ${sent} packets:\n${service.tail()}`;
      else if (Date.now() - lastProgress > 15_000) {
        stuck = `after ${sent} packets the server had accounted for ${seen} and made no progress for 15 s (kernel receive-buffer drops on this host since the start: ${udpRcvbufErrors() - kernelDropsBefore})`;
      }
      if (warm === null && seen >= total / 10) warm = await service.memoryAfterGc();
      rssMax = Math.max(rssMax, service.rssBytes());
      if (seen >= nextLog) {
        ctx.log(`${seen.toLocaleString('en-US')} packets, ${Math.round(seen / ((performance.now() - t0) / 1000))}/s, RSS ${mib(service.rssBytes())} MiB`);
        nextLog += 100_000;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    if (stuck !== null) x.failures.push(stuck);
    await sleep(500);
    const last = service.alive ? await service.memoryAfterGc() : { rss: 0, heapUsed: 0 };
    const cpu = service.alive ? service.cpuSeconds() - cpuStart : 0;

    let dropReasons = '';
    let answerResults = '';
    const end = await scrapeMetrics(service.apiUrl).catch(() => null);
    if (end) {
      const totalSeen = end.sum('radius_requests_total') - baseTotal;
      const dropped = end.sum('radius_dropped_total') - baseDropped;
      x.eq(totalSeen, sent, 'datagrams the server accounted for vs datagrams sent');
      x.eq(dropped, sent - received, 'drops counted by the server vs sent - answered');
      const reasons = end.byLabel('radius_dropped_total', 'reason');
      for (const k of Object.keys(reasons)) reasons[k] = reasons[k]! - (baseReasons[k] ?? 0);
      x.eq(reasons.internal_error ?? 0, 0, 'datagrams dropped as internal_error (an exception the decoder or a handler did not expect)');
      dropReasons = Object.entries(reasons)
        .filter(([, v]) => v > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      const results = end.byLabel('radius_requests_total', 'result');
      answerResults = Object.entries(results)
        .filter(([k, v]) => k !== 'dropped' && v > 0)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
    } else {
      x.failures.push('/metrics did not answer after the run');
    }
    if (warm !== null) {
      x.ok(last.rss - warm.rss <= RSS_BOUND, `RSS after GC grew from ${mib(warm.rss)} MiB after the warm-up to ${mib(last.rss)} MiB at the end (bound: +${mib(RSS_BOUND)} MiB)`);
      x.ok(last.heapUsed - warm.heapUsed <= HEAP_BOUND, `heap after GC grew from ${mib(warm.heapUsed)} MiB after the warm-up to ${mib(last.heapUsed)} MiB at the end (bound: +${mib(HEAP_BOUND)} MiB)`);
    } else {
      x.failures.push('no memory sample after the warm-up');
    }
    x.ok(service.alive, 'the service survived the fuzzing');
    await expectCleanStop(x, service);
    const audit = await expectAuditPasses(x, pg, NOW);

    return {
      failures: x.failures,
      figures: {
        'packets fuzzed': sent,
        'packets per second': Math.round(sent / seconds),
        'service CPU per datagram (µs)': Math.round((cpu / sent) * 1e6),
        'MiB sent': mib(bytesSent),
        '/metrics scrapes (waiting on them, s)': `${scrapes} (${Math.round(waitMs / 1000)})`,
        families: Object.entries(families)
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
        'answers received': received,
        'answers by result (server)': answerResults,
        'drops counted (= sent - answered)': sent - received,
        'drops by reason (server)': dropReasons,
        'RSS after GC: start / after warm-up / end (MiB)': `${mib(start.rss)} / ${mib(warm?.rss ?? 0)} / ${mib(last.rss)}`,
        'heap used after GC: start / after warm-up / end (MiB)': `${mib(start.heapUsed)} / ${mib(warm?.heapUsed ?? 0)} / ${mib(last.heapUsed)}`,
        'RSS peak, sampled (MiB)': mib(rssMax),
        'bounds from warm-up to end (MiB)': `RSS +${mib(RSS_BOUND)}, heap +${mib(HEAP_BOUND)}`,
        'kernel UDP receive-buffer drops on this host meanwhile': udpRcvbufErrors() - kernelDropsBefore,
        audit,
      },
    };
  },
};
