import { execFileSync, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { hash } from '@node-rs/argon2';
import { sql } from 'kysely';
import pg from 'pg';
import { createDb, type Db } from '../src/db/connection.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { RadiusClient, RadiusTimeoutError } from '../src/radius/client.ts';
import { loadDictionary } from '../src/radius/dictionary.ts';
import { insertNasClient } from '../src/radius/nas-store.ts';
import { PacketCode } from '../src/radius/packet.ts';
import {
  ARREARS_BALANCE_FEN,
  BENCH_PASSWORD,
  BENCH_SECRET,
  FUNDED_BALANCE_FEN,
  isFunded,
  OUTSTANDING_CAP,
  phaseBoundSeconds,
  type Phase,
  type PhaseResult,
  type Plan,
} from './load-generator.ts';
import { startCommand } from './start-command.ts';
import { benchDatabase } from './pg.ts';

/**
 * npm run bench:compare [-- --seconds 5 --rounds 3 --levels 16,64,256 --acct-levels 64,256 ...]
 *
 * campus-aaa against FreeRADIUS 3.2 + rlm_sql applying the same rules (bench/peer/), on one private
 * PostgreSQL (bench/pg.ts), the same 10k accounts, the same load generator (bench/loadgen/loadgen.c, compiled
 * at start, or with --generator node bench/load-generator.ts; a process of its own per phase). Each round
 * runs, on one system then the other (A B A B): auth at several concurrency levels, accounting sessions, and
 * auth paced (open loop) at 80% of campus-aaa's peak of the round, plus FreeRADIUS at 80% of its own; the
 * table shows the median of the rounds. Every reply is checked against the expected decision; at the end each
 * database must hold exactly one running cycle per funded account that logged in from the dorm, and every
 * acknowledged accounting Stop. Exits non-zero on any correctness failure (not on a missed performance goal:
 * those are reported).
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const PEER_TEMPLATE = path.join(here, 'peer');
const FREERADIUS = '/usr/sbin/freeradius';
const FREERADIUS_SQL_DIR = '/etc/freeradius/3.0/mods-config/sql/main/postgresql';
const RLM_SQL_POSTGRESQL = '/usr/lib/freeradius/rlm_sql_postgresql.so';
const GOALS = { authRatio: 1.5, acctRatio: 2, pacedP99Ms: 10 } as const;
const LOADGEN_SOURCE = path.join(here, 'loadgen', 'loadgen.c');
const LOADGEN_BINARY = path.join(here, 'out', 'loadgen');

const { values: flags } = parseArgs({
  options: {
    accounts: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    levels: { type: 'string', default: '16,64,256' },
    'acct-levels': { type: 'string', default: '64,256' },
    'rate-fraction': { type: 'string', default: '0.8' },
    warmup: { type: 'string', default: '1' },
    max: { type: 'string', default: '1000000' },
    'peer-threads': { type: 'string', default: '32' },
    'peer-hash': { type: 'string', default: 'ssha256' },
    'kdf-memory-kib': { type: 'string', default: '1024' },
    generator: { type: 'string', default: 'c' },
    nice: { type: 'string', default: '0' },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  process.stdout.write(
    [
      'usage: npm run bench:compare -- [options]',
      '  --accounts N           accounts in both systems (10000)',
      '  --seconds S            length of each measured phase (5)',
      '  --rounds R             A B rounds of every phase; the table shows the median (3)',
      '  --levels a,b,c         auth requests outstanding per level (16,64,256)',
      '  --acct-levels a,b      accounting sessions in flight per level (64,256)',
      '  --rate-fraction F      paced run at F x each system\'s peak auth rate (0.8)',
      '  --warmup S             paced runs first send S seconds at the same rate, checked but not measured (1)',
      '  --max N                requests per phase at most (1000000)',
      '  --peer-threads T       FreeRADIUS worker threads = rlm_sql connections (32)',
      '  --peer-hash H          peer credential: ssha256 | crypt (SHA-512 crypt) | cleartext (ssha256)',
      '  --kdf-memory-kib K     argon2id memory cost of our accounts\' hash (1024; production uses 7168)',
      '  --generator c|node     load generator: c = bench/loadgen/loadgen.c, a small fraction of a core (default);',
      '                         node = bench/load-generator.ts, the generator of the earlier recorded runs',
      '  --nice=N               start both servers under `nice -n N` (0: as the shell runs them); a negative N',
      '                         (root or CAP_SYS_NICE) puts both above the generator and PostgreSQL, as a host',
      '                         that gives its AAA daemon CPU priority would',
      'environment: RADIUS_SOCKET_THREAD=off starts campus-aaa with its RADIUS sockets on the event loop',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const opts = {
  accounts: positiveInt('accounts'),
  seconds: positiveInt('seconds'),
  rounds: positiveInt('rounds'),
  levels: concurrencyList('levels'),
  acctLevels: concurrencyList('acct-levels'),
  rateFraction: Number(flags['rate-fraction']),
  warmup: Number(flags.warmup),
  max: positiveInt('max'),
  peerThreads: positiveInt('peer-threads'),
  peerHash: flags['peer-hash']!,
  kdfMemoryKib: positiveInt('kdf-memory-kib'),
  generator: flags.generator as 'c' | 'node',
  nice: Number(flags.nice),
};
/** The service reads RADIUS_SOCKET_THREAD from the environment it inherits from this process. */
const socketThreadNote = ['off', 'false', '0'].includes(process.env.RADIUS_SOCKET_THREAD ?? 'on') ? 'on the event loop (RADIUS_SOCKET_THREAD=off)' : 'on their own thread (RADIUS_SOCKET_THREAD on, the default)';
if (!(opts.rateFraction > 0 && opts.rateFraction <= 1)) fail('--rate-fraction must be in (0, 1]');
if (!(opts.warmup >= 0 && opts.warmup <= 60)) fail('--warmup must be 0..60 seconds');
if (!['ssha256', 'crypt', 'cleartext'].includes(opts.peerHash)) fail('--peer-hash must be ssha256, crypt or cleartext');
if (opts.generator !== 'c' && opts.generator !== 'node') fail('--generator must be c or node');
if (!Number.isInteger(opts.nice) || opts.nice < -20 || opts.nice > 19) fail('--nice must be an integer from -20 to 19');

function concurrencyList(name: 'levels' | 'acct-levels'): number[] {
  return flags[name]!.split(',').map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > OUTSTANDING_CAP) fail(`--${name}: ${v} is not a concurrency between 1 and ${OUTSTANDING_CAP}`);
    return n;
  });
}

