import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hash } from '@node-rs/argon2';
import { sql } from 'kysely';
import { createDb } from '../src/db/connection.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { loadDictionary, type Dictionary } from '../src/radius/dictionary.ts';
import { insertNasClient } from '../src/radius/nas-store.ts';
import { encodeRequest, PacketCode, verifyResponse } from '../src/radius/packet.ts';
import { benchDatabase } from './pg.ts';
import { startCommand } from './start-command.ts';

/**
 * npm run bench:auth | bench:acct [-- --accounts 10000 --seconds 10 --concurrency 128|512 --max 400000]
 *
 * Sets up a private PostgreSQL (bench/pg.ts: fsync on), 10k accounts and a NAS client, builds and starts
 * the whole service as `npm start` runs it (dist/main.js) in its own process, and forks a load generator
 * that talks to it over loopback.
 * auth: warm-up (one login per account: credential cache, cycles opened), then a closed-loop run at the
 * given concurrency (max throughput), then an open-loop run paced at 80% of that rate (latency).
 * acct: sessions of Start, Interim-Update, Stop, each sent when the previous one was answered.
 * Every phase stops at --seconds or --max requests, whichever comes first; a watchdog ends the run.
 * BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") is passed to the service's node.
 */

const SECRET = 'bench-nas-secret';
const PASSWORD = 'bench-Pass-1';
const here = path.dirname(fileURLToPath(import.meta.url));

interface GenParams {
  readonly mode: 'auth' | 'acct';
  readonly authPort: number;
  readonly acctPort: number;
  readonly accounts: number;
  readonly seconds: number;
  readonly concurrency: number;
  readonly max: number;
  readonly rateFraction: number;
}

