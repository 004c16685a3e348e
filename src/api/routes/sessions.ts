import { isIP } from 'node:net';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { findAccount } from '../../billing/account-store.ts';
import type { ApiDeps } from '../app.ts';
import { recordAudit } from '../audit-store.ts';
import { actorOf } from '../auth.ts';
import { ApiProblem } from '../problem.ts';
import { Area, Cursor, decodeCursor, DisconnectOutcomeDto, encodeCursor, IdParams, Limit, SessionDto, toSessionDto, Username } from '../schemas.ts';
import { findSession, listSessions } from '../session-store.ts';

const InstantQuery = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 instant, e.g. 2026-09-01T08:00:00+08:00' }).transform((v) => new Date(v));

export const sessionRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db } = deps;

  app.get(
    '/sessions',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['sessions'],
        summary: 'Online or past sessions, newest first',
        description: '`from`/`to` select sessions that were up at some instant in [from, to).',
        querystring: z.object({
          state: z.enum(['online', 'stopped', 'all']).default('online'),
          username: Username.optional(),
          nasId: z.coerce.number().int().min(1).optional(),
          nasIp: z
            .string()
            .refine((v) => isIP(v) !== 0, 'must be an IPv4 or IPv6 address')
            .optional(),
          area: Area.optional(),
          from: InstantQuery.optional(),
          to: InstantQuery.optional(),
          cursor: Cursor.optional(),
          limit: Limit,
        }),
        response: { 200: z.object({ items: z.array(SessionDto), nextCursor: z.string().nullable() }) },
      },
    },
    async (req) => {
      const { username, cursor, limit, ...filter } = req.query;
      const beforeId = decodeCursor(cursor);
      if (beforeId === -1) throw new ApiProblem(400, 'invalid', 'cursor is not one this API returned');
      let accountId: number | undefined;
      if (username !== undefined) {
        // By account when it exists (its sessions under any spelling the NAS sent), else by the name sent.
        accountId = (await findAccount(db, username))?.id;
      }
      const rows = await listSessions(db, {
        ...filter,
        ...(accountId !== undefined ? { accountId } : { username }),
        beforeId,
        limit: limit + 1,
      });
      const items = rows.slice(0, limit);
      return { items: items.map(toSessionDto), nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.id) : null };
    },
  );

  app.get(
    '/sessions/:id',
    {
      config: { permission: 'read' },
      schema: { tags: ['sessions'], summary: 'One session', params: IdParams, response: { 200: SessionDto } },
    },
    async (req) => {
      const s = await findSession(db, req.params.id);
      if (!s) throw new ApiProblem(404, 'not_found', `no session #${req.params.id} / 会话不存在`);
      return toSessionDto(s);
    },
  );

  app.post(
    '/sessions/:id/disconnect',
    {
      config: { permission: 'disconnect' },
      schema: {
        tags: ['sessions'],
        summary: 'Kick a session: send an RFC 5176 Disconnect-Request and report the NAS’s answer',
        description:
          'Answers 200 with the outcome whatever the NAS said: `ack` (session ended), `nak` (refused, with Error-Cause), ' +
          '`timeout` (no answer after retries) or `error`. A session already stopped answers 409.',
        params: IdParams,
        response: { 200: DisconnectOutcomeDto },
      },
    },
    async (req) => {
      const s = await findSession(db, req.params.id);
      if (!s) throw new ApiProblem(404, 'not_found', `no session #${req.params.id} / 会话不存在`);
      if (s.stoppedAt !== null) {
        throw new ApiProblem(409, 'conflict', `session #${s.id} already stopped at ${s.stoppedAt.toISOString()} / 会话已下线`);
      }
      const actor = actorOf(req);
      const outcome = await deps.disconnector.disconnectSession(s.id, 'staff', actor);
      await recordAudit(db, {
        actor,
        action: 'session.disconnect',
        targetType: 'session',
        targetId: s.id,
        before: { username: s.username, nasIp: s.nasIp, sessionId: s.sessionId, online: true },
        after: { outcome: outcome.outcome, errorCause: outcome.errorCause, attempts: outcome.attempts },
        requestId: req.id,
      });
      return outcome;
    },
  );
};
