import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { SettleReport } from '../../billing/billing.ts';
import type { ApiDeps } from '../app.ts';
import { listAudit, recordAudit } from '../audit-store.ts';
import { actorOf } from '../auth.ts';
import { ApiProblem } from '../problem.ts';
import { Cursor, decodeCursor, encodeCursor, IdParams, Instant, Limit } from '../schemas.ts';
import { API_ROLES, getToken, insertToken, listTokens, revokeToken, type ApiToken } from '../token-store.ts';

const Role = z.enum(API_ROLES).describe('admin: everything; operator: read, top-up, adjust, disconnect; payment: top-ups only; readonly: read');

const TokenDto = z
  .object({
    id: z.int(),
    name: z.string(),
    role: Role,
    keyId: z.string().describe('The public part of the token, to tell tokens apart'),
    createdBy: z.string(),
    createdAt: Instant,
    expiresAt: Instant.nullable(),
    revokedAt: Instant.nullable(),
    lastUsedAt: Instant.nullable().describe('Updated at most once a minute'),
  })
  .meta({ id: 'ApiToken' });

function toTokenDto(t: ApiToken): z.infer<typeof TokenDto> {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    keyId: t.keyId,
    createdBy: t.createdBy,
    createdAt: t.createdAt.toISOString(),
    expiresAt: t.expiresAt ? t.expiresAt.toISOString() : null,
    revokedAt: t.revokedAt ? t.revokedAt.toISOString() : null,
    lastUsedAt: t.lastUsedAt ? t.lastUsedAt.toISOString() : null,
  };
}

const SettleReportDto = z.object({
  settled: z.int().describe('Cycles settled'),
  renewed: z.int().describe('Cycles that renewed at once (continuous service)'),
  closed: z.int().describe('Accounts whose dorm service stopped (arrears, or renewal waits for a login)'),
  batches: z.int(),
  ms: z.int(),
});

function toSettleDto(r: SettleReport): z.infer<typeof SettleReportDto> {
  return { settled: r.settled, renewed: r.renewed, closed: r.closed, batches: r.batches, ms: r.ms };
}

const NOT_SIMULATED = 'the clock is real: start the service with SIMULATED_CLOCK=on to move time by hand / 未启用模拟时钟';

