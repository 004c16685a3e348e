import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hash } from '@node-rs/argon2';
import { sql } from 'kysely';
import { createDb } from '../src/db/connection.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { loadDictionary } from '../src/radius/dictionary.ts';
import { RadiusClient } from '../src/radius/client.ts';
import { insertNasClient } from '../src/radius/nas-store.ts';
import { benchDatabase } from './pg.ts';

/**
 * npm run bench:memory -- [--accounts 100000] [--sessions 50000]
 * The service's resident memory with N accounts (half with a running cycle) after `--sessions` of them
 * logged in from the dorm and started an accounting session through real RADIUS packets: the account
 * view, the credential cache and the reply cache all hold what production would hold.
 */
const { values } = parseArgs({ options: { accounts: { type: 'string', default: '100000' }, sessions: { type: 'string', default: '50000' } } });
const accounts = Number(values.accounts);
const sessions = Math.min(Number(values.sessions), accounts);
const SECRET = 'bench-memory-secret';
const PASSWORD = 'dorm-pass';
const here = path.dirname(fileURLToPath(import.meta.url));

function rssMiB(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024;
}

const target = await benchDatabase('bench_memory');
const { db } = createDb({ url: target.url, poolMax: 4 });
let server: ChildProcess | null = null;
let failed = false;
const watchdog = setTimeout(() => {
  process.stderr.write('bench watchdog: giving up after 10 minutes\n');
  server?.kill('SIGKILL');
  process.exit(1);
}, 600_000);
try {
  await migrateToLatest(db);
  // A cheap argon2id (1 MiB): 50k cold verifications at the production 19 MiB would take many minutes here;
  // the cache entry held per verified credential is the same size either way.
  const passwordHash = await hash(PASSWORD, { algorithm: 2, memoryCost: 1024, timeCost: 1, parallelism: 1 });
  await sql`INSERT INTO accounts (username, kind, password_hash, balance_fen)
            SELECT 'm' || g, 'student', ${passwordHash}, 10000 FROM generate_series(1, ${accounts}::int) g`.execute(db);
  await sql`INSERT INTO ledger_entries (account_id, kind, amount_fen, balance_after_fen, channel, order_id, effective_at)
            SELECT id, 'top-up', balance_fen, balance_fen, 'bench', username, now() FROM accounts`.execute(db);
  await insertNasClient(db, { name: 'bench-bras', address: '127.0.0.1', secret: SECRET, area: 'dorm' });
  await sql`ANALYZE`.execute(db);

  // The service as `npm start` runs it: compiled JavaScript, no TypeScript loader in the process.
  execFileSync('npx', ['tsc', '-p', path.join(here, '..', 'tsconfig.build.json')], { stdio: 'inherit' });
  server = spawn(process.execPath, [path.join(here, '..', 'dist', 'main.js')], {
    env: { ...process.env, DATABASE_URL: target.url, RADIUS_AUTH_PORT: '0', RADIUS_ACCT_PORT: '0', API_PORT: '0', LOG_LEVEL: 'info', ADMIN_TOKEN: 'bench-memory-admin-token' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ports = await new Promise<{ authPort: number; acctPort: number }>((resolve, reject) => {
    let buf = '';
    server!.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.includes('radius server listening')) resolve(JSON.parse(line) as { authPort: number; acctPort: number });
      }
    });
    server!.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const pid = server.pid!;
  const idleRss = rssMiB(pid);

  const client = await RadiusClient.open(loadDictionary());
  const t0 = performance.now();
  let next = 1;
  let errors = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i > sessions) return;
      const user = `m${i}`;
      try {
        const auth = await client.request({
          host: '127.0.0.1',
          port: ports.authPort,
          code: 1,
          secret: SECRET,
          attributes: { 'User-Name': user, 'User-Password': PASSWORD, 'NAS-IP-Address': '127.0.0.1', 'NAS-Port-Id': `dorm-${i}` },
          timeoutsMs: [3000, 3000, 3000],
        });
        if (auth.reply.code !== 2) throw new Error(`login of ${user} answered ${auth.reply.code}`);
        await client.request({
          host: '127.0.0.1',
          port: ports.acctPort,
          code: 4,
          secret: SECRET,
          attributes: {
            'User-Name': user,
            'Acct-Status-Type': 'Start',
            'Acct-Session-Id': `s-${i}`,
            'NAS-IP-Address': '127.0.0.1',
            'NAS-Port-Id': `dorm-${i}`,
            'Framed-IP-Address': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
            'Acct-Interim-Interval': 600,
          },
          timeoutsMs: [3000, 3000, 3000],
        });
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  const loadS = (performance.now() - t0) / 1000;
  await client.close();
  const online = await sql<{ n: number }>`SELECT count(*)::int AS n FROM acct_sessions WHERE stopped_at IS NULL`.execute(db);
  const samples: number[] = [];
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 500));
    samples.push(rssMiB(pid));
  }
  samples.sort((a, b) => a - b);
  const rss = samples[Math.floor(samples.length / 2)]!;
  const lines = [
    `accounts: ${accounts}; dorm logins + accounting Starts: ${sessions} in ${loadS.toFixed(1)} s (${errors} errors)`,
    `online sessions in the database: ${online.rows[0]!.n}`,
    `service RSS: idle after start ${idleRss.toFixed(0)} MiB; loaded ${rss.toFixed(0)} MiB (median of 10 samples over 5 s); target <= 150 MB`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (errors > 0 || online.rows[0]!.n !== sessions) failed = true;
  if (rss * 1.048576 > 150) {
    process.stdout.write('over the 150 MB target\n');
    failed = true;
  }
} finally {
  clearTimeout(watchdog);
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server!.once('exit', r));
  }
  await db.destroy();
  await target.close();
}
process.exit(failed ? 1 : 0);
