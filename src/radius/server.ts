import dgram from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Billing } from '../billing/billing.ts';
import { credentialKeyBytes, type Config } from '../config.ts';
import type { Database } from '../db/schema.ts';
import { isAppError } from '../errors.ts';
import { AccountingWriter, closeStaleSessions, isDataError, planAccounting } from './accounting.ts';
import { AccountView } from './account-view.ts';
import { Authenticator, AuthUnavailableError, replyAttributes, type AuthDeps } from './auth.ts';
import { CredentialCache } from './auth-cache.ts';
import { DbListener } from './db-listener.ts';
import { loadDictionary, type Dictionary } from './dictionary.ts';
import { RadiusDisconnector } from './disconnect.ts';
import { RadiusDecodeError } from './errors.ts';
import { createRadiusMetrics, type DropReason, type RadiusMetrics } from './metrics.ts';
import { readNasClientsFile } from './nas-file.ts';
import { listNasClients, syncFileNasClients } from './nas-store.ts';
import { compileAreaRules, NasTable, parseNetwork, type NasEntry } from './nas-table.ts';
import { decodePacket, encodeResponse, PacketCode, type RadiusPacket } from './packet.ts';
import { ReplyCache } from './reply-cache.ts';
import { UdpThread, type Source } from './udp-thread.ts';

export interface RadiusServerOptions {
  readonly db: Kysely<Database>;
  /** For the LISTEN connection (a dedicated client, not from the pool). */
  readonly databaseUrl: string;
  readonly billing: Billing;
  readonly dictionary: Dictionary;
  readonly log: Logger;
  readonly metrics: RadiusMetrics;
  readonly verifyPassword: (passwordHash: string, password: string) => Promise<boolean>;
  /** Upgrades stored hashes to the current argon2 cost after a login (see Authenticator); unset: never. */
  readonly rehash?: AuthDeps['rehash'];
  readonly host: string;
  readonly authPort: number;
  readonly acctPort: number;
  readonly nasClientsFile: string | null;
  readonly staleIntervals: number;
  readonly defaultInterimSeconds: number;
  readonly credentialKey: Buffer | null;
  /** argon2 verifications run at once; default the number of CPUs (each holds its hash's memory cost while it runs). */
  readonly passwordVerifyConcurrency?: number | null;
  /** How often stale sessions are swept; default 60 s. */
  readonly sweepIntervalMs?: number;
  /** Datagrams read and waiting to be handled at most; beyond that they are dropped as overload (default 8192). */
  readonly maxQueued?: number;
  /** Read and write the sockets on a thread of their own (see udp-thread.ts); default false. */
  readonly socketThread?: boolean;
  /**
   * Told when the server can no longer serve (the socket thread died); it is logged as fatal and `ready`
   * turns false either way. The command line exits so the supervisor starts the service again.
   */
  readonly onFatal?: (err: Error) => void;
}

/** A bound RADIUS socket, on the event loop (dgram) or on the socket thread. */
interface RadiusSocket {
  readonly port: number;
  send(msg: Buffer, port: number, address: string): void;
  close(): Promise<void>;
}

type Port = 'auth' | 'acct';

const CODE_LABEL: Record<number, string> = {
  [PacketCode.AccessRequest]: 'access',
  [PacketCode.AccountingRequest]: 'accounting',
  [PacketCode.StatusServer]: 'status',
};

const RECV_BUFFER = 4 << 20;

/**
 * dgram resolves every destination before sending, even an IP literal, and dns.lookup answers a literal on
 * the next tick: every reply cost a tick-queue entry and a closure, and went out after the rest of the turn.
 * Replies go to the request's source address, always a literal, so this answers literals at once; anything
 * else (a host name to bind to) goes to dns.lookup.
 */
function literalLookup(hostname: string, options: LookupOneOptions, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const family = isIP(hostname);
  if (family === 0) dnsLookup(hostname, options, callback);
  else callback(null, hostname, family);
}
const LOG_EVERY_MS = 10_000;

