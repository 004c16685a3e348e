import { z } from 'zod';
import { CRON_SYNTAX, cronProblem } from './billing/cron.ts';

const port = z.coerce.number().int().min(0).max(65535);
const fen = z.coerce
  .number()
  .int('must be a whole number of fen')
  .refine(Number.isSafeInteger, 'must be a safe integer');

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * SIMULATED_CLOCK: `off` (default), `on` (starts at the real time), or an ISO-8601 instant to start from.
 */
const simulatedClock = z
  .string()
  .trim()
  .transform((v, ctx) => {
    const lower = v.toLowerCase();
    if (lower === '' || lower === 'off' || lower === 'false' || lower === '0') return null;
    if (lower === 'on' || lower === 'true' || lower === '1') return { startAt: null };
    const at = new Date(v);
    if (Number.isNaN(at.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'must be off, on, or an ISO-8601 instant' });
      return z.NEVER;
    }
    return { startAt: at };
  });

/** SETTLE_CRON: what src/billing/cron.ts accepts; the message says what that is and what is wrong. */
const cronExpression = z
  .string()
  .trim()
  .superRefine((v, ctx) => {
    const problem = cronProblem(v);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: `${problem}; expected ${CRON_SYNTAX}` });
  });

/** The 32 bytes of a CREDENTIAL_KEY given as 64 hex digits or base64, or null when it is neither. */
export function credentialKeyBytes(text: string): Buffer | null {
  const bytes = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(text) ? Buffer.from(text, 'base64') : null;
  return bytes && bytes.length === 32 ? bytes : null;
}