function positiveInt(name: keyof typeof flags): number {
  const n = Number(flags[name]);
  if (!Number.isSafeInteger(n) || n < 1) fail(`--${name} must be a positive integer`);
  return n;
}

/** The command under `nice -n N` when --nice is set; nice execs it, so the child's pid is the server's. */
function niced(command: string, args: string[]): [string, string[]] {
  return opts.nice === 0 ? [command, args] : ['nice', ['-n', String(opts.nice), command, ...args]];
}

function fail(message: string): never {
  process.stderr.write(`bench:compare: ${message}\n`);
  process.exit(2);
}

function note(message: string): void {
  process.stderr.write(`[compare ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

// ---------------------------------------------------------------- FreeRADIUS installation

/** Installs FreeRADIUS and its PostgreSQL driver from Debian when missing (needs root). */
function ensureFreeradius(): void {
  const missing = [FREERADIUS, RLM_SQL_POSTGRESQL, path.join(FREERADIUS_SQL_DIR, 'queries.conf'), path.join(FREERADIUS_SQL_DIR, 'schema.sql')].filter(
    (f) => !existsSync(f),
  );
  if (missing.length === 0) return;
  aptInstall('FreeRADIUS', ['freeradius', 'freeradius-utils', 'freeradius-postgresql'], missing);
}

/** Installs Debian `packages` because `missing` files are absent (needs root), or fails saying what to run. */
function aptInstall(what: string, packages: readonly string[], missing: readonly string[]): void {
  if (process.getuid?.() !== 0) {
    fail(`${what} is not installed (${missing.join(', ')} missing); run: sudo apt-get install -y ${packages.join(' ')}`);
  }
  note(`installing ${packages.join(' ')} (missing: ${missing.join(', ')})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
  if (install().status !== 0) {
    if (spawnSync('apt-get', ['update'], { stdio: 'inherit', env }).status !== 0) fail('apt-get update failed');
    if (install().status !== 0) fail(`apt-get install ${packages.join(' ')} failed`);
  }
  const still = missing.filter((f) => !existsSync(f));
  if (still.length) fail(`still missing after installation: ${still.join(', ')}`);
}

/**
 * Compiles the C load generator into bench/out/loadgen (a second or so; every run, so it is never stale).
 * It needs a C compiler and OpenSSL's headers and libcrypto (Debian: libssl-dev, installed when missing).
 */
function buildLoadgen(): void {
  if (spawnSync('cc', ['--version'], { stdio: 'ignore' }).status !== 0) {
    fail('no C compiler (cc) for the load generator; install gcc, or run with --generator node');
  }
  const header = '/usr/include/openssl/md5.h';
  if (!existsSync(header)) aptInstall('OpenSSL\'s development files', ['libssl-dev'], [header]);
  mkdirSync(path.dirname(LOADGEN_BINARY), { recursive: true });
  const cc = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-o', LOADGEN_BINARY, LOADGEN_SOURCE, '-lcrypto', '-lm'], { encoding: 'utf8' });
  if (cc.status !== 0 || cc.stderr.trim() !== '') {
    process.stderr.write(cc.stderr);
    if (cc.status !== 0) fail(`cc ${path.relative(root, LOADGEN_SOURCE)} failed`);
  }
}

// ---------------------------------------------------------------- processes

interface Server {
  readonly name: string;
  readonly pid: number;
  /** campus-aaa's Prometheus endpoint: its own receipt-to-reply latency histogram. */
  readonly metricsUrl?: string;
  readonly authPort: number;
  readonly acctPort: number;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();

async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, graceMs))]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
  children.delete(child);
}