/**
 * Datagrams handled per turn of the event loop before it polls again (see RadiusServer.#enqueue): 16 keep a
 * waiting database answer at most ~1 ms behind new requests here, and still share one turn's overhead.
 */
const SLICE = 16;
/**
 * Datagrams read and waiting at most (~0.5 s of work here); beyond that new ones are dropped and counted as
 * overload, as a full socket buffer would drop them, and the NAS retransmits.
 */
const MAX_QUEUED = 8192;

interface Queued {
  readonly port: Port;
  readonly msg: Buffer;
  readonly rinfo: Source;
  readonly at: number;
}

/**
 * The RADIUS server: UDP sockets (RFC 2865 §3 auth, RFC 2866 §3 accounting, dual-stack), NAS clients
 * looked up by source address, the RFC 5080 §2.2.2 reply cache, and dispatch to authorization and
 * group-committed accounting. Anything malformed or unauthentic is dropped silently and counted.
 */
export class RadiusServer {
  #nas = new NasTable([]);
  readonly #view: AccountView;
  readonly #auth: Authenticator;
  readonly #writer: AccountingWriter;
  readonly #listener: DbListener;
  readonly #caches: Record<Port, ReplyCache> = { auth: new ReplyCache(), acct: new ReplyCache() };
  readonly #sockets: Partial<Record<Port, RadiusSocket>> = {};
  #thread: UdpThread | null = null;
  readonly #maSeen = new Set<number>();
  readonly #lastLog = new Map<string, { at: number; suppressed: number }>();
  readonly #timers: NodeJS.Timeout[] = [];
  #inFlight = 0;
  #idle: (() => void)[] = [];
  #closing = false;
  #broken = false;
  #nasReload: Promise<void> = Promise.resolve();
  #nasReloadQueued = false;
  readonly #requestChild = new Map<string, Map<string, { inc(): void }>>();
  readonly #latencyChild = new Map<string, { observe(v: number): void }>();
  #queue: (Queued | undefined)[] = [];
  #queueHead = 0;
  #draining = false;