const envSchema = z.object({
  DATABASE_URL: z
    .string()
    .trim()
    .optional()
    .transform((v) => (v ? v : null))
    .refine((v) => v === null || /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// URL'),
  DATA_DIR: z.string().trim().min(1).default('./var'),
  EMBEDDED_PG_PORT: port.default(54329),
  DB_POOL_MAX: z.coerce.number().int().min(2).max(200).default(10),
  RADIUS_HOST: z.string().trim().min(1).default('::'),
  RADIUS_AUTH_PORT: port.default(1812),
  RADIUS_ACCT_PORT: port.default(1813),
  NAS_CLIENTS_FILE: z
    .string()
    .trim()
    .optional()
    .transform((v) => (v ? v : null)),
  ACCT_STALE_INTERVALS: z.coerce.number().int().min(1).max(100).default(3),
  ACCT_DEFAULT_INTERIM_SECONDS: z.coerce.number().int().min(60).max(86_400).default(600),
  PASSWORD_VERIFY_CONCURRENCY: z.coerce.number().int().min(1).max(64).optional(),
  PASSWORD_REHASH: z
    .enum(['on', 'off', 'true', 'false', '1', '0'], { message: 'must be on or off' })
    .default('on')
    .transform((v) => v === 'on' || v === 'true' || v === '1'),
  RADIUS_SOCKET_THREAD: z
    .enum(['on', 'off', 'true', 'false', '1', '0'], { message: 'must be on or off' })
    .default('on')
    .transform((v) => v === 'on' || v === 'true' || v === '1'),
  CREDENTIAL_KEY: z
    .string()
    .trim()
    .optional()
    .transform((v) => (v ? v : null))
    .refine((v) => v === null || credentialKeyBytes(v) !== null, 'must be 32 bytes as 64 hex digits or base64'),
  API_HOST: z.string().trim().min(1).default('127.0.0.1'),
  API_PORT: port.default(8080),
  ADMIN_TOKEN: z
    .string()
    .trim()
    .optional()
    .transform((v) => (v ? v : null))
    .refine((v) => v === null || v.length >= 16, 'must be at least 16 characters'),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  TARIFF_FEE_FEN: fen.refine((v) => v > 0, 'must be > 0').default(2000),
  TARIFF_CYCLE_DAYS: z.coerce.number().int().min(1).max(366).default(30),
  TARIFF_THRESHOLD_FEN: fen.refine((v) => v >= 0, 'must be >= 0').default(2000),
  RENEWAL: z.enum(['continuous', 'on-login']).default('continuous'),
  SETTLE_CRON: cronExpression.default('* * * * *'),
  SETTLE_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(5000),
  SETTLE_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(2),
  SIMULATED_CLOCK: simulatedClock.default(null),
});

export type Renewal = 'continuous' | 'on-login';

export interface Config {
  readonly databaseUrl: string | null;
  readonly dataDir: string;
  readonly embeddedPgPort: number;
  readonly dbPoolMax: number;
  readonly radius: {
    readonly host: string;
    readonly authPort: number;
    readonly acctPort: number;
    readonly nasClientsFile: string | null;
    readonly staleIntervals: number;
    readonly defaultInterimSeconds: number;
    /** CREDENTIAL_KEY: seals reversible credentials so CHAP can be offered; null = PAP only. */
    readonly credentialKey: string | null;
    /** PASSWORD_VERIFY_CONCURRENCY: argon2 verifications at once; null = one fewer than the CPUs, at least 1. */
    readonly passwordVerifyConcurrency?: number | null;
    /** PASSWORD_REHASH: upgrade hashes of another argon2 cost after a login; default on. */
    readonly passwordRehash?: boolean;
    /**
     * RADIUS_SOCKET_THREAD: read and write the RADIUS sockets on a thread of their own (radius/udp-thread.ts);
     * default on. About half the tail latency near peak load, for ~7 MiB more RSS; off serves them from the
     * event loop.
     */
    readonly socketThread?: boolean;
  };
  readonly api: { readonly host: string; readonly port: number; readonly adminToken: string | null };
  readonly logLevel: (typeof logLevels)[number];
  readonly tariff: {
    readonly feeFen: number;
    readonly cycleSeconds: number;
    readonly thresholdFen: number;
    readonly renewal: Renewal;
  };
  readonly settle: { readonly cron: string; readonly batchSize: number; readonly concurrency: number };
  /** Null when the real clock is used. */
  readonly simulatedClock: { readonly startAt: Date | null } | null;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !(o instanceof Date)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Reads the configuration from environment variables; every bad key is reported at once.
 * Empty strings count as unset so that `FOO= npm start` falls back to the default.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v.trim() !== '') input[key] = v;
  }
  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  const e = parsed.data;
  return deepFreeze({
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    embeddedPgPort: e.EMBEDDED_PG_PORT,
    dbPoolMax: e.DB_POOL_MAX,
    radius: {
      host: e.RADIUS_HOST,
      authPort: e.RADIUS_AUTH_PORT,
      acctPort: e.RADIUS_ACCT_PORT,
      nasClientsFile: e.NAS_CLIENTS_FILE,
      staleIntervals: e.ACCT_STALE_INTERVALS,
      defaultInterimSeconds: e.ACCT_DEFAULT_INTERIM_SECONDS,
      credentialKey: e.CREDENTIAL_KEY,
      passwordVerifyConcurrency: e.PASSWORD_VERIFY_CONCURRENCY ?? null,
      passwordRehash: e.PASSWORD_REHASH,
      socketThread: e.RADIUS_SOCKET_THREAD,
    },
    api: { host: e.API_HOST, port: e.API_PORT, adminToken: e.ADMIN_TOKEN },
    logLevel: e.LOG_LEVEL,
    tariff: {
      feeFen: e.TARIFF_FEE_FEN,
      cycleSeconds: e.TARIFF_CYCLE_DAYS * 86_400,
      thresholdFen: e.TARIFF_THRESHOLD_FEN,
      renewal: e.RENEWAL,
    },
    settle: { cron: e.SETTLE_CRON, batchSize: e.SETTLE_BATCH_SIZE, concurrency: e.SETTLE_CONCURRENCY },
    simulatedClock: e.SIMULATED_CLOCK,
  });
}