interface PhaseResult {
  readonly phase: string;
  readonly sent: number;
  readonly answered: number;
  readonly timeouts: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly codes: Record<string, number>;
  /** Load generator CPU seconds during the phase. */
  readonly generatorCpuSeconds: number;
  /** Service CPU seconds (user + system) spent during the phase, filled in by the orchestrator. */
  serverCpuSeconds?: number;
  /** The service's own receipt-to-reply latency in the phase, as histogram bucket bounds. */
  serverLatency?: string;
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ---------------------------------------------------------------- load generator (child process)

/**
 * One UDP socket of the load generator with its own identifier space. Lighter than RadiusClient: one
 * timer sweep instead of a timer per request, and the reply's authenticators verified on every 16th
 * request only (codes and identifiers on all), so the generator is not what limits the rate.
 */
class Lane {
  readonly #pending = new Map<number, { sent: number; packet: Buffer; resolve: (r: { code: number; ms: number }) => void }>();
  readonly #free: number[] = Array.from({ length: 256 }, (_, i) => i);
  readonly #waiting: (() => void)[] = [];
  #verified = 0;
  readonly #sweep: NodeJS.Timeout;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly dictionary: Dictionary,
  ) {
    socket.on('message', (msg) => this.#onReply(msg));
    this.#sweep = setInterval(() => {
      const now = performance.now();
      for (const [id, f] of this.#pending) {
        if (now - f.sent > 2_000) {
          this.#finish(id);
          f.resolve({ code: 0, ms: now - f.sent });
        }
      }
    }, 250);
  }

  static async open(dictionary: Dictionary): Promise<Lane> {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    return new Lane(socket, dictionary);
  }

  #finish(id: number): void {
    this.#pending.delete(id);
    this.#free.push(id);
    this.#waiting.shift()?.();
  }

  #onReply(msg: Buffer): void {
    if (msg.length < 20) return;
    const id = msg[1]!;
    const f = this.#pending.get(id);
    if (f === undefined) return;
    if (++this.#verified % 16 === 0) {
      try {
        verifyResponse(msg, f.packet, { dictionary: this.dictionary, secret: SECRET });
      } catch {
        return;
      }
    }
    this.#finish(id);
    f.resolve({ code: msg[0]!, ms: performance.now() - f.sent });
  }

  async send(code: 1 | 4, port: number, attributes: [string, string | number][]): Promise<{ code: number; ms: number }> {
    while (this.#free.length === 0) await new Promise<void>((r) => this.#waiting.push(r));
    const id = this.#free.shift()!;
    const packet = encodeRequest({ code, identifier: id, attributes, secret: SECRET, dictionary: this.dictionary });
    return new Promise((resolve) => {
      this.#pending.set(id, { sent: performance.now(), packet, resolve });
      this.socket.send(packet, port, '127.0.0.1');
    });
  }

  close(): Promise<void> {
    clearInterval(this.#sweep);
    return new Promise((r) => this.socket.close(() => r()));
  }
}

async function generate(p: GenParams): Promise<PhaseResult[]> {
  const dictionary = loadDictionary();
  const clients = await Promise.all(Array.from({ length: 8 }, () => Lane.open(dictionary)));
  let next = 0;
  const pick = () => clients[next++ % clients.length]!;
  const results: PhaseResult[] = [];
  const rand = (n: number) => Math.floor(Math.random() * n);

  const authAttrs = (i: number, wrong: boolean, office: boolean): [string, string | number][] => [
    ['User-Name', `b${i}`],
    ['User-Password', wrong ? 'not-the-password' : PASSWORD],
    ['NAS-IP-Address', '127.0.0.1'],
    ['NAS-Port-Id', office ? `office-${i % 48}` : `dorm-${i % 48}`],
    ['Calling-Station-Id', `02-00-00-${(i >> 8) & 0xff}-${i & 0xff}-01`],
  ];

  /** One request: returns the reply code (0 on timeout) and its latency. */
  const send = (code: 1 | 4, attributes: [string, string | number][]): Promise<{ code: number; ms: number }> =>
    pick().send(code, code === 1 ? p.authPort : p.acctPort, attributes);

  const randomAuth = () => {
    const i = 1 + rand(p.accounts);
    const wrong = Math.random() < 0.02;
    const office = Math.random() < 0.3;
    return send(PacketCode.AccessRequest, authAttrs(i, wrong, office));
  };

  let sessionSeq = 0;
  /** One accounting session: Start, Interim-Update, Stop in order; three requests. */
  const session = async (record: (r: { code: number; ms: number }) => void, stillGoing: () => boolean) => {
    const i = 1 + rand(p.accounts);
    const sid = `${process.pid}-${++sessionSeq}`;
    const base: [string, string | number][] = [
      ['User-Name', `b${i}`],
      ['Acct-Session-Id', sid],
      ['NAS-IP-Address', '127.0.0.1'],
      ['NAS-Port-Id', `dorm-${i % 48}`],
      ['Framed-IP-Address', `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`],
    ];
    const steps: [string, string | number][][] = [
      [['Acct-Status-Type', 'Start']],
      [['Acct-Status-Type', 'Interim-Update'], ['Acct-Session-Time', 600], ['Acct-Input-Octets', 123_456], ['Acct-Output-Octets', 654_321]],
      [['Acct-Status-Type', 'Stop'], ['Acct-Session-Time', 900], ['Acct-Input-Octets', 223_456], ['Acct-Output-Octets', 954_321], ['Acct-Terminate-Cause', 'User-Request']],
    ];
    for (const step of steps) {
      if (!stillGoing()) return;
      record(await send(PacketCode.AccountingRequest, [...base, ...step]));
    }
  };

  /** Runs `worker` from `concurrency` loops until time or count runs out. */
  const closedLoop = async (phase: string, concurrency: number, seconds: number, max: number, op: 'auth' | 'acct' | 'warm', warmList?: number[]) => {
    const lat = new Float64Array(max + 8);
    let n = 0;
    let sent = 0;
    let timeouts = 0;
    const codes: Record<string, number> = {};
    process.send?.({ phase });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    const going = () => performance.now() < deadline && sent < max;
    const record = (r: { code: number; ms: number }) => {
      if (r.code === 0) timeouts++;
      else if (n < lat.length) lat[n++] = r.ms;
      codes[r.code] = (codes[r.code] ?? 0) + 1;
    };
    let cursor = 0;
    const loop = async () => {
      while (going()) {
        if (op === 'warm') {
          if (cursor >= warmList!.length) return;
          const i = warmList![cursor++]!;
          sent++;
          record(await send(PacketCode.AccessRequest, authAttrs(i, false, false)));
        } else if (op === 'auth') {
          sent++;
          record(await randomAuth());
        } else {
          sent += 3;
          await session(record, going);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    const secs = (performance.now() - t0) / 1000;
    const sorted = lat.slice(0, n).sort();
    return { phase, sent, answered: n, timeouts, seconds: secs, rps: n / secs, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted[n - 1] ?? NaN, codes, generatorCpuSeconds: cpuSince(cpu0) };
  };

  /** Sends at a fixed rate whatever the replies do (open loop), up to `cap` outstanding. */
  const openLoop = async (phase: string, rate: number, seconds: number, max: number) => {
    const total = Math.min(max, Math.floor(rate * seconds));
    const lat = new Float64Array(total + 8);
    let n = 0;
    let sent = 0;
    let timeouts = 0;
    let outstanding = 0;
    const codes: Record<string, number> = {};
    process.send?.({ phase });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const tick = () => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
        while (sent < due && outstanding < 2_000) {
          sent++;
          outstanding++;
          void randomAuth().then((r) => {
            outstanding--;
            if (r.code === 0) timeouts++;
            else lat[n++] = r.ms;
            codes[r.code] = (codes[r.code] ?? 0) + 1;
            if (sent >= total && outstanding === 0) resolve();
          });
        }
        if (sent < total) setTimeout(tick, 1);
      };
      tick();
    });
    const secs = (performance.now() - t0) / 1000;
    const sorted = lat.slice(0, n).sort();
    return { phase, sent, answered: n, timeouts, seconds: secs, rps: n / secs, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted[n - 1] ?? NaN, codes, generatorCpuSeconds: cpuSince(cpu0) };
  };

  if (p.mode === 'auth') {
    const all = Array.from({ length: p.accounts }, (_, k) => k + 1);
    results.push(await closedLoop('warm-up (one login per account)', 64, 300, p.accounts, 'warm', all));
    await new Promise((r) => setTimeout(r, 1_000));
    const max = await closedLoop(`max (closed loop, ${p.concurrency} in flight)`, p.concurrency, p.seconds, p.max, 'auth');
    results.push(max);
    const rate = Math.floor(max.rps * p.rateFraction);
    results.push(await openLoop(`paced at ${Math.round(p.rateFraction * 100)}% (${rate}/s, open loop)`, rate, p.seconds, p.max));
  } else {
    results.push(await closedLoop('warm-up', 16, 3, 3_000, 'acct'));
    results.push(await closedLoop(`max (closed loop, ${p.concurrency} sessions in flight)`, p.concurrency, p.seconds, p.max, 'acct'));
  }
  await Promise.all(clients.map((c) => c.close()));
  return results;
}

// ---------------------------------------------------------------- orchestrator

/** Cumulative counts of radius_request_duration_seconds buckets for `code`, by upper bound (s). */
async function latencyBuckets(apiUrl: string, code: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const out = new Map<number, number>();
  const re = new RegExp(`^radius_request_duration_seconds_bucket\\{le="([^"]+)",code="${code}"\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return out;
}

/** p50/p99 between two bucket snapshots, as "<= bound" (a histogram knows no more). */
function quantilesOf(before: Map<number, number>, after: Map<number, number>): string {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (total <= 0) return 'n/a';
  const q = (p: number) => {
    const bound = bounds.find((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0) >= p * total) ?? Infinity;
    return bound === Infinity ? '> 1 s' : `<= ${bound * 1000} ms`;
  };
  return `p50 ${q(0.5)}, p99 ${q(0.99)}`;
}

/** A few of the service's own Prometheus figures: how logins were decided, drops, event-loop lag, GC. */
async function serviceMetrics(apiUrl: string): Promise<string> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const pick = (re: RegExp) => [...text.matchAll(re)].map((m) => `${m[1]}=${Number(m[2]).toFixed(m[2]!.includes('.') ? 3 : 0)}`);
  return [
    ...pick(/^radius_auth_decisions_total\{path="(\w+)"\} (\S+)$/gm).map((x) => `decided_${x}`),
    ...pick(/^radius_dropped_total\{reason="(\w+)"\} (\S+)$/gm).map((x) => `dropped_${x}`),
    ...pick(/^radius_password_verifications_total\{result="(\w+)"\} (\S+)$/gm).map((x) => `argon2_${x}`),
    ...pick(/^radius_acct_batch_size_(sum|count) (\S+)$/gm).map((x) => `acct_batch_${x}`),
    ...pick(/^radius_acct_commit_seconds_(sum|count) (\S+)$/gm).map((x) => `acct_commit_seconds_${x}`),
    ...pick(/^nodejs_eventloop_lag_(p99|max)_seconds (\S+)$/gm).map((x) => `eventloop_lag_${x}s`),
    ...pick(/^nodejs_gc_duration_seconds_sum\{kind="(\w+)"\} (\S+)$/gm).map((x) => `gc_${x}s`),
  ]
    .filter(Boolean)
    .join(' ');
}

function rssOf(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

function cpuSecondsOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function orchestrate(mode: 'auth' | 'acct', values: Record<string, string>): Promise<boolean> {
  const accounts = Number(values.accounts);
  const target = await benchDatabase(`bench_radius_${mode}`);
  const { db } = createDb({ url: target.url, poolMax: 4 });
  let server: ChildProcess | null = null;
  let gen: ChildProcess | null = null;
  const watchdog = setTimeout(() => {
    process.stderr.write('bench watchdog: giving up\n');
    server?.kill('SIGKILL');
    gen?.kill('SIGKILL');
    process.exit(1);
  }, 600_000);
  try {
    await migrateToLatest(db);
    // The KDF cost is the argon2 one password.ts uses, except memory: 10k cold verifications at the production cost
    // would take minutes on two cores; the measured phases are served from the credential cache anyway.
    const passwordHash = await hash(PASSWORD, { algorithm: 2, memoryCost: 1024, timeCost: 2, parallelism: 1 });
    const t0 = performance.now();
    // Every tenth account is in arrears (balance 0); the others hold 100.00 yuan.
    await sql`INSERT INTO accounts (username, kind, password_hash, balance_fen)
              SELECT 'b' || g, 'student', ${passwordHash}, CASE WHEN g % 10 = 0 THEN 0 ELSE 10000 END
              FROM generate_series(1, ${accounts}::int) g`.execute(db);
    await sql`INSERT INTO ledger_entries (account_id, kind, amount_fen, balance_after_fen, channel, order_id, effective_at)
              SELECT id, 'top-up', balance_fen, balance_fen, 'bench', username, now() FROM accounts WHERE balance_fen > 0`.execute(db);
    await insertNasClient(db, {
      name: 'bench-bras',
      address: '127.0.0.1',
      secret: SECRET,
      area: 'dorm',
      areaRules: [{ attribute: 'NAS-Port-Id', pattern: '^office', area: 'office' }],
    });
    await sql`ANALYZE`.execute(db);
    const setupS = (performance.now() - t0) / 1000;

    // The service as `npm start` runs it: compiled JavaScript, no TypeScript loader in the process.
    execFileSync('npx', ['tsc', '-p', path.join(here, '..', 'tsconfig.build.json')], { stdio: 'inherit' });
    // With the start script's node flags and environment (bench/start-command.ts).
    const start = startCommand();
    server = spawn(process.execPath, [...start.nodeArgs, path.join(here, '..', 'dist', 'main.js')], {
      env: {
        ...process.env,
        ...start.env,
        DATABASE_URL: target.url,
        RADIUS_HOST: '::',
        RADIUS_AUTH_PORT: '0',
        RADIUS_ACCT_PORT: '0',
        API_PORT: '0',
        LOG_LEVEL: 'info',
        // The cheap hashes stand in for production ones, which the service would not re-hash.
        PASSWORD_REHASH: 'off',
        SETTLE_CRON: '0 0 1 1 *',
        TARIFF_CYCLE_DAYS: '30',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let apiUrl: string | null = null;
    const ports = await new Promise<{ authPort: number; acctPort: number }>((resolve, reject) => {
      let buf = '';
      server!.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        for (;;) {
          const nl = buf.indexOf('\n');
          if (nl < 0) break;
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.includes('admin api listening')) apiUrl = (JSON.parse(line) as { url: string }).url;
          if (line.includes('radius server listening')) {
            const o = JSON.parse(line) as { authPort: number; acctPort: number };
            resolve({ authPort: o.authPort, acctPort: o.acctPort });
          }
          if (line.includes('"level":50') || line.includes('"level":60')) process.stderr.write(`${line}\n`);
        }
      });
      server!.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    const serverPid = server.pid!;
    const cpu0 = cpuSecondsOf(serverPid);
    const params: GenParams = {
      mode,
      ...ports,
      accounts,
      seconds: Number(values.seconds),
      concurrency: Number(values.concurrency ?? (mode === 'auth' ? 128 : 512)),
      max: Number(values.max),
      rateFraction: Number(values['rate-fraction']),
    };
    let peakRss = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, rssOf(serverPid).rss);
    }, 250);
    gen = fork(fileURLToPath(import.meta.url), ['--generator', JSON.stringify(params)], { stdio: 'inherit' });
    const cpuAt: number[] = [];
    const histAt: Promise<Map<number, number> | null>[] = [];
    const histogramOf = (code: string) => (apiUrl ? latencyBuckets(apiUrl, code).catch(() => null) : Promise.resolve(null));
    const code = mode === 'auth' ? 'access' : 'accounting';
    const results = await new Promise<PhaseResult[]>((resolve, reject) => {
      gen!.on('message', (m) => {
        cpuAt.push(cpuSecondsOf(serverPid));
        histAt.push(histogramOf(code));
        if (Array.isArray(m)) resolve(m as PhaseResult[]);
      });
      gen!.once('exit', (code) => code !== 0 && reject(new Error(`generator exited with ${code}`)));
    });
    clearInterval(sampler);
    const cpu = cpuSecondsOf(serverPid) - cpu0;
    // cpuAt holds the CPU reading at each phase start, then one at the end (phase gaps are idle).
    const hists = await Promise.all(histAt);
    results.forEach((r, k) => {
      if (cpuAt[k + 1] !== undefined) r.serverCpuSeconds = cpuAt[k + 1]! - cpuAt[k]!;
      const before = hists[k];
      const after = hists[k + 1];
      if (before && after) r.serverLatency = quantilesOf(before, after);
    });
    const mem = rssOf(serverPid);
    const lines = [
      `bench:${mode} — ${accounts} accounts (set up in ${setupS.toFixed(1)} s), service pid ${serverPid}, loopback, ${process.platform} ${process.arch}, node ${process.version}`,
    ];
    for (const r of results) {
      lines.push(
        `  ${r.phase}: ${r.answered}/${r.sent} answered in ${r.seconds.toFixed(1)} s = ${Math.round(r.rps)} req/s; ` +
          `latency ms p50 ${r.p50.toFixed(2)} p95 ${r.p95.toFixed(2)} p99 ${r.p99.toFixed(2)} max ${r.max.toFixed(1)}; timeouts ${r.timeouts}; codes ${JSON.stringify(r.codes)}` +
          (r.serverCpuSeconds !== undefined
            ? `; service CPU ${((100 * r.serverCpuSeconds) / r.seconds).toFixed(0)}% = ${Math.round((1e6 * r.serverCpuSeconds) / Math.max(1, r.answered))} us/request`
            : '') +
          `; generator CPU ${((100 * r.generatorCpuSeconds) / r.seconds).toFixed(0)}%` +
          (r.serverLatency ? `; inside the service ${r.serverLatency}` : ''),
      );
    }
    lines.push(`  server RSS ${mem.rss.toFixed(0)} MiB (peak sampled ${peakRss.toFixed(0)} MiB, VmHWM ${mem.hwm.toFixed(0)} MiB); server CPU ${cpu.toFixed(1)} s over the run`);
    if (apiUrl) lines.push(`  service metrics: ${await serviceMetrics(apiUrl)}`);
    if (mode === 'acct') {
      const stored = await sql<{ n: number }>`SELECT count(*)::int AS n FROM acct_sessions`.execute(db);
      lines.push(`  acct_sessions rows: ${stored.rows[0]!.n}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return results.every((r) => r.answered > 0);
  } finally {
    clearTimeout(watchdog);
    if (gen && gen.exitCode === null) gen.kill('SIGKILL');
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (server.exitCode === null) server.kill('SIGKILL');
    }
    await db.destroy();
    await target.close();
  }
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    generator: { type: 'string' },
    accounts: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string' },
    max: { type: 'string', default: '400000' },
    'rate-fraction': { type: 'string', default: '0.8' },
  },
});

if (values.generator) {
  const watchdog = setTimeout(() => process.exit(3), 400_000);
  const results = await generate(JSON.parse(values.generator) as GenParams);
  clearTimeout(watchdog);
  process.send!(results, () => process.exit(0));
} else {
  const mode = positionals[0];
  if (mode !== 'auth' && mode !== 'acct') {
    process.stderr.write('usage: tsx bench/radius-load.ts auth|acct [--accounts N] [--seconds S] [--concurrency C] [--max N]\n');
    process.exit(2);
  }
  const ok = await orchestrate(mode, values as Record<string, string>);
  process.exit(ok ? 0 : 1);
}