  constructor(private readonly o: RadiusServerOptions) {
    this.#view = new AccountView(o.db);
    this.#view.onError((err) => this.#warn('view_refresh', { err }, 'account view refresh failed'));
    const credentials = new CredentialCache(o.verifyPassword, o.passwordVerifyConcurrency ? { concurrency: o.passwordVerifyConcurrency } : {});
    this.#auth = new Authenticator({
      db: o.db,
      billing: o.billing,
      view: this.#view,
      credentials,
      credentialKey: o.credentialKey,
      metrics: o.metrics,
      log: o.log,
      now: () => o.billing.clock.now(),
      ...(o.rehash ? { rehash: o.rehash } : {}),
    });
    this.#writer = new AccountingWriter(o.db, {
      onCommit: (size, closed, ms) => {
        o.metrics.acctBatchSize.observe(size);
        o.metrics.acctCommitSeconds.observe(ms / 1000);
        if (closed > 0) o.metrics.acctSessionsClosed.labels('nas_reboot').inc(closed);
      },
      onBadRecord: (err) => this.#warn('bad_record', { err }, 'accounting record refused by the database'),
    });
    this.#listener = new DbListener({
      url: o.databaseUrl,
      channels: ['nas_clients_changed', 'accounts_changed'],
      log: o.log,
      onConnected: async () => {
        await this.#reloadNas();
        await this.#view.reload();
        this.#updateGauges();
        o.log.info({ accounts: this.#view.size, nasClients: this.#nas.size }, 'account view and NAS clients loaded');
      },
      onDisconnected: () => this.#view.invalidate(),
      onNotification: (channel, payload) => {
        if (channel === 'accounts_changed') this.#view.notify(payload);
        else this.#queueNasReload();
      },
    });
  }

  /** The NAS client owning `address`, for the Disconnect client. */
  nasFor(address: string): NasEntry | undefined {
    return this.#nas.lookup(address);
  }

  get view(): AccountView {
    return this.#view;
  }

  /** Bound, not closing, and in touch with the database (the change listener is connected). */
  get ready(): boolean {
    return !this.#closing && !this.#broken && this.#sockets.auth !== undefined && this.#listener.connected;
  }

  /** Syncs NAS_CLIENTS_FILE, loads clients and accounts, binds the sockets; resolves with the bound ports. */
  async start(): Promise<{ authPort: number; acctPort: number }> {
    const { o } = this;
    if (o.nasClientsFile) {
      const clients = await readNasClientsFile(o.nasClientsFile);
      const r = await syncFileNasClients(o.db, clients);
      o.log.info({ file: o.nasClientsFile, ...r }, 'NAS clients file synced');
    }
    await this.#listener.start();
    if (o.socketThread === true) {
      const thread = new UdpThread();
      thread.onExit((err) => {
        // Nothing can be read or answered without it.
        this.#broken = true;
        o.log.fatal({ err }, 'the RADIUS socket thread died: RADIUS is not served');
        o.onFatal?.(err);
      });
      this.#thread = thread;
    }
    try {
      this.#sockets.auth = await this.#bind('auth', o.authPort);
      this.#sockets.acct = await this.#bind('acct', o.acctPort);
    } catch (err) {
      // E.g. the port is taken: leave nothing running behind.
      for (const socket of Object.values(this.#sockets)) await socket.close();
      await this.#thread?.close();
      this.#thread = null;
      await this.#listener.stop();
      throw err;
    }
    this.#every(1_000, () => {
      const now = Date.now();
      this.#caches.auth.sweep(now);
      this.#caches.acct.sweep(now);
    });
    this.#every(o.sweepIntervalMs ?? 60_000, () => void this.sweepStale());
    this.#every(15_000, () => this.#updateGauges());
    const ports = { authPort: this.#sockets.auth.port, acctPort: this.#sockets.acct.port };
    o.log.info({ host: o.host, ...ports, socketThread: this.#thread !== null }, 'radius server listening');
    return ports;
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.#timers.push(t);
  }

  #updateGauges(): void {
    this.o.metrics.nasClients.set(this.#nas.size);
    this.o.metrics.accountView.labels('accounts').set(this.#view.size);
    this.o.metrics.accountView.labels('running_cycles').set(this.#view.runningCycles);
  }

  async #bind(port: Port, number: number): Promise<RadiusSocket> {
    try {
      return await this.#open(port, this.o.host, number);
    } catch (err) {
      // A host without IPv6 (some containers) cannot bind '::': serve IPv4 rather than nothing.
      const code = (err as { code?: string }).code;
      if (this.o.host !== '::' || (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL')) throw err;
      this.o.log.warn({ port, code }, 'IPv6 is not available; serving RADIUS on IPv4 only');
      return await this.#open(port, '0.0.0.0', number);
    }
  }

  async #open(which: Port, host: string, number: number): Promise<RadiusSocket> {
    const onError = (err: Error) => this.#warn('socket', { err, port: which }, 'radius socket error');
    if (this.#thread) {
      const s = await this.#thread.bind({ host, port: number, type: isIPv6(host) ? 'udp6' : 'udp4', bufferSize: RECV_BUFFER });
      s.onMessage((msg, source) => this.#enqueue(which, msg, source));
      s.onError(onError);
      s.onOverload((code) => {
        this.#warn('thread_full', { port: which }, 'overloaded: socket thread queue full, datagram dropped');
        this.#drop('overload', code);
      });
      return s;
    }
    const socket = await this.#openDgram(host, number);
    socket.on('error', onError);
    socket.on('message', (msg, rinfo) => this.#enqueue(which, msg, rinfo));
    return {
      port: socket.address().port,
      send: (msg, port, address) => socket.send(msg, port, address),
      close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
    };
  }

  async #openDgram(host: string, port: number): Promise<dgram.Socket> {
    const socket = dgram.createSocket({
      type: isIPv6(host) ? 'udp6' : 'udp4',
      ipv6Only: false,
      recvBufferSize: RECV_BUFFER,
      sendBufferSize: RECV_BUFFER,
      lookup: literalLookup,
    });
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        socket.close();
        reject(err);
      };
      socket.once('error', fail);
      socket.bind({ address: host, port, exclusive: true }, () => {
        socket.off('error', fail);
        resolve();
      });
    });
    return socket;
  }

  #queueNasReload(): void {
    if (this.#nasReloadQueued) return;
    this.#nasReloadQueued = true;
    this.#nasReload = this.#nasReload.then(async () => {
      this.#nasReloadQueued = false;
      await this.#reloadNas().catch((err: unknown) => this.#warn('nas_reload', { err }, 'reloading NAS clients failed; keeping the previous set'));
    });
  }

  async #reloadNas(): Promise<void> {
    const clients = await listNasClients(this.o.db);
    const entries: NasEntry[] = [];
    for (const c of clients) {
      if (!c.enabled) continue;
      const network = parseNetwork(c.address);
      if ('error' in network) continue;
      const rules = compileAreaRules(c.areaRules.filter((r) => this.o.dictionary.attribute(r.attribute) !== undefined));
      if (rules.length !== c.areaRules.length) this.o.log.warn({ nas: c.name }, 'area rules naming unknown attributes are ignored');
      entries.push({
        id: c.id,
        name: c.name,
        network,
        secret: Buffer.from(c.secret, 'utf8'),
        area: c.area,
        areaRules: rules,
        coaPort: c.coaPort,
        requireMessageAuthenticator: c.messageAuthenticator === 'require',
      });
    }
    this.#nas = new NasTable(entries);
    this.o.metrics.nasClients.set(this.#nas.size);
  }

  #count(label: string, result: string): void {
    // Two map probes, no key string built per request.
    let byResult = this.#requestChild.get(label);
    if (byResult === undefined) this.#requestChild.set(label, (byResult = new Map()));
    let child = byResult.get(result);
    if (child === undefined) {
      child = this.o.metrics.requests.labels(label, result);
      byResult.set(result, child);
    }
    child.inc();
  }

  #observe(label: string, started: number): void {
    let child = this.#latencyChild.get(label);
    if (child === undefined) {
      child = this.o.metrics.latency.labels(label);
      this.#latencyChild.set(label, child);
    }
    child.observe((performance.now() - started) / 1000);
  }

  #drop(reason: DropReason, code: number | undefined): void {
    // HotCounter keeps the child per label value: a one-label lookup builds no key.
    this.o.metrics.dropped.labels(reason).inc();
    this.#count(CODE_LABEL[code ?? 0] ?? 'other', 'dropped');
  }

  /** Logs at most once per 10 s per kind, with how many were suppressed; never attribute values. */
  #warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const last = this.#lastLog.get(kind);
    if (last && now - last.at < LOG_EVERY_MS) {
      last.suppressed++;
      return;
    }
    this.#lastLog.set(kind, { at: now, suppressed: 0 });
    this.o.log.warn({ ...fields, kind, suppressed: last?.suppressed ?? 0 }, msg);
  }

  /**
   * Reads come first, work second: a datagram is only queued when it is read, and the queue is worked off
   * SLICE at a time from setImmediate, so the event loop polls again between slices. Handled straight
   * from the socket callback, libuv read up to 32 datagrams in a row before it looked at anything else, so
   * at high load a database answer or a finished argon2 check for a request already in progress waited
   * behind up to 32 new requests (~2 ms here) at every step.
   */
  #enqueue(port: Port, msg: Buffer, rinfo: Source): void {
    const at = performance.now();
    const queued = this.#queue.length - this.#queueHead;
    if (queued >= (this.o.maxQueued ?? MAX_QUEUED)) {
      this.#warn('queue_full', { port, queued }, 'overloaded: read queue full, datagram dropped');
      return this.#drop('overload', msg.length > 0 ? msg[0] : undefined);
    }
    this.#queue.push({ port, msg, rinfo, at });
    if (!this.#draining) {
      this.#draining = true;
      setImmediate(this.#drain);
    }
  }

  readonly #drain = (): void => {
    const q = this.#queue;
    const end = Math.min(q.length, this.#queueHead + SLICE);
    try {
      while (this.#queueHead < end) {
        const e = q[this.#queueHead]!;
        q[this.#queueHead++] = undefined;
        this.#onMessage(e.port, this.#sockets[e.port]!, e.msg, e.rinfo, e.at);
      }
    } finally {
      if (this.#queueHead >= q.length) {
        this.#queue = [];
        this.#queueHead = 0;
        this.#draining = false;
      } else {
        if (this.#queueHead > 4096) {
          this.#queue = q.slice(this.#queueHead);
          this.#queueHead = 0;
        }
        setImmediate(this.#drain);
      }
    }
  };

  #onMessage(port: Port, socket: RadiusSocket, msg: Buffer, rinfo: Source, started: number): void {
    const code = msg.length > 0 ? msg[0] : undefined;
    if (this.#closing) return this.#drop('shutting_down', code);
    const nas = this.#nas.lookup(rinfo.address);
    if (nas === undefined) {
      this.#warn('unknown_client', { source: rinfo.address }, 'packet from an unknown address dropped');
      return this.#drop('unknown_client', code);
    }
    if (msg.length < 20) return this.#drop('too_short', code);
    const allowed = port === 'auth' ? code === PacketCode.AccessRequest || code === PacketCode.StatusServer : code === PacketCode.AccountingRequest || code === PacketCode.StatusServer;
    if (!allowed) {
      this.#warn('unexpected_code', { nas: nas.name, port, code }, 'packet with a code this port does not serve dropped');
      return this.#drop('unexpected_code', code);
    }
    const cache = this.#caches[port];
    const seen = cache.begin(rinfo.address, rinfo.port, msg, Date.now());
    if (seen.kind === 'replay') {
      socket.send(seen.reply, rinfo.port, rinfo.address);
      this.#count(CODE_LABEL[code!] ?? 'other', 'replayed');
      return;
    }
    if (seen.kind === 'in-progress') return this.#drop('duplicate', code);
    let req: RadiusPacket;
    try {
      req = decodePacket(msg, {
        dictionary: this.o.dictionary,
        secret: nas.secret,
        requireMessageAuthenticator: nas.requireMessageAuthenticator || this.#maSeen.has(nas.id),
      });
    } catch (e) {
      cache.abandon(rinfo.address, rinfo.port, msg);
      if (e instanceof RadiusDecodeError) {
        this.#warn(`decode:${e.reason}`, { nas: nas.name, source: rinfo.address, reason: e.reason }, 'malformed or unauthentic packet dropped');
        return this.#drop(e.reason, code);
      }
      this.#warn('decode:internal', { err: e, nas: nas.name }, 'packet decoding failed');
      return this.#drop('internal_error', code);
    }
    // messageAuthenticator 'auto' (FreeRADIUS's "auto"): once a NAS has sent one, it must always send one.
    if (req.hasMessageAuthenticator && req.code === PacketCode.AccessRequest && !nas.requireMessageAuthenticator) this.#maSeen.add(nas.id);
    if (req.code === PacketCode.AccessRequest && this.#answerFromMemory(socket, req, nas, rinfo, started)) return;
    this.#inFlight++;
    void this.#handle(port, socket, req, nas, rinfo, started).finally(() => {
      if (--this.#inFlight === 0) for (const f of this.#idle.splice(0)) f();
    });
  }

  /** Answers the common login synchronously (no promise, no database); false when `decide` must run. */
  #answerFromMemory(socket: RadiusSocket, req: RadiusPacket, nas: NasEntry, rinfo: Source, started: number): boolean {
    let d;
    try {
      d = this.#auth.decideFromMemory(req, nas);
    } catch {
      // A malformed User-Password: the full path drops and counts it.
      return false;
    }
    if (d === undefined) return false;
    const reply = encodeResponse(req, PacketCode.AccessAccept, replyAttributes(d, this.o.defaultInterimSeconds), nas.secret);
    this.#caches.auth.complete(rinfo.address, rinfo.port, req.raw, reply, Date.now());
    socket.send(reply, rinfo.port, rinfo.address);
    this.#count('access', 'accept');
    this.#observe('access', started);
    return true;
  }

  async #handle(port: Port, socket: RadiusSocket, req: RadiusPacket, nas: NasEntry, rinfo: Source, started: number): Promise<void> {
    const cache = this.#caches[port];
    const label = CODE_LABEL[req.code] ?? 'other';
    const { metrics } = this.o;
    try {
      let reply: Buffer;
      let result: string;
      if (req.code === PacketCode.StatusServer) {
        // RFC 5997 §3: Access-Accept on the auth port, Accounting-Response on the accounting port; not cached.
        reply = encodeResponse(req, port === 'auth' ? PacketCode.AccessAccept : PacketCode.AccountingResponse, [], nas.secret);
        cache.abandon(rinfo.address, rinfo.port, req.raw);
        socket.send(reply, rinfo.port, rinfo.address);
        this.#count(label, 'answered');
        this.#observe(label, started);
        return;
      }
      if (req.code === PacketCode.AccessRequest) {
        const d = await this.#auth.decide(req, nas);
        reply = encodeResponse(req, d.kind === 'accept' ? PacketCode.AccessAccept : PacketCode.AccessReject, replyAttributes(d, this.o.defaultInterimSeconds), nas.secret);
        result = d.kind;
        if (d.kind === 'reject') metrics.rejects.labels(d.reason).inc();
      } else {
        const plan = planAccounting(req, nas, rinfo.address, this.o.billing.clock.now());
        if (plan.kind === 'drop') {
          cache.abandon(rinfo.address, rinfo.port, req.raw);
          this.#warn('acct:missing', { nas: nas.name }, 'accounting request without Acct-Status-Type or Acct-Session-Id dropped');
          return this.#drop(plan.reason, req.code);
        }
        // RFC 2866 §2: the response goes out only once the record is committed.
        if (plan.kind === 'store') await this.#writer.submit(plan.record);
        reply = encodeResponse(req, PacketCode.AccountingResponse, [], nas.secret);
        result = 'stored';
      }
      cache.complete(rinfo.address, rinfo.port, req.raw, reply, Date.now());
      socket.send(reply, rinfo.port, rinfo.address);
      this.#count(label, result);
      this.#observe(label, started);
    } catch (e) {
      cache.abandon(rinfo.address, rinfo.port, req.raw);
      if (e instanceof AuthUnavailableError) {
        this.#warn(`unavailable:${e.reason}`, { err: e.cause, nas: nas.name }, e.reason === 'overload' ? 'overloaded: request dropped' : 'database unavailable: request dropped');
        return this.#drop(e.reason, req.code);
      }
      if (e instanceof RadiusDecodeError) {
        this.#warn(`decode:${e.reason}`, { nas: nas.name, reason: e.reason }, 'malformed packet dropped');
        return this.#drop(e.reason, req.code);
      }
      if (req.code === PacketCode.AccountingRequest && !isDataError(e) && !isAppError(e)) {
        this.#warn('acct:unavailable', { err: e, nas: nas.name }, 'database unavailable: accounting request dropped');
        return this.#drop('db_unavailable', req.code);
      }
      this.#warn('internal', { err: e, nas: nas.name }, 'request failed');
      return this.#drop('internal_error', req.code);
    }
  }

  /** Closes sessions with no update for ACCT_STALE_INTERVALS interim intervals. */
  async sweepStale(): Promise<number> {
    try {
      const n = await closeStaleSessions(this.o.db, this.o.billing.clock.now(), this.o.staleIntervals, this.o.defaultInterimSeconds);
      if (n > 0) {
        this.o.metrics.acctSessionsClosed.labels('stale').inc(n);
        this.o.log.info({ closed: n }, 'stale accounting sessions closed');
      }
      return n;
    } catch (err) {
      this.#warn('sweep', { err }, 'closing stale sessions failed');
      return 0;
    }
  }

  /** Stops reading, finishes in-flight requests and pending group commits, then closes the sockets. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const t of this.#timers) clearInterval(t);
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    await this.#writer.drain();
    for (const s of Object.values(this.#sockets)) await s.close();
    await this.#thread?.close();
    await this.#listener.stop();
    await this.#nasReload;
    await this.#view.settled();
  }
}

/** What main.ts wires: the bound ports, the Disconnect client, and the parts tests look into. */
export interface RadiusService {
  readonly authPort: number;
  readonly acctPort: number;
  readonly disconnector: RadiusDisconnector;
  readonly server: RadiusServer;
  readonly metrics: RadiusMetrics;
  /** For the readiness probe: see RadiusServer.ready. */
  ready(): boolean;
  close(): Promise<void>;
}

/**
 * Starts the RADIUS server and its Disconnect client from the configuration; `close` stops reading,
 * finishes in-flight requests and pending group commits (the caller then closes the pool).
 */
export async function startRadius(o: {
  readonly config: Config['radius'];
  readonly db: Kysely<Database>;
  readonly databaseUrl: string;
  readonly billing: Billing;
  readonly log: Logger;
  readonly registry: Registry;
  readonly verifyPassword: (passwordHash: string, password: string) => Promise<boolean>;
  readonly rehash?: AuthDeps['rehash'];
  readonly dictionary?: Dictionary;
  readonly disconnectTimeoutsMs?: readonly number[];
  readonly maxQueued?: number;
  readonly onFatal?: (err: Error) => void;
}): Promise<RadiusService> {
  const dictionary = o.dictionary ?? loadDictionary();
  const metrics = createRadiusMetrics(o.registry);
  const key = o.config.credentialKey === null ? null : credentialKeyBytes(o.config.credentialKey);
  const server = new RadiusServer({
    db: o.db,
    databaseUrl: o.databaseUrl,
    billing: o.billing,
    dictionary,
    log: o.log,
    metrics,
    verifyPassword: o.verifyPassword,
    ...(o.rehash ? { rehash: o.rehash } : {}),
    host: o.config.host,
    authPort: o.config.authPort,
    acctPort: o.config.acctPort,
    nasClientsFile: o.config.nasClientsFile,
    staleIntervals: o.config.staleIntervals,
    defaultInterimSeconds: o.config.defaultInterimSeconds,
    credentialKey: key,
    passwordVerifyConcurrency: o.config.passwordVerifyConcurrency,
    socketThread: o.config.socketThread ?? true,
    ...(o.maxQueued ? { maxQueued: o.maxQueued } : {}),
    ...(o.onFatal ? { onFatal: o.onFatal } : {}),
  });
  const ports = await server.start();
  const disconnector = new RadiusDisconnector({
    db: o.db,
    dictionary,
    log: o.log.child({ module: 'disconnect' }),
    metrics,
    now: () => o.billing.clock.now(),
    nasFor: (address) => server.nasFor(address),
    ...(o.disconnectTimeoutsMs ? { timeoutsMs: o.disconnectTimeoutsMs } : {}),
  });
  return {
    ...ports,
    disconnector,
    server,
    metrics,
    ready: () => server.ready,
    async close() {
      await server.close();
      await disconnector.close();
    },
  };
}
