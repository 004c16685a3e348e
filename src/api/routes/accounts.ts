import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Transaction } from 'kysely';
import { z } from 'zod';
import { formatYuan } from '../../billing/billing.ts';
import { insertAccount, listAccounts, lockAccount, setPasswordHash, setStatus } from '../../billing/account-store.ts';
import { argon2Cost, hashPassword } from '../../billing/password.ts';
import type { AccountStatus, Database } from '../../db/schema.ts';
import type { DisconnectOutcome } from '../../radius/disconnect.ts';
import type { ApiDeps } from '../app.ts';
import { recordAudit } from '../audit-store.ts';
import { actorOf } from '../auth.ts';
import { ApiProblem } from '../problem.ts';
import {
  AccountDto,
  AccountKind,
  Cursor,
  CycleDto,
  decodeCursor,
  DisconnectOutcomeDto,
  encodeCursor,
  Fen,
  formatBeijing,
  Instant,
  Limit,
  SessionDto,
  toAccountDto,
  toCycleDto,
  toSessionDto,
  Username,
  UsernameParams,
  Yuan,
} from '../schemas.ts';
import { onlineSessionsOfAccount } from '../session-store.ts';

/** An argon2id hash in PHC form, as @node-rs/argon2, libsodium or the argon2 CLI write it. */
export const ARGON2ID_PHC = /^\$argon2id\$v=19\$m=\d{1,7},t=\d{1,3},p=\d{1,3}\$[A-Za-z0-9+/]{11,64}\$[A-Za-z0-9+/]{16,128}$/;

export const Password = z.string().min(6, 'must be at least 6 characters').max(128, 'must be at most 128 characters').describe('Plaintext; hashed with argon2id, never stored or logged');
/**
 * The largest argon2 cost a stored hash may carry: libsodium's "sensitive" profile (1 GiB, t=4) and every
 * common default (PHP, argon2-cffi, libsodium interactive: 64 MiB) fit. Each cold verification holds m KiB
 * and takes m x t of work, so a larger one could exhaust the server's memory at a login.
 */
const MAX_HASH_MEMORY_KIB = 1_048_576;
const MAX_HASH_TIME = 16;
const MAX_HASH_PARALLELISM = 16;

export const PasswordHash = z
  .string()
  .regex(ARGON2ID_PHC, 'must be an argon2id hash in PHC form ($argon2id$v=19$m=...,t=...,p=...$salt$hash)')
  .refine(
    (h) => {
      // Not a PHC string the pattern above accepts: it has said so already.
      const c = ARGON2ID_PHC.test(h) ? argon2Cost(h) : null;
      if (c === null) return true;
      return c.memoryKib >= 8 && c.memoryKib <= MAX_HASH_MEMORY_KIB && c.time >= 1 && c.time <= MAX_HASH_TIME && c.parallelism >= 1 && c.parallelism <= MAX_HASH_PARALLELISM;
    },
    `argon2 cost out of range: m must be 8-${MAX_HASH_MEMORY_KIB} KiB, t 1-${MAX_HASH_TIME}, p 1-${MAX_HASH_PARALLELISM} / 哈希参数超出范围：m 为 8-${MAX_HASH_MEMORY_KIB} KiB，t 为 1-${MAX_HASH_TIME}，p 为 1-${MAX_HASH_PARALLELISM}`,
  )
  .describe('A pre-computed argon2id PHC string, e.g. migrated from another system (m <= 1 GiB, t <= 16, p <= 16); upgraded to the service\'s own cost at the first PAP login');
const DisplayName = z.string().trim().min(1).max(200).describe('The holder’s name, e.g. 张三');

const Credential = z.union([z.strictObject({ password: Password }), z.strictObject({ passwordHash: PasswordHash })]);

const CreateAccount = z
  .strictObject({
    username: Username,
    kind: AccountKind,
    name: DisplayName.nullable().optional(),
    password: Password.optional(),
    passwordHash: PasswordHash.optional(),
  })
  .refine((b) => (b.password === undefined) !== (b.passwordHash === undefined), {
    message: 'give exactly one of password and passwordHash',
    path: ['password'],
  });

const DormStatus = z
  .enum(['open', 'ready', 'arrears', 'disabled'])
  .describe('open: a cycle runs; ready: balance reaches the threshold, a cycle opens at the next dorm login; arrears: balance below the threshold (欠费); disabled: the account is disabled');

