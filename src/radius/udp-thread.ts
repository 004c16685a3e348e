import { Worker } from 'node:worker_threads';

/**
 * The RADIUS sockets on a thread of their own, as FreeRADIUS has a listener thread beside its workers:
 * the thread reads datagrams and writes replies, the event loop does everything else. Reading and writing
 * a datagram cost the loop ~30 % of a request's CPU (the recvmsg and sendmsg system calls, the kernel's
 * loopback delivery, libuv's wake-ups and Node's per-datagram callback); handing batches across threads
 * costs it a fraction of that, and a request no longer waits behind the sends of those before it.
 *
 * Datagrams cross in batches: everything the thread read in one turn of its loop goes over as one message
 * (the packets concatenated in one ArrayBuffer, transferred, not copied), and everything the loop sent in
 * one of its turns comes back the same way. The thread holds no state of the protocol: duplicate detection,
 * NAS lookup and every decision stay on the loop.
 */

/** Where a datagram came from, as dgram's RemoteInfo has it (the fields the server reads). */
export interface Source {
  readonly address: string;
  readonly port: number;
}

export interface ThreadSocketOptions {
  readonly host: string;
  readonly port: number;
  readonly type: 'udp4' | 'udp6';
  readonly bufferSize: number;
}

/** A bind that failed in the thread, with the errno code dgram gave it (e.g. EADDRINUSE). */
export class ThreadBindError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'ThreadBindError';
  }
}

type ToMain =
  | { t: 'bound'; id: number; port: number }
  | { t: 'bind-error'; id: number; code: string | undefined; message: string }
  | { t: 'closed'; id: number }
  | { t: 'socket-error'; id: number; message: string; code: string | undefined }
  | { t: 'in'; data: ArrayBuffer; meta: (number | string)[]; dropped: number[] };

/**
 * The thread's code, run with `eval` so it needs no file of its own (the service runs from TypeScript
 * under tsx in development and tests, from JavaScript in production, and Node 20 cannot start a
 * TypeScript worker). Plain JavaScript: dgram sockets, and the two batch formats.
 *
 * Inbound message: { t: 'in', data, meta, dropped } where meta holds, per datagram, socket id, length,
 * source address and source port, the packets lying one after another in `data`; `dropped` holds socket id
 * and first octet (the RADIUS code, -1 if empty) of each datagram dropped over the `limit`. Outbound: { t: 'out', data, meta }
 * with socket id, length, destination port and destination address per datagram.
 */
const THREAD_CODE = `
'use strict';
const dgram = require('node:dgram');
const dns = require('node:dns');
const { isIP } = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
// [0]: datagrams the loop has taken from the batches; what was handed over beyond that waits in messages.
const counters = workerData.counters;
const limit = workerData.limit;
let handedOver = 0;
const sockets = new Map();
let chunks = [];
let meta = [];
let dropped = [];
let bytes = 0;
let flushing = false;
const flush = () => {
  flushing = false;
  if (chunks.length === 0 && dropped.length === 0) return;
  const data = new Uint8Array(bytes);
  let o = 0;
  for (const c of chunks) {
    data.set(c, o);
    o += c.length;
  }
  const m = meta;
  const d = dropped;
  chunks = [];
  meta = [];
  dropped = [];
  bytes = 0;
  parentPort.postMessage({ t: 'in', data: data.buffer, meta: m, dropped: d }, [data.buffer]);
};
// server.ts's literalLookup, again (this code cannot import): a literal destination needs no DNS
// lookup, which dgram would otherwise make and answer on the next tick.
const literal = (host, options, callback) => {
  const family = isIP(host);
  if (family === 0) dns.lookup(host, options, callback);
  else callback(null, host, family);
};
parentPort.on('message', (m) => {
  if (m.t === 'out') {
    const data = Buffer.from(m.data);
    let o = 0;
    for (let i = 0; i < m.meta.length; i += 4) {
      const s = sockets.get(m.meta[i]);
      const n = m.meta[i + 1];
      try {
        if (s !== undefined) s.send(data.subarray(o, o + n), m.meta[i + 2], m.meta[i + 3]);
      } catch (err) {
        // A send dgram refuses at once (a bad port, say) costs that datagram, not the thread.
        parentPort.postMessage({ t: 'socket-error', id: m.meta[i], code: err.code, message: err.message });
      }
      o += n;
    }
  } else if (m.t === 'bind') {
    let s;
    try {
      s = dgram.createSocket({ type: m.type, ipv6Only: false, recvBufferSize: m.bufferSize, sendBufferSize: m.bufferSize, lookup: literal });
    } catch (err) {
      parentPort.postMessage({ t: 'bind-error', id: m.id, code: err.code, message: err.message });
      return;
    }
    const fail = (err) => {
      s.close();
      parentPort.postMessage({ t: 'bind-error', id: m.id, code: err.code, message: err.message });
    };
    s.once('error', fail);
    s.bind({ address: m.host, port: m.port, exclusive: true }, () => {
      s.off('error', fail);
      s.on('error', (err) => parentPort.postMessage({ t: 'socket-error', id: m.id, code: err.code, message: err.message }));
      const id = m.id;
      s.on('message', (msg, rinfo) => {
        if (((handedOver - Atomics.load(counters, 0)) | 0) >= limit) {
          // The loop is that far behind: drop, as a full socket buffer would, and say so with the next batch.
          dropped.push(id, msg.length > 0 ? msg[0] : -1);
        } else {
          handedOver = (handedOver + 1) | 0;
          chunks.push(msg);
          bytes += msg.length;
          meta.push(id, msg.length, rinfo.address, rinfo.port);
        }
        if (!flushing) {
          flushing = true;
          setImmediate(flush);
        }
      });
      sockets.set(id, s);
      parentPort.postMessage({ t: 'bound', id, port: s.address().port });
    });
  } else if (m.t === 'close') {
    const s = sockets.get(m.id);
    sockets.delete(m.id);
    if (s === undefined) parentPort.postMessage({ t: 'closed', id: m.id });
    else s.close(() => parentPort.postMessage({ t: 'closed', id: m.id }));
  }
});
`;

