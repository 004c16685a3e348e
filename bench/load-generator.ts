import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { RadiusClient, RadiusTimeoutError } from '../src/radius/client.ts';
import { loadDictionary } from '../src/radius/dictionary.ts';
import { PacketCode, type RadiusPacket } from '../src/radius/packet.ts';

/**
 * The one load generator bench/compare.ts drives both RADIUS servers with, in a process of its own:
 * `tsx bench/load-generator.ts --plan '<json>'` (forked: the result goes back over IPC; run by hand it
 * prints JSON). Loopback only; every phase stops at its time or request bound, and a watchdog ends the
 * process past them.
 *
 * The workload is a pure function of the plan's seed, so both systems get the same request sequence, and
 * every reply is checked against the decision the shared account population implies.
 */

/** The accounts both systems hold: u1..uN; every tenth is in arrears (10.00 yuan), the rest hold 100.00. */
export const BENCH_PASSWORD = 'bench-Pass-1';
export const BENCH_SECRET = 'bench-nas-secret';
export const FUNDED_BALANCE_FEN = 10_000;
export const ARREARS_BALANCE_FEN = 1_000;
export const THRESHOLD_FEN = 2_000;
export const CYCLE_SECONDS = 30 * 86_400;

export const usernameOf = (i: number): string => `u${i}`;
export const isFunded = (i: number): boolean => i % 10 !== 0;
export const balanceOf = (i: number): number => (isFunded(i) ? FUNDED_BALANCE_FEN : ARREARS_BALANCE_FEN);

const WRONG_PASSWORD_MESSAGE = '用户名或密码错误 / Wrong username or password';
const ARREARS_MESSAGE = '账户欠费：余额 10.00 元，需 20.00 元 / Account in arrears: balance 10.00 yuan, 20.00 needed';

export type Phase =
  /** One dorm login per account, in order: fills credential caches and opens the funded accounts' cycles. */
  | { readonly kind: 'warm'; readonly concurrency: number; readonly seconds: number }
  /** Closed loop: `concurrency` requests outstanding at all times (maximum throughput). */
  | { readonly kind: 'auth'; readonly concurrency: number; readonly seconds: number; readonly max: number }
  /**
   * Open loop: requests sent at `rate` per second whatever the replies do (latency under a given load). The
   * first `warmup` seconds (default 0) run at the same rate, answered and checked but not measured.
   */
  | { readonly kind: 'paced'; readonly rate: number; readonly seconds: number; readonly max: number; readonly warmup?: number }
  /** Closed loop of accounting sessions (Start, Interim-Update, Stop), `concurrency` sessions in flight. */
  | { readonly kind: 'acct'; readonly concurrency: number; readonly seconds: number; readonly max: number };

export interface Plan {
  readonly host: '127.0.0.1';
  readonly authPort: number;
  readonly acctPort: number;
  readonly accounts: number;
  readonly seed: number;
  /** Prefix of this run's Acct-Session-Ids, so the orchestrator can find exactly its rows. */
  readonly sessionTag: string;
  readonly phase: Phase;
}

export interface PhaseResult {
  readonly sent: number;
  readonly answered: number;
  readonly timeouts: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly codes: Readonly<Record<string, number>>;
  /** Replies that do not match the expected decision; a few described in `samples`. */
  readonly mismatches: number;
  readonly samples: readonly string[];
  /** Accounts that got a dorm Access-Accept (a running cycle must exist for each). */
  readonly dormAccepted: readonly number[];
  /** Funded accounts whose dorm login went unanswered (a cycle may or may not have opened). */
  readonly dormUnanswered: readonly number[];
  /** Acct-Status-Type = Stop requests acknowledged: each must be a stopped radacct / acct_sessions row. */
  readonly stopsAcked: number;
  readonly stopsSent: number;
  readonly sessionsStarted: number;
  readonly generatorCpuSeconds: number;
  /** p99 of the generator's own event-loop delay (ms): a busy generator inflates every latency it measures. */
  readonly generatorLoopDelayP99Ms: number;
}