export const adminRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db } = deps;

  app.post(
    '/tokens',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'Create an API token',
        description: 'The token is in this answer only: it is stored as a SHA-256 hash and cannot be shown again.',
        body: z.strictObject({
          name: z.string().trim().min(1).max(100).describe('Who or what uses it, e.g. "payment platform" or "zhang.san"'),
          role: Role,
          expiresAt: z.iso.datetime({ offset: true }).optional().describe('When it stops working; never when omitted'),
        }),
        response: { 201: TokenDto.extend({ token: z.string().describe('The bearer token: store it now') }) },
      },
    },
    async (req, reply) => {
      const expiresAt = req.body.expiresAt ? new Date(req.body.expiresAt) : null;
      if (expiresAt && expiresAt.getTime() <= Date.now()) throw new ApiProblem(400, 'invalid', 'expiresAt must be in the future');
      const created = await db.transaction().execute(async (trx) => {
        const c = await insertToken(trx, { name: req.body.name, role: req.body.role, createdBy: actorOf(req), expiresAt });
        await recordAudit(trx, {
          actor: actorOf(req),
          action: 'token.create',
          targetType: 'token',
          targetId: c.record.id,
          after: { name: c.record.name, role: c.record.role, expiresAt: c.record.expiresAt },
          requestId: req.id,
        });
        return c;
      });
      return reply.code(201).send({ ...toTokenDto(created.record), token: created.token });
    },
  );

  app.get(
    '/tokens',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'List API tokens (never their secrets)',
        querystring: z.object({ includeRevoked: z.enum(['true', 'false']).default('false').transform((v) => v === 'true') }),
        response: { 200: z.object({ items: z.array(TokenDto) }) },
      },
    },
    async (req) => ({ items: (await listTokens(db, { includeRevoked: req.query.includeRevoked })).map(toTokenDto) }),
  );

  app.delete(
    '/tokens/:id',
    {
      config: { permission: 'admin' },
      schema: { tags: ['admin'], summary: 'Revoke an API token (it stops working at once)', params: IdParams, response: { 200: TokenDto } },
    },
    async (req) => {
      const r = await db.transaction().execute(async (trx) => {
        const changed = await revokeToken(trx, req.params.id, new Date());
        if (!changed) throw new ApiProblem(404, 'not_found', `no token #${req.params.id} / 令牌不存在`);
        if (changed.before.revokedAt === null) {
          await recordAudit(trx, {
            actor: actorOf(req),
            action: 'token.revoke',
            targetType: 'token',
            targetId: req.params.id,
            before: { name: changed.before.name, role: changed.before.role, revokedAt: null },
            after: { revokedAt: changed.after.revokedAt },
            requestId: req.id,
          });
        }
        return changed.after;
      });
      return toTokenDto(r);
    },
  );

  app.get(
    '/tokens/:id',
    {
      config: { permission: 'admin' },
      schema: { tags: ['admin'], summary: 'One API token', params: IdParams, response: { 200: TokenDto } },
    },
    async (req) => {
      const t = await getToken(db, req.params.id);
      if (!t) throw new ApiProblem(404, 'not_found', `no token #${req.params.id} / 令牌不存在`);
      return toTokenDto(t);
    },
  );

  app.get(
    '/audit',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'The audit log: every write through the API, newest first',
        querystring: z.object({
          targetType: z.enum(['account', 'nas', 'token', 'session', 'billing', 'clock', 'import']).optional(),
          targetId: z.string().max(200).optional(),
          actor: z.string().max(200).optional(),
          action: z.string().max(64).optional(),
          cursor: Cursor.optional(),
          limit: Limit,
        }),
        response: {
          200: z.object({
            items: z.array(
              z.object({
                id: z.int(),
                at: Instant,
                actor: z.string(),
                action: z.string(),
                targetType: z.string(),
                targetId: z.string().nullable(),
                before: z.unknown(),
                after: z.unknown(),
                requestId: z.string().nullable(),
              }),
            ),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    async (req) => {
      const { cursor, limit, ...filter } = req.query;
      const beforeId = decodeCursor(cursor);
      if (beforeId === -1) throw new ApiProblem(400, 'invalid', 'cursor is not one this API returned');
      const rows = await listAudit(db, { ...filter, beforeId, limit: limit + 1 });
      const items = rows.slice(0, limit);
      return {
        items: items.map((r) => ({ ...r, at: r.at.toISOString() })),
        nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.id) : null,
      };
    },
  );

  app.post(
    '/billing/settle',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'Run a settlement pass now',
        description: 'Settles every cycle whose anniversary has passed (the worker does this on its schedule anyway).',
        response: { 200: SettleReportDto },
      },
    },
    async (req) => {
      const report = await deps.settleNow();
      await recordAudit(db, { actor: actorOf(req), action: 'billing.settle', targetType: 'billing', after: toSettleDto(report), requestId: req.id });
      return toSettleDto(report);
    },
  );

  const ClockDto = z.object({ simulated: z.boolean(), now: Instant });

  app.get(
    '/clock',
    {
      config: { permission: 'read' },
      schema: { tags: ['admin'], summary: 'The service’s time, and whether it is simulated (SIMULATED_CLOCK)', response: { 200: ClockDto } },
    },
    async () => ({ simulated: deps.clock.simulated, now: deps.clock.now().toISOString() }),
  );

  app.post(
    '/clock/advance',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'Move simulated time forward and settle what became due (SIMULATED_CLOCK only)',
        description: 'Answers 409 when the clock is real.',
        body: z.strictObject({ seconds: z.int().min(0).max(10 * 366 * 86_400).describe('How far to move, e.g. 2592000 for 30 days') }),
        response: { 200: ClockDto.extend({ settlement: SettleReportDto }) },
      },
    },
    async (req) => {
      if (!deps.clock.simulated) throw new ApiProblem(409, 'clock_not_simulated', NOT_SIMULATED);
      const before = deps.clock.now();
      const { now, report } = await deps.clock.advance(req.body.seconds);
      await recordAudit(db, {
        actor: actorOf(req),
        action: 'clock.advance',
        targetType: 'clock',
        before: { now: before.toISOString() },
        after: { now: now.toISOString(), seconds: req.body.seconds, settlement: toSettleDto(report) },
        requestId: req.id,
      });
      return { simulated: true, now: now.toISOString(), settlement: toSettleDto(report) };
    },
  );
};