/** A UDP socket served by a UdpThread: `send` queues for the thread, `onMessage` hears what it read. */
export class ThreadSocket {
  /** @internal */ listener: ((msg: Buffer, source: Source) => void) | null = null;
  /** @internal */ errorListener: ((err: Error) => void) | null = null;
  /** @internal */ overloadListener: ((code: number | undefined) => void) | null = null;

  constructor(
    private readonly thread: UdpThread,
    readonly id: number,
    readonly port: number,
  ) {}

  onMessage(fn: (msg: Buffer, source: Source) => void): void {
    this.listener = fn;
  }

  onError(fn: (err: Error) => void): void {
    this.errorListener = fn;
  }

  /** Hears of each datagram the thread dropped because the loop was `maxPending` datagrams behind. */
  onOverload(fn: (code: number | undefined) => void): void {
    this.overloadListener = fn;
  }

  send(msg: Buffer, port: number, address: string): void {
    this.thread.queue(this.id, msg, port, address);
  }

  close(): Promise<void> {
    return this.thread.closeSocket(this.id);
  }
}

/**
 * The thread owning a set of sockets. Sends are gathered during a turn of the event loop (until
 * process.nextTick runs, after the turn's microtasks) and go over as one message.
 */
export class UdpThread {
  readonly #worker: Worker;
  readonly #limit: number;
  readonly #counters = new Int32Array(new SharedArrayBuffer(4));
  readonly #sockets = new Map<number, ThreadSocket>();
  readonly #pending = new Map<number, { resolve: (v: number | undefined) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  /** The turn's replies, copied in as they are sent (a reply may be a view of a ring that moves on). */
  #outBuf = Buffer.allocUnsafeSlow(64 * 1024);
  #outMeta: (number | string)[] = [];
  #outBytes = 0;
  #flushQueued = false;
  #exited = false;
  #onExit: ((err: Error) => void) | null = null;