/** mulberry32: a small seeded PRNG, so both systems see the same sequence of requests. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface AuthCase {
  readonly i: number;
  readonly wrongPassword: boolean;
  readonly office: boolean;
}

/** What the rules say the answer to `c` is; a description of the difference, or null when `reply` matches. */
export function checkAuthReply(c: AuthCase, reply: RadiusPacket): string | null {
  const message = reply.get('Reply-Message');
  const timeout = reply.get('Session-Timeout');
  const got = `code ${reply.code}, Session-Timeout ${timeout ?? '-'}, Reply-Message ${JSON.stringify(message)}`;
  const want = (what: string) => `u${c.i} ${c.wrongPassword ? 'wrong password' : c.office ? 'office' : 'dorm'}: want ${what}, got ${got}`;
  if (c.wrongPassword) {
    return reply.code === PacketCode.AccessReject && message === WRONG_PASSWORD_MESSAGE ? null : want('reject (wrong password)');
  }
  if (c.office) {
    return reply.code === PacketCode.AccessAccept && timeout === undefined ? null : want('accept without Session-Timeout');
  }
  if (isFunded(c.i)) {
    return reply.code === PacketCode.AccessAccept && timeout !== undefined && timeout >= 1 && timeout <= CYCLE_SECONDS
      ? null
      : want('accept with Session-Timeout');
  }
  return reply.code === PacketCode.AccessReject && message === ARREARS_MESSAGE ? null : want('reject (arrears)');
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

type Attrs = [string, string | number][];

const SOCKETS = 16;
/** Requests in flight at most: 125 per socket on average, well inside each socket's 256 identifiers. */
export const OUTSTANDING_CAP = 2_000;

/** Runs one phase of `plan` and returns its measurements. */
export async function runPhase(plan: Plan): Promise<PhaseResult> {
  const dictionary = loadDictionary();
  // Requests go round-robin over the sockets; each socket has 256 RADIUS identifiers per server, and no
  // phase keeps more than OUTSTANDING_CAP in flight, so no request ever waits for an identifier.
  const clients = await Promise.all(Array.from({ length: SOCKETS }, () => RadiusClient.open(dictionary, { bindAddress: plan.host })));
  let nextClient = 0;
  const random = prng(plan.seed);
  const phase = plan.phase;

  const capacity = phase.kind === 'warm' ? plan.accounts : phase.kind === 'acct' ? phase.max + 3 : phase.max;
  const latencies = new Float64Array(capacity + 8);
  let answered = 0;
  let sent = 0;
  let timeouts = 0;
  let mismatches = 0;
  const samples: string[] = [];
  const codes: Record<string, number> = {};
  const dormAccepted = new Set<number>();
  const dormUnanswered = new Set<number>();
  let stopsAcked = 0;
  let stopsSent = 0;
  let sessionsStarted = 0;

  // Paced with a warm-up: requests sent before the measured part are checked but not counted.
  let measuring = phase.kind !== 'paced' || !((phase.warmup ?? 0) > 0);

  const mismatch = (text: string) => {
    mismatches++;
    if (samples.length < 5) samples.push(text);
  };

  /** Sends one request (no retransmission: a lost packet is a timeout) and records its latency. */
  const send = async (code: 1 | 4, attributes: Attrs): Promise<RadiusPacket | null> => {
    const measured = measuring;
    if (measured) sent++;
    const client = clients[nextClient++ % clients.length]!;
    const t0 = performance.now();
    try {
      const r = await client.request({
        host: plan.host,
        port: code === PacketCode.AccessRequest ? plan.authPort : plan.acctPort,
        code,
        attributes,
        secret: BENCH_SECRET,
        timeoutsMs: [2_000],
      });
      if (measured) {
        if (answered < latencies.length) latencies[answered] = performance.now() - t0;
        answered++;
        codes[r.reply.code] = (codes[r.reply.code] ?? 0) + 1;
      }
      return r.reply;
    } catch (e) {
      if (!(e instanceof RadiusTimeoutError)) throw e;
      if (measured) {
        timeouts++;
        codes['timeout'] = (codes['timeout'] ?? 0) + 1;
      }
      return null;
    }
  };

  const authenticate = async (c: AuthCase): Promise<void> => {
    const reply = await send(PacketCode.AccessRequest, [
      ['User-Name', usernameOf(c.i)],
      ['User-Password', c.wrongPassword ? 'not-the-password' : BENCH_PASSWORD],
      ['NAS-IP-Address', plan.host],
      ['NAS-Port-Id', `${c.office ? 'office' : 'dorm'}-${c.i % 48}`],
      ['Calling-Station-Id', `02-00-00-${((c.i >> 8) & 0xff).toString(16)}-${(c.i & 0xff).toString(16)}-01`],
    ]);
    const dorm = !c.wrongPassword && !c.office;
    if (reply === null) {
      if (dorm && isFunded(c.i)) dormUnanswered.add(c.i);
      return;
    }
    const problem = checkAuthReply(c, reply);
    if (problem !== null) mismatch(problem);
    if (dorm && reply.code === PacketCode.AccessAccept) dormAccepted.add(c.i);
  };

  const randomCase = (): AuthCase => {
    const i = 1 + Math.floor(random() * plan.accounts);
    const r = random();
    return { i, wrongPassword: r < 0.02, office: r >= 0.02 && r < 0.32 };
  };

  let sessionSeq = 0;
  /** One session: Start, Interim-Update, Stop, each sent when the previous one was acknowledged. */
  const session = async (going: () => boolean): Promise<void> => {
    const i = 1 + Math.floor(random() * plan.accounts);
    const base: Attrs = [
      ['User-Name', usernameOf(i)],
      ['Acct-Session-Id', `${plan.sessionTag}-${++sessionSeq}`],
      ['NAS-IP-Address', plan.host],
      ['NAS-Port-Id', `dorm-${i % 48}`],
      ['Framed-IP-Address', `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`],
      ['Calling-Station-Id', `02-00-00-${((i >> 8) & 0xff).toString(16)}-${(i & 0xff).toString(16)}-01`],
    ];
    const steps: Attrs[] = [
      [['Acct-Status-Type', 'Start']],
      [['Acct-Status-Type', 'Interim-Update'], ['Acct-Session-Time', 600], ['Acct-Input-Octets', 123_456], ['Acct-Output-Octets', 654_321]],
      [['Acct-Status-Type', 'Stop'], ['Acct-Session-Time', 900], ['Acct-Input-Octets', 223_456], ['Acct-Output-Octets', 954_321], ['Acct-Terminate-Cause', 'User-Request']],
    ];
    for (let k = 0; k < steps.length; k++) {
      if (!going()) return;
      if (k === 0) sessionsStarted++;
      if (k === 2) stopsSent++;
      const reply = await send(PacketCode.AccountingRequest, [...base, ...steps[k]!]);
      if (reply === null) return;
      if (reply.code !== PacketCode.AccountingResponse) {
        mismatch(`session ${base[1]![1]} step ${k}: want Accounting-Response, got code ${reply.code}`);
        return;
      }
      if (k === 2) stopsAcked++;
    }
  };

  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  // Tells a forking orchestrator that the measured part starts now (it samples the server's CPU then).
  const start = () => {
    measuring = true;
    process.send?.({ started: true });
    loopDelay.enable();
    cpu0 = process.cpuUsage();
    t0 = performance.now();
  };
  if (measuring) start();
  if (phase.kind === 'paced') {
    const warmupMs = (phase.warmup ?? 0) * 1000;
    const total = Math.min(phase.max, Math.floor(phase.rate * (phase.seconds + warmupMs / 1000)));
    const tw = performance.now();
    let outstanding = 0;
    let issued = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        if (!measuring && performance.now() - tw >= warmupMs) start();
        const due = Math.min(total, Math.floor(((performance.now() - tw) / 1000) * phase.rate));
        while (issued < due && outstanding < OUTSTANDING_CAP) {
          issued++;
          outstanding++;
          void authenticate(randomCase()).then(() => {
            outstanding--;
            if (issued >= total && outstanding === 0) resolve();
          });
        }
        if (issued < total) setTimeout(tick, 1);
        else if (outstanding === 0) resolve();
      };
      tick();
    });
  } else {
    const deadline = t0 + phase.seconds * 1000;
    const max = phase.kind === 'warm' ? plan.accounts : phase.max;
    const going = () => performance.now() < deadline && sent < max;
    let cursor = 0;
    const loop = async () => {
      while (going()) {
        if (phase.kind === 'warm') {
          if (cursor >= plan.accounts) return;
          const i = ++cursor;
          await authenticate({ i, wrongPassword: false, office: false });
        } else if (phase.kind === 'auth') {
          await authenticate(randomCase());
        } else {
          await session(going);
        }
      }
    };
    await Promise.all(Array.from({ length: phase.concurrency }, loop));
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  loopDelay.disable();
  await Promise.all(clients.map((c) => c.close()));
  const sorted = latencies.slice(0, Math.min(answered, latencies.length)).sort();
  for (const i of dormAccepted) dormUnanswered.delete(i);
  return {
    sent,
    answered,
    timeouts,
    seconds,
    rps: answered / seconds,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    codes,
    mismatches,
    samples,
    dormAccepted: [...dormAccepted],
    dormUnanswered: [...dormUnanswered],
    stopsAcked,
    stopsSent,
    sessionsStarted,
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
    generatorLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
  };
}

/** How long a phase may take at most, past which the generator's watchdog ends the process. */
export function phaseBoundSeconds(phase: Phase): number {
  return phase.seconds + (phase.kind === 'paced' ? (phase.warmup ?? 0) : 0) + 30;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { plan: { type: 'string' } } });
  if (!values.plan) {
    process.stderr.write("usage: tsx bench/load-generator.ts --plan '<json Plan>'\n");
    process.exit(2);
  }
  const plan = JSON.parse(values.plan) as Plan;
  if (plan.host !== '127.0.0.1') {
    process.stderr.write('the load generator only talks to 127.0.0.1\n');
    process.exit(2);
  }
  const watchdog = setTimeout(() => {
    process.stderr.write('load generator: watchdog fired, giving up\n');
    process.exit(3);
  }, phaseBoundSeconds(plan.phase) * 1000);
  const result = await runPhase(plan);
  clearTimeout(watchdog);
  if (process.send) process.send(result, () => process.exit(0));
  else process.stdout.write(`${JSON.stringify(result)}\n`);
}
