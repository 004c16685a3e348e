import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Dictionary } from './dictionary.ts';
import { RadiusDecodeError } from './errors.ts';
import { normalizeIp } from './nas-table.ts';
import { encodeRequest, verifyResponse, type AttributeList, type RadiusPacket, type RequestCode } from './packet.ts';

export interface ClientRequest {
  readonly host: string;
  readonly port: number;
  readonly code: RequestCode;
  readonly attributes: AttributeList;
  readonly secret: string | Buffer;
  /** Wait after each try before sending again (RFC 5080 §2.2.1: the same packet); default [1000, 2000, 4000]. */
  readonly timeoutsMs?: readonly number[];
  /** Add Message-Authenticator (default: as encodeRequest decides). */
  readonly messageAuthenticator?: boolean;
  readonly authenticator?: Buffer;
}

export interface ClientResponse {
  readonly reply: RadiusPacket;
  readonly raw: Buffer;
  readonly request: Buffer;
  readonly attempts: number;
  readonly ms: number;
}

/** No valid reply came after every try. */
export class RadiusTimeoutError extends Error {
  constructor(readonly attempts: number) {
    super(`no reply after ${attempts} attempts`);
    this.name = 'RadiusTimeoutError';
  }
}

interface InFlight {
  readonly request: Buffer;
  readonly secret: string | Buffer;
  readonly resolve: (r: { reply: RadiusPacket; raw: Buffer }) => void;
}

/**
 * A small RADIUS client (our Disconnect-Request sender, tests, the load generator): one UDP socket, an
 * identifier space per destination, retransmission of the identical packet, and replies accepted only when
 * their Response Authenticator and Message-Authenticator verify (RFC 2865 §3, RFC 3579 §3.2).
 */
export class RadiusClient {
  readonly #socket: dgram.Socket;
  readonly #inflight = new Map<string, InFlight>();
  readonly #nextId = new Map<string, number>();
  /** Identifiers handed out whose request is not yet in #inflight. */
  readonly #reserved = new Set<string>();
  readonly #waiters = new Map<string, { resolve: (id: number) => void; reject: (e: Error) => void }[]>();
  #closed = false;

  private constructor(
    socket: dgram.Socket,
    private readonly dictionary: Dictionary,
    private readonly family: 4 | 6,
  ) {
    this.#socket = socket;
    socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    socket.on('error', () => undefined);
  }

  /** Opens a client socket; `bindAddress` picks the source address (e.g. 127.0.0.2 for an unknown NAS). */
  static async open(dictionary: Dictionary, opts: { bindAddress?: string; family?: 4 | 6; port?: number } = {}): Promise<RadiusClient> {
    const family = opts.family ?? (opts.bindAddress && isIPv6(opts.bindAddress) ? 6 : 4);
    const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: opts.bindAddress, port: opts.port ?? 0 }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new RadiusClient(socket, dictionary, family);
  }

  get address(): { address: string; port: number } {
    const a = this.#socket.address();
    return { address: a.address, port: a.port };
  }

  #onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 20) return;
    const key = `${normalizeIp(rinfo.address) ?? rinfo.address}|${rinfo.port}|${msg[1]}`;
    const f = this.#inflight.get(key);
    if (f === undefined) return;
    let reply: RadiusPacket;
    try {
      reply = verifyResponse(msg, f.request, { dictionary: this.dictionary, secret: f.secret });
    } catch (e) {
      if (e instanceof RadiusDecodeError || e instanceof TypeError) return;
      throw e;
    }
    this.#inflight.delete(key);
    f.resolve({ reply, raw: msg });
  }

  /**
   * Reserves a free identifier for `dest` at once, or waits for one. A released identifier is handed
   * straight to the oldest waiter, already reserved, so no other request can take it in between: two
   * requests never share an identifier and a waiter is never passed over.
   */
  #acquireId(dest: string): number | Promise<number> {
    const start = this.#nextId.get(dest) ?? Math.floor(Math.random() * 256);
    for (let i = 0; i < 256; i++) {
      const id = (start + i) & 0xff;
      const key = `${dest}|${id}`;
      if (!this.#inflight.has(key) && !this.#reserved.has(key)) {
        this.#reserved.add(key);
        this.#nextId.set(dest, (id + 1) & 0xff);
        return id;
      }
    }
    return new Promise<number>((resolve, reject) => {
      const list = this.#waiters.get(dest) ?? [];
      list.push({ resolve, reject });
      this.#waiters.set(dest, list);
    });
  }

  #release(dest: string, key: string, id: number): void {
    this.#inflight.delete(key);
    const list = this.#waiters.get(dest);
    const next = list?.shift();
    if (list?.length === 0) this.#waiters.delete(dest);
    if (next === undefined) {
      this.#reserved.delete(key);
      return;
    }
    this.#reserved.add(key);
    next.resolve(id);
  }

  /** Sends a request and resolves with its verified reply; rejects with RadiusTimeoutError after the last try. */
  async request(r: ClientRequest): Promise<ClientResponse> {
    if (this.#closed) throw new Error('client closed');
    const host = normalizeIp(r.host) ?? r.host;
    const dest = `${host}|${r.port}`;
    const id = await this.#acquireId(dest);
    const key = `${dest}|${id}`;
    let packet: Buffer;
    try {
      packet = encodeRequest({
        code: r.code,
        identifier: id,
        attributes: r.attributes,
        secret: r.secret,
        dictionary: this.dictionary,
        ...(r.authenticator ? { authenticator: r.authenticator } : {}),
        ...(r.messageAuthenticator !== undefined ? { messageAuthenticator: r.messageAuthenticator } : {}),
      });
    } catch (e) {
      this.#release(dest, key, id);
      throw e;
    }
    const timeouts = r.timeoutsMs ?? [1000, 2000, 4000];
    const started = performance.now();
    let attempts = 0;
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await new Promise<{ reply: RadiusPacket; raw: Buffer }>((resolve, reject) => {
        this.#reserved.delete(key);
        this.#inflight.set(key, { request: packet, secret: r.secret, resolve });
        const target = this.family === 6 && !isIPv6(host) ? `::ffff:${host}` : host;
        const attempt = () => {
          if (!this.#inflight.has(key)) return;
          if (attempts >= timeouts.length) {
            reject(new RadiusTimeoutError(attempts));
            return;
          }
          attempts++;
          this.#socket.send(packet, r.port, target);
          timer = setTimeout(attempt, timeouts[attempts - 1]);
        };
        attempt();
      });
      return { ...result, request: packet, attempts, ms: performance.now() - started };
    } finally {
      clearTimeout(timer);
      this.#release(dest, key, id);
    }
  }

  /** Sends raw bytes (fuzzing, hand-made packets); no reply is awaited. */
  sendRaw(buf: Buffer, host: string, port: number): void {
    this.#socket.send(buf, port, host);
  }

  /** Waits for any datagram from host:port (for tests that expect silence or raw replies). */
  nextRaw(timeoutMs: number): Promise<Buffer | null> {
    return new Promise((resolve) => {
      const onMsg = (msg: Buffer) => {
        clearTimeout(t);
        resolve(msg);
      };
      const t = setTimeout(() => {
        this.#socket.off('message', onMsg);
        resolve(null);
      }, timeoutMs);
      this.#socket.once('message', onMsg);
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const list of this.#waiters.values()) for (const w of list) w.reject(new Error('client closed'));
    this.#waiters.clear();
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}