  /**
   * `maxPending`: datagrams handed over but not yet taken by the loop at most (default 16 384, ~2 MiB); beyond
   * that the thread drops what it reads, as a full socket buffer would. A safety net for a loop that stops
   * taking batches at all: the server's own read queue is the bound that applies first.
   */
  constructor(options: { readonly maxPending?: number } = {}) {
    this.#limit = options.maxPending ?? 16_384;
    // A small heap (the thread keeps nothing but one turn's datagrams): it adds ~6 MiB to the RSS, where
    // V8's defaults for a worker add ~8.
    this.#worker = new Worker(THREAD_CODE, {
      eval: true,
      workerData: { limit: this.#limit, counters: this.#counters },
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1, stackSizeMb: 1 },
    });
    this.#worker.on('message', (m: ToMain) => this.#receive(m));
    this.#worker.on('error', (err) => this.#exit(err));
    this.#worker.on('exit', (code) => this.#exit(new Error(`the RADIUS socket thread exited (code ${code})`)));
  }

  /** Called once if the thread dies while sockets are open (the service cannot read or answer then). */
  onExit(fn: (err: Error) => void): void {
    this.#onExit = fn;
  }

  #exit(err: Error): void {
    if (this.#exited) return;
    this.#exited = true;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    if (this.#sockets.size > 0) this.#onExit?.(err);
  }

  #receive(m: ToMain): void {
    switch (m.t) {
      case 'in': {
        const data = Buffer.from(m.data);
        let o = 0;
        const meta = m.meta;
        // Counted as taken first, so a listener that throws cannot leave the thread thinking the loop is behind.
        Atomics.add(this.#counters, 0, meta.length / 4);
        for (let i = 0; i < meta.length; i += 4) {
          const n = meta[i + 1] as number;
          const s = this.#sockets.get(meta[i] as number);
          if (s?.listener) s.listener(data.subarray(o, o + n), { address: meta[i + 2] as string, port: meta[i + 3] as number });
          o += n;
        }
        const d = m.dropped;
        for (let i = 0; i < d.length; i += 2) this.#sockets.get(d[i]!)?.overloadListener?.(d[i + 1]! < 0 ? undefined : d[i + 1]);
        return;
      }
      case 'bound':
        this.#pending.get(m.id)?.resolve(m.port);
        this.#pending.delete(m.id);
        return;
      case 'bind-error':
        this.#pending.get(m.id)?.reject(new ThreadBindError(m.message, m.code));
        this.#pending.delete(m.id);
        return;
      case 'closed':
        this.#pending.get(m.id)?.resolve(undefined);
        this.#pending.delete(m.id);
        return;
      case 'socket-error': {
        const err = Object.assign(new Error(m.message), { code: m.code });
        this.#sockets.get(m.id)?.errorListener?.(err);
        return;
      }
    }
  }

  #request(id: number, message: object): Promise<number | undefined> {
    if (this.#exited) return Promise.reject(new Error('the RADIUS socket thread is not running'));
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage(message);
    });
  }

  /** Binds a socket in the thread; rejects with ThreadBindError as dgram's bind would fail. */
  async bind(o: ThreadSocketOptions): Promise<ThreadSocket> {
    const id = this.#nextId++;
    const port = await this.#request(id, { t: 'bind', id, host: o.host, port: o.port, type: o.type, bufferSize: o.bufferSize });
    const socket = new ThreadSocket(this, id, port!);
    this.#sockets.set(id, socket);
    return socket;
  }

  /** @internal */
  queue(id: number, msg: Buffer, port: number, address: string): void {
    if (this.#exited) return;
    if (this.#outBytes + msg.length > this.#outBuf.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.#outBuf.length * 2, this.#outBytes + msg.length));
      this.#outBuf.copy(bigger, 0, 0, this.#outBytes);
      this.#outBuf = bigger;
    }
    msg.copy(this.#outBuf, this.#outBytes);
    this.#outMeta.push(id, msg.length, port, address);
    this.#outBytes += msg.length;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      process.nextTick(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushQueued = false;
    if (this.#outBytes === 0 || this.#exited) return;
    const data = new Uint8Array(this.#outBytes);
    data.set(this.#outBuf.subarray(0, this.#outBytes));
    const meta = this.#outMeta;
    this.#outMeta = [];
    this.#outBytes = 0;
    this.#worker.postMessage({ t: 'out', data: data.buffer, meta }, [data.buffer]);
  };

  /** @internal */
  async closeSocket(id: number): Promise<void> {
    this.#flush();
    if (!this.#sockets.delete(id) || this.#exited) return;
    await this.#request(id, { t: 'close', id });
  }

  /** Sends what is queued, closes every socket, and ends the thread. */
  async close(): Promise<void> {
    for (const id of [...this.#sockets.keys()]) await this.closeSocket(id);
    this.#exited = true;
    await this.#worker.terminate();
  }
}