/** `n` UDP ports on 127.0.0.1 that nothing holds right now. */
async function freeUdpPorts(n: number): Promise<number[]> {
  const sockets = await Promise.all(
    Array.from({ length: n }, () => new Promise<dgram.Socket>((resolve, reject) => {
      const s = dgram.createSocket('udp4');
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** Resolves once the server answers an Access-Request (for an unknown user) on its auth port. */
async function waitAnswering(name: string, port: number, child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const client = await RadiusClient.open(loadDictionary(), { bindAddress: '127.0.0.1' });
  const until = Date.now() + timeoutMs;
  try {
    while (Date.now() < until) {
      if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} during start-up`);
      try {
        await client.request({
          host: '127.0.0.1',
          port,
          code: PacketCode.AccessRequest,
          attributes: [['User-Name', 'ready-probe'], ['User-Password', 'x'], ['NAS-IP-Address', '127.0.0.1']],
          secret: BENCH_SECRET,
          timeoutsMs: [300],
        });
        return;
      } catch (e) {
        if (!(e instanceof RadiusTimeoutError)) throw e;
      }
    }
    throw new Error(`${name} did not answer on 127.0.0.1:${port} within ${timeoutMs} ms`);
  } finally {
    await client.close();
  }
}

async function startOurs(databaseUrl: string): Promise<Server> {
  // The service as `npm start` runs it: compiled JavaScript, no TypeScript loader in the process, the
  // start script's node flags and environment (bench/start-command.ts). BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to the service's node.
  execFileSync('npx', ['tsc', '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  const start = startCommand();
  const child = spawn(...niced(process.execPath, [...start.nodeArgs, path.join(root, 'dist', 'main.js')]), {
    cwd: root,
    env: {
      ...process.env,
      ...start.env,
      DATABASE_URL: databaseUrl,
      RADIUS_HOST: '127.0.0.1',
      RADIUS_AUTH_PORT: '0',
      RADIUS_ACCT_PORT: '0',
      API_HOST: '127.0.0.1',
      API_PORT: '0',
      LOG_LEVEL: 'info',
      // Set, so the service does not mint and print a first admin token into the benchmark's output.
      ADMIN_TOKEN: randomBytes(24).toString('hex'),
      // No settlement during the run: nothing falls due within 30 days anyway.
      SETTLE_CRON: '0 0 1 1 *',
      SIMULATED_CLOCK: '',
      NAS_CLIENTS_FILE: '',
      // The accounts' cheap argon2 hashes stand in for production ones (which the service would not re-hash):
      // upgrading them to the production cost after the warm-up would only add argon2 work to the measured phases.
      PASSWORD_REHASH: 'off',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  // BENCH_SERVER_LOG=FILE keeps the service's whole stdout (its log, and e.g. --trace-gc lines) in FILE.
  if (process.env.BENCH_SERVER_LOG) child.stdout!.pipe(createWriteStream(process.env.BENCH_SERVER_LOG));
  let apiUrl: string | undefined;
  const ports = await new Promise<{ authPort: number; acctPort: number }>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.includes('admin api listening')) {
          apiUrl = (JSON.parse(line) as { url: string }).url;
        } else if (line.includes('radius server listening')) {
          const o = JSON.parse(line) as { authPort: number; acctPort: number };
          resolve({ authPort: o.authPort, acctPort: o.acctPort });
        } else if (/"level":(40|50|60)/.test(line)) {
          process.stderr.write(`[campus-aaa] ${line}\n`);
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`campus-aaa exited with code ${code} during start-up`)));
  });
  await waitAnswering('campus-aaa', ports.authPort, child);
  for (let waited = 0; apiUrl === undefined && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  if (apiUrl === undefined) throw new Error('campus-aaa did not log its admin API address');
  return { name: 'campus-aaa', pid: child.pid!, ...ports, metricsUrl: `${apiUrl}/metrics`, stop: () => stopChild(child) };
}

/** Renders bench/peer/ (all but sql/) into `dir`, replacing each @...@ placeholder; refuses to leave one unreplaced. */
function renderPeerConfig(dir: string, vars: Record<string, string>): void {
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(PEER_TEMPLATE, rel))) {
      const from = path.join(PEER_TEMPLATE, rel, entry);
      const relEntry = path.join(rel, entry);
      if (statSync(from).isDirectory()) {
        if (relEntry === 'sql') continue;
        mkdirSync(path.join(dir, relEntry), { recursive: true });
        walk(relEntry);
        continue;
      }
      const text = readFileSync(from, 'utf8').replace(/@([A-Z_]+)@/g, (m, name: string) => {
        const v = vars[name];
        if (v === undefined) throw new Error(`${relEntry}: no value for ${m}`);
        return v;
      });
      writeFileSync(path.join(dir, relEntry), text, { mode: 0o640 });
    }
  };
  walk('');
}

async function startPeer(databaseUrl: string, threads: number): Promise<Server & { dir: string }> {
  const u = new URL(databaseUrl);
  const unsafe = [u.hostname, u.port, u.username, u.password, u.pathname].find((v) => /["\\\n$]/.test(decodeURIComponent(v)));
  if (unsafe !== undefined) throw new Error('the database URL holds characters the FreeRADIUS config cannot carry');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'campus-aaa-peer-'));
  try {
    return await launchPeer(dir, databaseUrl, threads);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function launchPeer(dir: string, databaseUrl: string, threads: number): Promise<Server & { dir: string }> {
  const u = new URL(databaseUrl);
  const [authPort, acctPort] = (await freeUdpPorts(2)) as [number, number];
  const run = path.join(dir, 'run');
  mkdirSync(run);
  renderPeerConfig(dir, {
    CONFDIR: dir,
    RUNDIR: run,
    THREADS: String(threads),
    SECRET: BENCH_SECRET,
    AUTH_PORT: String(authPort),
    ACCT_PORT: String(acctPort),
    DB_HOST: u.hostname,
    DB_PORT: u.port || '5432',
    DB_USER: decodeURIComponent(u.username),
    DB_PASSWORD: decodeURIComponent(u.password),
    DB_NAME: decodeURIComponent(u.pathname.slice(1)),
    QUERIES_CONF: path.join(FREERADIUS_SQL_DIR, 'queries.conf'),
  });
  const check = spawnSync(FREERADIUS, ['-C', '-d', dir], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`freeradius -C rejected the peer config:\n${check.stdout}${check.stderr}${readLog(run)}`);
  const child = spawn(...niced(FREERADIUS, ['-f', '-d', dir]), { stdio: ['ignore', 'inherit', 'inherit'] });
  children.add(child);
  try {
    await waitAnswering('freeradius', authPort, child);
  } catch (e) {
    process.stderr.write(readLog(run));
    await stopChild(child);
    throw e;
  }
  return {
    name: 'FreeRADIUS',
    pid: child.pid!,
    authPort,
    acctPort,
    dir,
    stop: async () => {
      await stopChild(child);
      const notable = readLog(run)
        .split('\n')
        .filter((l) => /error|warn|drop|discard|full|block/i.test(l));
      if (notable.length) process.stderr.write(`FreeRADIUS log (${notable.length} notable lines):\n${notable.slice(0, 20).join('\n')}\n`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readLog(run: string): string {
  const f = path.join(run, 'radius.log');
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
}

// ---------------------------------------------------------------- data

async function loadOurs(db: Db, passwordHash: string, accounts: number): Promise<void> {
  await migrateToLatest(db);
  await sql`INSERT INTO accounts (username, kind, password_hash, balance_fen)
            SELECT 'u' || g, 'student', ${passwordHash}, CASE WHEN g % 10 = 0 THEN ${ARREARS_BALANCE_FEN}::bigint ELSE ${FUNDED_BALANCE_FEN}::bigint END
            FROM generate_series(1, ${accounts}::int) g`.execute(db);
  // The balance is the sum of the ledger: each account's money arrived as one top-up.
  await sql`INSERT INTO ledger_entries (account_id, kind, amount_fen, balance_after_fen, channel, order_id, effective_at)
            SELECT id, 'top-up', balance_fen, balance_fen, 'bench', username, now() FROM accounts`.execute(db);
  await insertNasClient(db, {
    name: 'bench-bras',
    address: '127.0.0.1',
    secret: BENCH_SECRET,
    area: 'dorm',
    areaRules: [{ attribute: 'NAS-Port-Id', pattern: '^office', area: 'office' }],
    messageAuthenticator: 'require',
  });
  await sql`ANALYZE`.execute(db);
}

/** The peer's credential as a Password-With-Header value rlm_pap understands. */
function peerPassword(kind: string): string {
  if (kind === 'cleartext') return `{cleartext}${BENCH_PASSWORD}`;
  if (kind === 'crypt') {
    const salt = randomBytes(12).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, 16);
    return `{crypt}${execFileSync('openssl', ['passwd', '-6', '-salt', salt, BENCH_PASSWORD], { encoding: 'utf8' }).trim()}`;
  }
  const salt = randomBytes(16);
  const digest = createHash('sha256').update(BENCH_PASSWORD).update(salt).digest();
  return `{ssha256}${Buffer.concat([digest, salt]).toString('base64')}`;
}

async function loadPeer(url: string, accounts: number, password: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // FreeRADIUS's standard PostgreSQL schema (radacct and friends) as the installed package ships it.
    await c.query(readFileSync(path.join(FREERADIUS_SQL_DIR, 'schema.sql'), 'utf8'));
    await c.query(readFileSync(path.join(PEER_TEMPLATE, 'sql', 'schema.sql'), 'utf8'));
    await c.query(readFileSync(path.join(PEER_TEMPLATE, 'sql', 'decisions.sql'), 'utf8'));
    await c.query(
      `INSERT INTO peer_accounts (username, password, balance_fen)
       SELECT 'u' || g, $1, CASE WHEN g % 10 = 0 THEN $2::bigint ELSE $3::bigint END FROM generate_series(1, $4::int) g`,
      [password, ARREARS_BALANCE_FEN, FUNDED_BALANCE_FEN, accounts],
    );
    await c.query('ANALYZE');
  } finally {
    await c.end();
  }
}

/** A second database on the server of `url`, for the peer; returns its URL and how to drop it. */
async function createSiblingDatabase(url: string, name: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = async (statement: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(statement);
    } finally {
      await c.end();
    }
  };
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${name}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

// ---------------------------------------------------------------- measuring

function rssMiB(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

function cpuSecondsOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime + stime in clock ticks (100 per second on Linux).
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * CPU seconds of the PostgreSQL processes under this process (the embedded cluster bench/pg.ts started),
 * or NaN with BENCH_DATABASE_URL, whose server is not ours to account.
 */
function databaseCpuSeconds(): number {
  if (process.env.BENCH_DATABASE_URL) return NaN;
  const procs = new Map<number, { ppid: number; comm: string; cpu: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime + stime, plus cutime + cstime: a backend that exited was reaped by the postmaster, whose
      // children's time keeps the CPU it used.
      procs.set(Number(entry), { ppid: Number(f[1]), comm, cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100 });
    } catch {
      // The process ended while we looked.
    }
  }
  let total = 0;
  for (const p of procs.values()) {
    if (p.comm !== 'postgres') continue;
    for (let up = p.ppid; up > 1; up = procs.get(up)?.ppid ?? 0) {
      if (up === process.pid) {
        total += p.cpu;
        break;
      }
    }
  }
  return total;
}

/** Busy and total jiffies of the whole machine (for "was the machine saturated"). */
function machineJiffies(): { busy: number; total: number } {
  // user nice system idle iowait irq softirq steal (guest time is already inside user and nice).
  const parts = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = parts.reduce((a, b) => a + b, 0);
  const idle = (parts[3] ?? 0) + (parts[4] ?? 0);
  return { busy: total - idle, total };
}

interface Measured extends PhaseResult {
  readonly system: string;
  readonly label: string;
  readonly sessionTag: string;
  readonly peakRssMiB: number;
  readonly serverCpuSeconds: number;
  readonly databaseCpuSeconds: number;
  readonly machineBusyPct: number;
  /** Share of the machine's CPU used by processes other than this server, the database and the generator. */
  readonly othersPct: number;
  /** campus-aaa only: its own receipt-to-reply p50 and p99, as histogram bucket bounds (ms). */
  readonly serverP50Ms: number;
  readonly serverP99Ms: number;
  /** campus-aaa only: its event-loop delay p99 and max over the phase, and time in major GCs (ms). */
  readonly serverLoopP99Ms: number;
  readonly serverLoopMaxMs: number;
  readonly serverMajorGcMs: number;
}

interface ServiceSnapshot {
  /** Cumulative counts of radius_request_duration_seconds buckets for the phase's code, by upper bound (s). */
  readonly buckets: Map<number, number>;
  /** Event-loop delay since the previous scrape (prom-client resets it on every scrape), ms. */
  readonly loopP99Ms: number;
  readonly loopMaxMs: number;
  /** Cumulative seconds in major (mark-compact) garbage collections. */
  readonly majorGcSeconds: number;
}

/** campus-aaa's own view of a phase, from its Prometheus endpoint. */
async function serviceSnapshot(metricsUrl: string, code: 'access' | 'accounting'): Promise<ServiceSnapshot> {
  const text = await (await fetch(metricsUrl)).text();
  const buckets = new Map<number, number>();
  const re = new RegExp(`^radius_request_duration_seconds_bucket\\{le="([^"]+)",code="${code}"\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) buckets.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  const gauge = (name: string) => 1000 * Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const majorGcSeconds = Number(/^nodejs_gc_duration_seconds_sum\{kind="major"\} (\S+)$/m.exec(text)?.[1] ?? 0);
  return { buckets, loopP99Ms: gauge('nodejs_eventloop_lag_p99_seconds'), loopMaxMs: gauge('nodejs_eventloop_lag_max_seconds'), majorGcSeconds };
}

/** The bucket bound (ms) under which fraction `p` of the requests between two snapshots fell. */
function bucketQuantileMs(before: Map<number, number>, after: Map<number, number>, p: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (total <= 0) return NaN;
  const bound = bounds.find((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0) >= p * total) ?? Infinity;
  return bound * 1000;
}

let runCounter = 0;

type GeneratorMessage = PhaseResult | { started: true };

/**
 * Starts the generator for one phase: the C binary (messages are JSON lines on its stdout) or, with
 * --generator node, bench/load-generator.ts forked under tsx (messages over IPC). Both send {started:true}
 * when the measured part starts, then the PhaseResult.
 */
function startGenerator(plan: Plan, onMessage: (m: GeneratorMessage) => void, onError: (e: Error) => void): ChildProcess {
  if (opts.generator === 'node') {
    // BENCH_GENERATOR_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to the generator's node.
    const generatorArgs = (process.env.BENCH_GENERATOR_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const gen = fork(path.join(here, 'load-generator.ts'), ['--plan', JSON.stringify(plan)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [...generatorArgs, '--import', 'tsx'],
    });
    gen.on('message', onMessage);
    return gen;
  }
  const gen = spawn(LOADGEN_BINARY, ['--plan', JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  gen.stdout!.setEncoding('utf8');
  gen.stdout!.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        onMessage(JSON.parse(line) as GeneratorMessage);
      } catch (e) {
        onError(new Error(`load generator printed something other than JSON: ${line.slice(0, 200)} (${String(e)})`));
      }
    }
  });
  return gen;
}

/** Runs one phase against `server` in a freshly started generator, sampling the server's RSS and CPU. */
async function measure(server: Server, label: string, phase: Phase, accounts: number): Promise<Measured> {
  runCounter++;
  const plan: Plan = {
    host: '127.0.0.1',
    authPort: server.authPort,
    acctPort: server.acctPort,
    accounts,
    // The same seed for the same phase on both systems: the same request sequence.
    seed: 0x5eed + hashLabel(label),
    sessionTag: `r${runCounter}-${server.name === 'campus-aaa' ? 'ours' : 'peer'}`,
    phase,
  };
  let peakRss = rssMiB(server.pid);
  let started = false;
  let cpu0 = 0;
  let db0 = 0;
  let m0 = machineJiffies();
  const histogramCode = phase.kind === 'acct' ? 'accounting' : 'access';
  const histogram = () => (server.metricsUrl ? serviceSnapshot(server.metricsUrl, histogramCode).catch(() => null) : Promise.resolve(null));
  // Scraped before the generator starts, not when the measured part begins: rendering /metrics holds the
  // event loop for milliseconds, and at the start of a paced run that queued requests for ~300 ms.
  const h0 = await histogram();
  let gen: ChildProcess | undefined;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssMiB(server.pid));
  }, 100);
  try {
    const result = await new Promise<PhaseResult>((resolve, reject) => {
      const bound = setTimeout(() => reject(new Error(`${label} on ${server.name}: generator exceeded its bound`)), (phaseBoundSeconds(phase) + 20) * 1000);
      const onMessage = (m: GeneratorMessage) => {
        if ('started' in m) {
          started = true;
          cpu0 = cpuSecondsOf(server.pid);
          db0 = databaseCpuSeconds();
          m0 = machineJiffies();
          return;
        }
        clearTimeout(bound);
        resolve(m);
      };
      gen = startGenerator(plan, onMessage, (e) => {
        clearTimeout(bound);
        reject(e);
      });
      children.add(gen);
      gen.once('exit', (code) => {
        clearTimeout(bound);
        if (code !== 0) reject(new Error(`${label} on ${server.name}: generator exited with ${code}`));
      });
    });
    if (!started) throw new Error('generator never started');
    const m1 = machineJiffies();
    const hBefore = h0;
    const hAfter = await histogram();
    const serverCpuSeconds = cpuSecondsOf(server.pid) - cpu0;
    const dbCpuSeconds = databaseCpuSeconds() - db0;
    const busySeconds = (m1.busy - m0.busy) / 100;
    const capacitySeconds = (m1.total - m0.total) / 100;
    const ownSeconds = serverCpuSeconds + (Number.isFinite(dbCpuSeconds) ? dbCpuSeconds : 0) + result.generatorCpuSeconds;
    return {
      ...result,
      system: server.name,
      label,
      sessionTag: plan.sessionTag,
      peakRssMiB: Math.max(peakRss, rssMiB(server.pid)),
      serverCpuSeconds,
      databaseCpuSeconds: dbCpuSeconds,
      machineBusyPct: (100 * busySeconds) / Math.max(0.01, capacitySeconds),
      othersPct: (100 * Math.max(0, busySeconds - ownSeconds)) / Math.max(0.01, capacitySeconds),
      serverP50Ms: hBefore && hAfter ? bucketQuantileMs(hBefore.buckets, hAfter.buckets, 0.5) : NaN,
      serverP99Ms: hBefore && hAfter ? bucketQuantileMs(hBefore.buckets, hAfter.buckets, 0.99) : NaN,
      serverLoopP99Ms: hAfter ? hAfter.loopP99Ms : NaN,
      serverLoopMaxMs: hAfter ? hAfter.loopMaxMs : NaN,
      serverMajorGcMs: hBefore && hAfter ? 1000 * (hAfter.majorGcSeconds - hBefore.majorGcSeconds) : NaN,
    };
  } finally {
    clearInterval(sampler);
    if (gen) await stopChild(gen, 2_000);
  }
}

function hashLabel(label: string): number {
  return createHash('sha256').update(label).digest().readUInt32BE(0) & 0xffff;
}

// ---------------------------------------------------------------- correctness checks

interface Checks {
  problems: string[];
  lines: string[];
}

async function checkAccounting(which: 'ours' | 'peer', db: pg.Client, r: Measured, checks: Checks): Promise<void> {
  const tag = `${r.sessionTag}-%`;
  const q =
    which === 'ours'
      ? `SELECT count(*)::int AS total, count(*) FILTER (WHERE stopped_at IS NOT NULL)::int AS stopped FROM acct_sessions WHERE session_id LIKE $1`
      : `SELECT count(*)::int AS total, count(*) FILTER (WHERE acctstoptime IS NOT NULL)::int AS stopped FROM radacct WHERE acctsessionid LIKE $1`;
  const row = (await db.query<{ total: number; stopped: number }>(q, [tag])).rows[0]!;
  const ok = row.stopped >= r.stopsAcked && row.stopped <= r.stopsSent && row.total <= r.sessionsStarted;
  checks.lines.push(
    `${r.system} ${r.label}: ${r.stopsAcked} Stops acknowledged, ${row.stopped} stopped rows, ${row.total} session rows for ${r.sessionsStarted} sessions started${ok ? '' : '  <-- MISMATCH'}`,
  );
  if (!ok) checks.problems.push(`${r.system} ${r.label}: acknowledged Stops ${r.stopsAcked} vs stopped rows ${row.stopped} (sent ${r.stopsSent})`);
}

/** Exactly one running cycle per funded account that logged in from the dorm; none for anyone else. */
async function checkCycles(
  system: string,
  db: pg.Client,
  query: string,
  accepted: Set<number>,
  unanswered: Set<number>,
  accounts: number,
  checks: Checks,
): Promise<void> {
  const running = new Map<number, number>();
  for (const r of (await db.query<{ i: number; n: number }>(query)).rows) running.set(r.i, r.n);
  let bad = 0;
  const samples: string[] = [];
  for (let i = 1; i <= accounts; i++) {
    const n = running.get(i) ?? 0;
    const acceptedHere = accepted.has(i);
    const ok = acceptedHere ? n === 1 : unanswered.has(i) ? n <= 1 : n === 0;
    if (!ok) {
      bad++;
      if (samples.length < 5) samples.push(`u${i}: ${n} running cycles, ${acceptedHere ? 'accepted in the dorm' : 'never accepted in the dorm'}`);
    }
  }
  checks.lines.push(`${system}: ${running.size} accounts with a running cycle, ${accepted.size} accepted in the dorm${bad ? `, ${bad} wrong: ${samples.join('; ')}` : ', all exactly one'}`);
  if (bad) checks.problems.push(`${system}: ${bad} accounts with the wrong number of running cycles`);
}

// ---------------------------------------------------------------- report

interface Row {
  readonly workload: string;
  /** Open loop: throughput is the offered rate, so no throughput ratio. */
  readonly paced?: boolean;
  readonly ours: Measured[];
  readonly peer: Measured[];
}

const GENERATOR_NAME = { c: 'C, bench/loadgen/loadgen.c', node: 'Node, bench/load-generator.ts' } as const;
/** What each generator reports as generatorLoopDelayP99Ms. */
const GENERATOR_LAG = { c: 'reply read / paced send lateness', node: 'event-loop lag' } as const;

const fmtRate = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const fmtMs = (x: number) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : x.toFixed(1)) : '-');

