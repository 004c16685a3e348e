import { sql } from 'kysely';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from '../app.ts';

const Check = z.object({ ok: z.boolean(), detail: z.string().optional() });
const Readiness = z.object({
  ready: z.boolean(),
  checks: z.object({ database: Check, migrations: Check, radius: Check }),
});

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** /healthz, /readyz and /metrics: no token, for load balancers, orchestrators and Prometheus. */
export const healthRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'The process is up',
        security: [],
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Ready to serve: database reachable, migrations applied, RADIUS sockets bound',
        description: '200 when every check passes, 503 otherwise; the body says which check failed.',
        security: [],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (req, reply) => {
      const database = await withTimeout(sql`SELECT 1`.execute(deps.db), 2000).then(
        () => ({ ok: true }),
        (err: unknown) => {
          req.log.warn({ err }, 'readiness: database check failed');
          return { ok: false, detail: 'database unreachable' };
        },
      );
      const migrations = database.ok
        ? await withTimeout(deps.migrationsApplied(), 2000).then(
            (ok) => (ok ? { ok } : { ok, detail: 'migrations pending: run npm run migrate' }),
            () => ({ ok: false, detail: 'could not read the migration state' }),
          )
        : { ok: false, detail: 'database unreachable' };
      const radius = deps.radiusReady
        ? deps.radiusReady()
          ? { ok: true }
          : { ok: false, detail: 'RADIUS sockets not bound' }
        : { ok: true, detail: 'no RADIUS server in this process' };
      const ready = database.ok && migrations.ok && radius.ok;
      return reply.code(ready ? 200 : 503).send({ ready, checks: { database, migrations, radius } });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics (text exposition format)',
        security: [],
        response: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } } },
      },
    },
    async (_req, reply) => {
      const text = await deps.metrics.metrics();
      return reply.type(deps.metrics.contentType).send(text);
    },
  );
};