const AccountDetail = z.object({
  account: AccountDto,
  dorm: z.object({
    status: DormStatus,
    message: z.string().describe('What a student would be told, Chinese and English'),
    runningCycle: CycleDto.nullable(),
    runningUntil: Instant.nullable().describe('End of the running cycle (its anniversary)'),
    thresholdFen: Fen,
    thresholdYuan: Yuan,
    feeFen: Fen,
    feeYuan: Yuan,
    shortfallFen: Fen.describe('Top-up needed before a dorm login is accepted; 0 when none is'),
    shortfallYuan: Yuan,
  }),
  forecast: z.object({
    serviceUntil: Instant.nullable().describe('When dorm service stops if nobody tops up (continuous renewal)'),
    cyclesAfterRunning: z.int(),
    balanceLeftFen: Fen,
    balanceLeftYuan: Yuan,
  }),
  refundableFen: Fen.describe('What a refund may take now: the running cycle’s fee is committed'),
  refundableYuan: Yuan,
  onlineSessions: z.array(SessionDto),
});

const StatusChange = z.object({
  account: AccountDto,
  changed: z.boolean().describe('false when the account already had this status'),
  disconnects: z.array(DisconnectOutcomeDto).describe('The Disconnect-Request sent for each online session (disable only)'),
  disconnectError: z.string().nullable().describe('Set when the disconnects could not be attempted; the account is disabled regardless'),
});

function dormMessage(status: z.infer<typeof DormStatus>, shortfallFen: number, runningUntil: Date | null): string {
  switch (status) {
    case 'open':
      return `宿舍网络已开通，本周期至 ${formatBeijing(runningUntil!)}（北京时间） / dormitory network open until ${formatBeijing(runningUntil!)} (UTC+8)`;
    case 'ready':
      return '余额充足，下次宿舍登录时开始新周期 / balance sufficient: a new cycle starts at the next dormitory login';
    case 'arrears':
      return `账户欠费，还需充值 ${formatYuan(shortfallFen)} 元 / account in arrears: top up ${formatYuan(shortfallFen)} yuan`;
    case 'disabled':
      return '账号已停用 / account disabled';
  }
}