/** The median across rounds: one disturbed round (the machine is shared) does not move it. */
function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

function summarize(ms: readonly Measured[]) {
  return {
    rps: median(ms.map((m) => m.rps)),
    rpsMin: Math.min(...ms.map((m) => m.rps)),
    rpsMax: Math.max(...ms.map((m) => m.rps)),
    p50: median(ms.map((m) => m.p50)),
    p95: median(ms.map((m) => m.p95)),
    p99: median(ms.map((m) => m.p99)),
    rss: Math.max(...ms.map((m) => m.peakRssMiB)),
    usPerReq: median(ms.map((m) => (1e6 * m.serverCpuSeconds) / Math.max(1, m.answered))),
    dbUsPerReq: median(ms.map((m) => (1e6 * m.databaseCpuSeconds) / Math.max(1, m.answered))),
    genPct: median(ms.map((m) => (100 * m.generatorCpuSeconds) / m.seconds)),
    busy: median(ms.map((m) => m.machineBusyPct)),
    others: median(ms.map((m) => m.othersPct)),
    genLagP99: median(ms.map((m) => m.generatorLoopDelayP99Ms)),
    serverP50: median(ms.map((m) => m.serverP50Ms)),
    serverP99: median(ms.map((m) => m.serverP99Ms)),
    serverLoopP99: median(ms.map((m) => m.serverLoopP99Ms)),
    serverLoopMax: median(ms.map((m) => m.serverLoopMaxMs)),
    serverMajorGc: median(ms.map((m) => m.serverMajorGcMs)),
    timeouts: ms.reduce((a, m) => a + m.timeouts, 0),
  };
}

