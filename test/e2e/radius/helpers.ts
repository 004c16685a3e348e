import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { loadConfig } from '../../../src/config.ts';
import { start, type App } from '../../../src/main.ts';
import { loadDictionary, type Dictionary } from '../../../src/radius/dictionary.ts';
import { decodePacket, encodeResponse, PacketCode, type RadiusPacket } from '../../../src/radius/packet.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';

export const dictionary: Dictionary = loadDictionary();
export const CREDENTIAL_KEY = 'a'.repeat(64);

/** The whole service via start(config) on ephemeral ports over a fresh test database. */
export async function startTestApp(env: Record<string, string> = {}): Promise<{ app: App; t: TestDatabase; stop: () => Promise<void> }> {
  const t = await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: t.url,
    RADIUS_HOST: '::',
    RADIUS_AUTH_PORT: '0',
    RADIUS_ACCT_PORT: '0',
    API_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    SIMULATED_CLOCK: '2026-09-01T08:00:00Z',
    SETTLE_CRON: '0 0 1 1 *',
    CREDENTIAL_KEY,
    // CI's PostgreSQL 15 run serves the sockets from the event loop (see testRadiusConfig).
    ...(process.env.RADIUS_SOCKET_THREAD ? { RADIUS_SOCKET_THREAD: process.env.RADIUS_SOCKET_THREAD } : {}),
    ...env,
  });
  const app = await start(config);
  return {
    app,
    t,
    async stop() {
      await app.close();
      await t.drop();
    },
  };
}

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function waitFor<T>(fn: () => T | Promise<T>, ms = 3_000, what = 'condition'): Promise<NonNullable<T>> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A NAS's RFC 5176 listener: records Disconnect-Requests and answers ACK (or NAK with `errorCause`). */
export async function startTestNas(secret: string, opts: { address?: string; errorCause?: number; silent?: boolean } = {}) {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, opts.address ?? '127.0.0.1', () => resolve()));
  const received: RadiusPacket[] = [];
  socket.on('message', (msg, rinfo) => {
    let req: RadiusPacket;
    try {
      req = decodePacket(msg, { dictionary, secret });
    } catch {
      return;
    }
    received.push(req);
    if (opts.silent) return;
    const reply =
      opts.errorCause === undefined
        ? encodeResponse(req, PacketCode.DisconnectAck, [], secret)
        : encodeResponse(req, PacketCode.DisconnectNak, [['Error-Cause', opts.errorCause]], secret);
    socket.send(reply, rinfo.port, rinfo.address);
  });
  return {
    port: socket.address().port,
    received,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** Runs FreeRADIUS's radclient with `input` on stdin; resolves with its exit code and output. */
export function radclient(args: string[], input: string, timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('radclient', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new Error('radclient not found: apt-get install -y freeradius-utils') : err),
    );
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(input);
  });
}

/** Whether this host has an IPv6 loopback (some containers have none). */
export async function hasIpv6Loopback(): Promise<boolean> {
  const socket = dgram.createSocket('udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '::1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    socket.close();
  }
}