export const accountRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db, billing } = deps;

  /** Seals the new password for CHAP when it came as plaintext and a key is configured; clears a stale one otherwise. */
  const setChapCredential = async (trx: Transaction<Database>, accountId: number, passwordHash: string, password: string | null) => {
    const sealed = password !== null && deps.sealChapCredential ? deps.sealChapCredential(accountId, passwordHash, password) : null;
    await trx.updateTable('accounts').set({ chap_credential: sealed }).where('id', '=', accountId).execute();
  };

  app.post(
    '/accounts',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['accounts'],
        summary: 'Create an account',
        description: 'Give `password` (hashed here with argon2id) or `passwordHash` (an argon2id PHC string).',
        body: CreateAccount,
        response: { 201: AccountDto },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const passwordHash = b.passwordHash ?? (await hashPassword(b.password!));
      const account = await db.transaction().execute(async (trx) => {
        const a = await insertAccount(trx, { username: b.username, kind: b.kind, displayName: b.name ?? null, passwordHash });
        await setChapCredential(trx, a.id, passwordHash, b.password ?? null);
        await recordAudit(trx, {
          actor: actorOf(req),
          action: 'account.create',
          targetType: 'account',
          targetId: a.username,
          after: { username: a.username, kind: a.kind, name: a.displayName, status: a.status },
          requestId: req.id,
        });
        return a;
      });
      return reply.code(201).header('location', `/api/v1/accounts/${encodeURIComponent(account.username)}`).send(toAccountDto(account));
    },
  );

  app.get(
    '/accounts',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['accounts'],
        summary: 'List and search accounts',
        description: 'In creation order with a keyset cursor: pages stay stable while accounts are added (new ones appear on later pages).',
        querystring: z.object({
          q: z.string().trim().min(1).max(64).optional().describe('Part of a username or name'),
          status: z.enum(['active', 'disabled']).optional(),
          kind: AccountKind.optional(),
          cursor: Cursor.optional(),
          limit: Limit,
        }),
        response: { 200: z.object({ items: z.array(AccountDto), nextCursor: z.string().nullable() }) },
      },
    },
    async (req) => {
      const { q, status, kind, cursor, limit } = req.query;
      const afterId = decodeCursor(cursor);
      if (afterId === -1) throw new ApiProblem(400, 'invalid', 'cursor is not one this API returned');
      const rows = await listAccounts(db, { q, status, kind, afterId, limit: limit + 1 });
      const items = rows.slice(0, limit);
      return { items: items.map(toAccountDto), nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.id) : null };
    },
  );

  app.get(
    '/accounts/:username',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['accounts'],
        summary: 'An account: balance, dorm status, running cycle, forecast, online sessions',
        params: UsernameParams,
        response: { 200: AccountDetail },
      },
    },
    async (req) => {
      const now = deps.clock.now();
      const s = await billing.summary(req.params.username, now);
      const tariff = s.tariff;
      const runningUntil = s.forecast.runningUntil;
      let status: z.infer<typeof DormStatus>;
      if (s.account.status === 'disabled') status = 'disabled';
      else if (runningUntil && runningUntil.getTime() > now.getTime()) status = 'open';
      else if (s.account.balanceFen >= tariff.thresholdFen) status = 'ready';
      else status = 'arrears';
      const shortfallFen = status === 'arrears' ? tariff.thresholdFen - s.account.balanceFen : 0;
      const online = await onlineSessionsOfAccount(db, s.account.id);
      return {
        account: toAccountDto(s.account),
        dorm: {
          status,
          message: dormMessage(status, shortfallFen, runningUntil),
          runningCycle: s.running ? toCycleDto(s.running, now) : null,
          runningUntil: runningUntil ? runningUntil.toISOString() : null,
          thresholdFen: tariff.thresholdFen,
          thresholdYuan: formatYuan(tariff.thresholdFen),
          feeFen: tariff.feeFen,
          feeYuan: formatYuan(tariff.feeFen),
          shortfallFen,
          shortfallYuan: formatYuan(shortfallFen),
        },
        forecast: {
          serviceUntil: s.forecast.serviceUntil ? s.forecast.serviceUntil.toISOString() : null,
          cyclesAfterRunning: s.forecast.cyclesAfterRunning,
          balanceLeftFen: s.forecast.balanceLeftFen,
          balanceLeftYuan: formatYuan(s.forecast.balanceLeftFen),
        },
        refundableFen: s.refundableFen,
        refundableYuan: formatYuan(s.refundableFen),
        onlineSessions: online.map(toSessionDto),
      };
    },
  );

  const changeStatus = async (username: string, status: AccountStatus, actor: string, requestId: string) =>
    db.transaction().execute(async (trx) => {
      const before = await lockAccount(trx, { username });
      if (before.status === status) return { account: before, changed: false };
      const after = await setStatus(trx, username, status, deps.clock.now());
      await recordAudit(trx, {
        actor,
        action: status === 'disabled' ? 'account.disable' : 'account.enable',
        targetType: 'account',
        targetId: username,
        before: { status: before.status },
        after: { status: after.status },
        requestId,
      });
      return { account: after, changed: true };
    });

  app.post(
    '/accounts/:username/disable',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['accounts'],
        summary: 'Disable an account and disconnect its online sessions',
        description: 'Logins are refused from now on; every online session gets an RFC 5176 Disconnect-Request (reason `disabled`).',
        params: UsernameParams,
        response: { 200: StatusChange },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const { account, changed } = await changeStatus(req.params.username, 'disabled', actor, req.id);
      let disconnects: DisconnectOutcome[] = [];
      let disconnectError: string | null = null;
      try {
        disconnects = await deps.disconnector.disconnectAccount(account.id, 'disabled', actor);
      } catch (err) {
        req.log.error({ err, accountId: account.id }, 'disconnecting a disabled account failed');
        disconnectError = 'the disconnect requests could not be sent; the sessions end at their next re-authentication';
      }
      return { account: toAccountDto(account), changed, disconnects, disconnectError };
    },
  );

  app.post(
    '/accounts/:username/enable',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['accounts'],
        summary: 'Enable a disabled account',
        params: UsernameParams,
        response: { 200: StatusChange },
      },
    },
    async (req) => {
      const { account, changed } = await changeStatus(req.params.username, 'active', actorOf(req), req.id);
      return { account: toAccountDto(account), changed, disconnects: [], disconnectError: null };
    },
  );

  app.put(
    '/accounts/:username/password',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['accounts'],
        summary: 'Set an account’s password (dormitory and office alike)',
        params: UsernameParams,
        body: Credential,
        response: { 204: z.undefined().describe('Password changed') },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const hash = 'passwordHash' in body ? body.passwordHash : await hashPassword(body.password);
      await db.transaction().execute(async (trx) => {
        const account = await lockAccount(trx, { username: req.params.username });
        await setPasswordHash(trx, req.params.username, hash, deps.clock.now());
        await setChapCredential(trx, account.id, hash, 'password' in body ? body.password : null);
        await recordAudit(trx, {
          actor: actorOf(req),
          action: 'account.set-password',
          targetType: 'account',
          targetId: req.params.username,
          after: { passwordChanged: true, via: 'passwordHash' in body ? 'hash' : 'plaintext' },
          requestId: req.id,
        });
      });
      return reply.code(204).send();
    },
  );
};