function table(rows: readonly Row[]): string {
  const head =
    '| workload | campus-aaa req/s | p50 / p95 / p99 ms | RSS MiB | FreeRADIUS req/s | p50 / p95 / p99 ms | RSS MiB | ratio |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map((r) => {
    const a = summarize(r.ours);
    const b = summarize(r.peer);
    const lat = (s: ReturnType<typeof summarize>) => `${fmtMs(s.p50)} / ${fmtMs(s.p95)} / ${fmtMs(s.p99)}`;
    const to = (s: ReturnType<typeof summarize>) => (s.timeouts ? ` (${s.timeouts} lost)` : '');
    const ratio = r.paced ? '-' : `${(a.rps / b.rps).toFixed(2)}x`;
    return `| ${r.workload} | ${fmtRate(a.rps)}${to(a)} | ${lat(a)} | ${a.rss.toFixed(0)} | ${fmtRate(b.rps)}${to(b)} | ${lat(b)} | ${b.rss.toFixed(0)} | ${ratio} |`;
  });
  return [head, ...lines].join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const started = performance.now();
  ensureFreeradius();
  if (opts.generator === 'c') buildLoadgen();
  const version = spawnSync(FREERADIUS, ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'freeradius';
  note(`${version.trim()}; node ${process.version}; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}); campus-aaa's sockets ${socketThreadNote}`);

  const m0 = machineJiffies();
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const m1 = machineJiffies();
  const idleBusyPct = (100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total);
  note(`machine ${idleBusyPct.toFixed(0)}% busy before the benchmark started (load average ${os.loadavg()[0]!.toFixed(1)})`);
  if (idleBusyPct > 10) note('other processes are using the CPU: the numbers below share the machine with them');

  const target = await benchDatabase('bench_compare');
  const { db } = createDb({ url: target.url, poolMax: 4 });
  let peerDb: { url: string; drop: () => Promise<void> } | null = null;
  let ours: Server | null = null;
  let peer: Server | null = null;
  const checks: Checks = { problems: [], lines: [] };
  const oursClient = new pg.Client({ connectionString: target.url });
  let peerClient: pg.Client | null = null;
  try {
    peerDb = await createSiblingDatabase(target.url, `bench_compare_peer_${process.pid}`);
    note(`private PostgreSQL ready; loading ${opts.accounts} accounts into both systems`);
    const passwordHash = await hash(BENCH_PASSWORD, { algorithm: 2, memoryCost: opts.kdfMemoryKib, timeCost: 2, parallelism: 1 });
    await loadOurs(db, passwordHash, opts.accounts);
    await loadPeer(peerDb.url, opts.accounts, peerPassword(opts.peerHash));
    await oursClient.connect();
    peerClient = new pg.Client({ connectionString: peerDb.url });
    await peerClient.connect();

    ours = await startOurs(target.url);
    peer = await startPeer(peerDb.url, opts.peerThreads);
    note(`campus-aaa pid ${ours.pid} on 127.0.0.1:${ours.authPort}/${ours.acctPort}; FreeRADIUS pid ${peer.pid} on 127.0.0.1:${peer.authPort}/${peer.acctPort}`);

    const accepted = { ours: new Set<number>(), peer: new Set<number>() };
    const unanswered = { ours: new Set<number>(), peer: new Set<number>() };
    const all: Measured[] = [];
    const record = (m: Measured) => {
      all.push(m);
      const key = m.system === 'campus-aaa' ? 'ours' : 'peer';
      for (const i of m.dormAccepted) accepted[key].add(i);
      for (const i of m.dormUnanswered) unanswered[key].add(i);
      if (m.mismatches) checks.problems.push(`${m.system} ${m.label}: ${m.mismatches} wrong answers, e.g. ${m.samples.join(' | ')}`);
      const perReq = (1e6 * m.serverCpuSeconds) / Math.max(1, m.answered);
      const dbPerReq = (1e6 * m.databaseCpuSeconds) / Math.max(1, m.answered);
      note(
        `${m.system.padEnd(10)} ${m.label.padEnd(22)} ${fmtRate(m.rps).padStart(7)} req/s  p50 ${fmtMs(m.p50)}  p95 ${fmtMs(m.p95)}  p99 ${fmtMs(m.p99)} ms  ` +
          `lost ${m.timeouts}  wrong ${m.mismatches}  RSS ${m.peakRssMiB.toFixed(0)} MiB  cpu ${perReq.toFixed(0)}+${Number.isFinite(dbPerReq) ? dbPerReq.toFixed(0) : '?'} us/req  gen ${((100 * m.generatorCpuSeconds) / m.seconds).toFixed(0)}% (lag p99 ${m.generatorLoopDelayP99Ms.toFixed(1)} ms)${Number.isFinite(m.serverP99Ms) ? `  in-server p50/p99 <= ${m.serverP50Ms}/${m.serverP99Ms} ms, loop lag p99/max ${m.serverLoopP99Ms.toFixed(0)}/${m.serverLoopMaxMs.toFixed(0)} ms, major GC ${m.serverMajorGcMs.toFixed(0)} ms` : ''}  machine ${m.machineBusyPct.toFixed(0)}% busy, others ${m.othersPct.toFixed(0)}%`,
      );
      return m;
    };

    // Warm-up: one dorm login per account on each system (credential caches; the funded accounts' cycles open).
    for (const s of [ours, peer]) record(await measure(s, 'warm-up (1 login/account)', { kind: 'warm', concurrency: 64, seconds: 180 }, opts.accounts));

    const rows: Row[] = [
      ...opts.levels.map((c) => ({ workload: `auth, ${c} outstanding`, ours: [] as Measured[], peer: [] as Measured[] })),
      ...opts.acctLevels.map((c) => ({ workload: `accounting, ${c} sessions in flight`, ours: [] as Measured[], peer: [] as Measured[] })),
    ];
    // Latency under load, open loop, in every round: both systems at rate-fraction of campus-aaa's peak auth
    // rate of that round (the same offered load), and FreeRADIUS also at rate-fraction of its own.
    const pct = Math.round(opts.rateFraction * 100);
    const pacedSame: Row = { workload: `auth paced at ${pct}% of campus-aaa's peak (same offered load)`, paced: true, ours: [], peer: [] };
    const pacedOwn: Row = { workload: `auth paced at ${pct}% of each one's own peak`, paced: true, ours: pacedSame.ours, peer: [] };
    const rates = { same: [] as number[], own: [] as number[] };
    for (let round = 1; round <= opts.rounds; round++) {
      let oursRate = 0;
      for (const s of [ours, peer]) {
        const key = s === ours ? 'ours' : 'peer';
        let roundPeak = 0;
        for (const [k, c] of opts.levels.entries()) {
          const m = record(await measure(s, `auth c=${c} round ${round}`, { kind: 'auth', concurrency: c, seconds: opts.seconds, max: opts.max }, opts.accounts));
          rows[k]![key].push(m);
          roundPeak = Math.max(roundPeak, m.rps);
        }
        for (const [k, c] of opts.acctLevels.entries()) {
          const m = record(await measure(s, `acct c=${c} round ${round}`, { kind: 'acct', concurrency: c, seconds: opts.seconds, max: opts.max }, opts.accounts));
          rows[opts.levels.length + k]![key].push(m);
          await checkAccounting(key, key === 'ours' ? oursClient : peerClient, m, checks);
        }
        const paced = (rate: number) => ({ kind: 'paced', rate, seconds: opts.seconds, warmup: opts.warmup, max: opts.max }) as const;
        if (key === 'ours') {
          oursRate = Math.floor(roundPeak * opts.rateFraction);
          rates.same.push(oursRate);
          pacedSame.ours.push(record(await measure(s, `paced ${oursRate}/s round ${round}`, paced(oursRate), opts.accounts)));
        } else {
          pacedSame.peer.push(record(await measure(s, `paced ${oursRate}/s round ${round}`, paced(oursRate), opts.accounts)));
          const own = Math.floor(roundPeak * opts.rateFraction);
          rates.own.push(own);
          pacedOwn.peer.push(record(await measure(s, `paced ${own}/s round ${round}`, paced(own), opts.accounts)));
        }
      }
    }
    const peakOf = (rs: readonly Row[], key: 'ours' | 'peer') => Math.max(...rs.map((r) => summarize(r[key]).rps));
    const authRows = rows.slice(0, opts.levels.length);
    const acctRows = rows.slice(opts.levels.length);
    const peaks = { ours: peakOf(authRows, 'ours'), peer: peakOf(authRows, 'peer') };
    const acctPeaks = { ours: peakOf(acctRows, 'ours'), peer: peakOf(acctRows, 'peer') };

    await checkCycles('campus-aaa', oursClient, `SELECT substr(a.username, 2)::int AS i, count(*)::int AS n FROM cycles c JOIN accounts a ON a.id = c.account_id WHERE c.settled_at IS NULL GROUP BY a.username`, accepted.ours, unanswered.ours, opts.accounts, checks);
    await checkCycles('FreeRADIUS', peerClient, `SELECT substr(username, 2)::int AS i, count(*)::int AS n FROM peer_cycles WHERE settled_at IS NULL GROUP BY username`, accepted.peer, unanswered.peer, opts.accounts, checks);
    const money = async (c: pg.Client, q: string) => Number((await c.query<{ s: string }>(q)).rows[0]!.s);
    const expectedFen = Array.from({ length: opts.accounts }, (_, k) => (isFunded(k + 1) ? FUNDED_BALANCE_FEN : ARREARS_BALANCE_FEN)).reduce((a, b) => a + b, 0);
    for (const [system, c, q] of [
      ['campus-aaa', oursClient, 'SELECT sum(balance_fen)::text AS s FROM accounts'],
      ['FreeRADIUS', peerClient, 'SELECT sum(balance_fen)::text AS s FROM peer_accounts'],
    ] as const) {
      const total = await money(c, q);
      checks.lines.push(`${system}: balances total ${total} fen (expected ${expectedFen}: nothing fell due)`);
      if (total !== expectedFen) checks.problems.push(`${system}: balances total ${total} fen, expected ${expectedFen}`);
    }

    // ---- report
    const allRows = [...rows, pacedSame, pacedOwn];
    const a = summarize(pacedSame.ours);
    const authRatio = peaks.ours / peaks.peer;
    const acctRatio = acctPeaks.ours / acctPeaks.peer;
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const out: string[] = [];
    out.push('');
    out.push(`bench:compare: campus-aaa vs ${version.trim()} + rlm_sql/PostgreSQL (peer credential: ${opts.peerHash}), ${opts.accounts} accounts, ${os.cpus().length} cores, node ${process.version}; campus-aaa's sockets ${socketThreadNote}`);
    out.push(`median of ${opts.rounds} alternating rounds (A B A B) of ${opts.seconds} s per phase; RSS = peak of the server process; loopback, one generator process (${GENERATOR_NAME[opts.generator]})${opts.nice === 0 ? '' : `; both servers at nice ${opts.nice}, the generator and PostgreSQL at the shell's`}`);
    out.push(`machine ${idleBusyPct.toFixed(0)}% busy with other work before the start`);
    out.push('');
    out.push(table(allRows));
    out.push('');
    out.push('CPU per answered request, server process + its PostgreSQL backends (independent of how busy the machine was):');
    out.push('');
    out.push('| workload | campus-aaa us/req | FreeRADIUS us/req | campus-aaa requests per CPU-second vs FreeRADIUS |');
    out.push('|---|---:|---:|---:|');
    for (const r of rows) {
      const x = summarize(r.ours);
      const y = summarize(r.peer);
      const tx = x.usPerReq + x.dbUsPerReq;
      const ty = y.usPerReq + y.dbUsPerReq;
      out.push(`| ${r.workload} | ${x.usPerReq.toFixed(0)} + ${x.dbUsPerReq.toFixed(0)} = ${tx.toFixed(0)} | ${y.usPerReq.toFixed(0)} + ${y.dbUsPerReq.toFixed(0)} = ${ty.toFixed(0)} | ${Number.isFinite(tx / ty) ? (ty / tx).toFixed(2) : '-'}x |`);
    }
    out.push('');
    out.push(
      `paced (open loop) offered loads per round: ${rates.same.map(fmtRate).join(', ')}/s = ${pct}% of campus-aaa's peak of the round; ${rates.own.map(fmtRate).join(', ')}/s = ${pct}% of FreeRADIUS's` +
        (opts.warmup > 0 ? `; each after ${opts.warmup} s at the same rate, answered and checked but not measured (--warmup)` : ''),
    );
    out.push('per workload: req/s range over the rounds; CPU per answered request (server process + PostgreSQL); generator CPU; machine busy (others: processes not in the benchmark):');
    for (const r of allRows) {
      const x = summarize(r.ours);
      const y = summarize(r.peer);
      const cpu = (s: ReturnType<typeof summarize>) =>
        `${fmtRate(s.rpsMin)}-${fmtRate(s.rpsMax)} req/s over the rounds, ${s.usPerReq.toFixed(0)} + ${Number.isFinite(s.dbUsPerReq) ? s.dbUsPerReq.toFixed(0) : '?'} us, ` +
        `generator ${s.genPct.toFixed(0)}% (${GENERATOR_LAG[opts.generator]} p99 ${s.genLagP99.toFixed(1)} ms), machine ${s.busy.toFixed(0)}% (others ${s.others.toFixed(0)}%)` +
        (Number.isFinite(s.serverP99)
          ? `, in-server latency p50 <= ${s.serverP50} ms, p99 <= ${s.serverP99} ms, its event-loop lag p99 ${s.serverLoopP99.toFixed(0)} ms, max ${s.serverLoopMax.toFixed(0)} ms, major GC ${s.serverMajorGc.toFixed(0)} ms`
          : '');
      out.push(`  ${r.workload}: campus-aaa ${cpu(x)}; FreeRADIUS ${cpu(y)}`);
    }
    out.push('goals:');
    out.push(`  auth >= ${GOALS.authRatio}x FreeRADIUS (peak vs peak): ${authRatio.toFixed(2)}x (${fmtRate(peaks.ours)} vs ${fmtRate(peaks.peer)} req/s) -> ${verdict(authRatio >= GOALS.authRatio)}`);
    out.push(
      `  accounting >= ${GOALS.acctRatio}x (peak vs peak), acknowledged after commit: ${acctRatio.toFixed(2)}x (${fmtRate(acctPeaks.ours)} vs ${fmtRate(acctPeaks.peer)} req/s) -> ${verdict(acctRatio >= GOALS.acctRatio)}`,
    );
    out.push(`  p99 <= ${GOALS.pacedP99Ms} ms at ${pct}% of peak: ${fmtMs(a.p99)} ms${a.timeouts ? ` (${a.timeouts} lost)` : ''} -> ${verdict(a.p99 <= GOALS.pacedP99Ms && a.timeouts === 0)}`);
    out.push('correctness:');
    for (const l of checks.lines) out.push(`  ${l}`);
    const wrong = all.reduce((n, m) => n + m.mismatches, 0);
    out.push(`  ${all.reduce((n, m) => n + m.answered, 0)} replies checked, ${wrong} wrong; ${checks.problems.length ? `${checks.problems.length} PROBLEMS:` : 'no problems'}`);
    for (const p of checks.problems) out.push(`  - ${p}`);
    out.push(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
    process.stdout.write(`${out.join('\n')}\n`);

    mkdirSync(path.join(root, 'bench', 'out'), { recursive: true });
    writeFileSync(path.join(root, 'bench', 'out', 'compare.json'), JSON.stringify({ opts, version, peaks, acctPeaks, rates, results: all.map(({ dormAccepted: _a, dormUnanswered: _u, ...m }) => m), checks }, null, 2));
    return checks.problems.length ? 1 : 0;
  } finally {
    if (ours) await ours.stop().catch((e: unknown) => note(`stopping campus-aaa: ${String(e)}`));
    if (peer) await peer.stop().catch((e: unknown) => note(`stopping FreeRADIUS: ${String(e)}`));
    await oursClient.end().catch(() => undefined);
    await peerClient?.end().catch(() => undefined);
    await db.destroy();
    await peerDb?.drop().catch((e: unknown) => note(`dropping the peer database: ${String(e)}`));
    await target.close();
  }
}

const watchdog = setTimeout(() => {
  process.stderr.write('bench:compare: watchdog fired after 20 minutes, giving up\n');
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
}, 20 * 60_000);
watchdog.unref();

try {
  const code = await main();
  process.exit(code);
} catch (e) {
  process.stderr.write(`bench:compare failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
}
