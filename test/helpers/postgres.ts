/**
 * Throwaway PostgreSQL for tests and benchmarks: a free loopback port, and an embedded cluster in a new
 * temporary directory. Shared by test/helpers/global-setup.ts, the fault suite (test/faults/harness.ts)
 * and bench/pg.ts; bench/ may import from test/helpers, never the other way, and src/ from neither.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * An embedded PostgreSQL on a free port, its cluster in a new directory under the OS temp dir named
 * `${prefix}XXXXXX`; `stop` shuts it down and removes the directory.
 */
export async function startThrowawayPostgres(opts: {
  readonly prefix: string;
  readonly database: string;
  readonly postgresFlags: readonly string[];
}): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), opts.prefix));
  const embedded = await startEmbeddedPostgres({ dataDir: dir, port: await freePort(), database: opts.database, postgresFlags: opts.postgresFlags });
  return {
    url: embedded.url,
    stop: async () => {
      await embedded.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
