import pg from 'pg';
import type { Logger } from 'pino';

export interface DbListenerOptions {
  readonly url: string;
  readonly channels: readonly string[];
  readonly log: Logger;
  /** Called after every (re)connection once LISTEN is in place: reload what may have been missed. */
  readonly onConnected: () => Promise<void>;
  /** Called when the connection is lost: notifications may be missed until onConnected runs again. */
  readonly onDisconnected: () => void;
  readonly onNotification: (channel: string, payload: string) => void;
  readonly pingIntervalMs?: number;
}

/**
 * A dedicated connection that LISTENs for change notifications and reconnects by itself with backoff.
 * A ping detects a silently dead connection, so the caller learns within seconds that notifications
 * may have been missed.
 */
export class DbListener {
  #client: pg.Client | null = null;
  #stopped = false;
  #connected = false;
  #timer: NodeJS.Timeout | null = null;
  #ping: NodeJS.Timeout | null = null;
  #attempt = 0;
  #firstConnect: { resolve: () => void; reject: (e: unknown) => void } | null = null;

  constructor(private readonly options: DbListenerOptions) {}

  get connected(): boolean {
    return this.#connected;
  }

  /** Connects; resolves once the first onConnected has run, rejects if that first attempt fails. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#firstConnect = { resolve, reject };
      void this.#connect();
    });
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({ connectionString: this.options.url, keepAlive: true, connectionTimeoutMillis: 5_000, application_name: 'campus-aaa-listen' });
    this.#client = client;
    let lost = false;
    const onLost = (err?: unknown) => {
      if (lost) return;
      lost = true;
      this.#lost(client, err);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (n) => {
      if (!lost) this.options.onNotification(n.channel, n.payload ?? '');
    });
    try {
      await client.connect();
      for (const ch of this.options.channels) await client.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
      if (lost) return;
      this.#connected = true;
      await this.options.onConnected();
      if (lost) return;
      this.#attempt = 0;
      this.#startPing(client, onLost);
      if (this.#firstConnect) {
        this.#firstConnect.resolve();
        this.#firstConnect = null;
      }
    } catch (err) {
      if (this.#firstConnect) {
        this.#stopped = true;
        if (this.#timer) clearTimeout(this.#timer);
        this.#firstConnect.reject(err);
        this.#firstConnect = null;
        this.#connected = false;
        await client.end().catch(() => undefined);
        return;
      }
      onLost(err);
    }
  }

  #startPing(client: pg.Client, onLost: (err?: unknown) => void): void {
    const every = this.options.pingIntervalMs ?? 5_000;
    this.#ping = setInterval(() => {
      const timeout = setTimeout(() => onLost(new Error('listener ping timed out')), every);
      client.query('SELECT 1').then(
        () => clearTimeout(timeout),
        (err: unknown) => {
          clearTimeout(timeout);
          onLost(err);
        },
      );
    }, every);
    this.#ping.unref();
  }

  #lost(client: pg.Client, err?: unknown): void {
    if (this.#ping) clearInterval(this.#ping);
    this.#ping = null;
    const was = this.#connected;
    this.#connected = false;
    client.removeAllListeners('notification');
    void client.end().catch(() => undefined);
    if (this.#stopped) return;
    if (was) this.options.log.warn({ err }, 'change listener lost its database connection; reconnecting');
    this.options.onDisconnected();
    const delay = Math.min(5_000, 250 * 2 ** this.#attempt++);
    this.#timer = setTimeout(() => void this.#connect(), delay);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#ping) clearInterval(this.#ping);
    this.#connected = false;
    const c = this.#client;
    this.#client = null;
    if (c) {
      c.removeAllListeners('end');
      c.on('error', () => undefined);
      await c.end().catch(() => undefined);
    }
  }
}
