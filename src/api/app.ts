import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Billing, SettleReport } from '../billing/billing.ts';
import type { Db } from '../db/connection.ts';
import { isAppError } from '../errors.ts';
import type { Disconnector } from '../radius/disconnect.ts';
import { authenticate, bearerToken, can, rolesWith } from './auth.ts';
import { httpMetrics, poolMetrics } from './metrics.ts';
import { ApiProblem, problemBody, PROBLEM_CONTENT_TYPE, STATUS_OF_CODE, type FieldError, type ProblemBody } from './problem.ts';
import { accountRoutes } from './routes/accounts.ts';
import { adminRoutes } from './routes/admin.ts';
import { healthRoutes } from './routes/health.ts';
import { importRoutes } from './routes/import.ts';
import { moneyRoutes } from './routes/money.ts';
import { nasRoutes } from './routes/nas.ts';
import { reportRoutes } from './routes/reports.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { problemResponse } from './schemas.ts';
import { ensureBootstrapToken, touchToken } from './token-store.ts';

/** The clock as the API sees it: simulated time moves only when SIMULATED_CLOCK is on. */
export interface ApiClock {
  readonly simulated: boolean;
  now(): Date;
  advance(seconds: number): Promise<{ now: Date; report: SettleReport }>;
}

export interface ApiDeps {
  readonly db: Db;
  readonly billing: Billing;
  readonly disconnector: Disconnector;
  readonly clock: ApiClock;
  /** Runs a settlement pass now (the worker's runOnce, so passes never overlap). */
  readonly settleNow: () => Promise<SettleReport>;
  /** ADMIN_TOKEN, accepted as an admin token when set. */
  readonly adminToken: string | null;
  readonly log: Logger;
  /** The process's Prometheus registry, shared with the RADIUS server; served on /metrics. */
  readonly metrics: Registry;
  /** True when the RADIUS sockets are bound; absent when this process runs no RADIUS server. */
  readonly radiusReady?: () => boolean;
  /** Checks that every migration is applied (db/migrate.ts's migrationsApplied). */
  readonly migrationsApplied: () => Promise<boolean>;
  /** The database pool, for pool-usage metrics. */
  readonly pool?: pg.Pool;
  /**
   * Seals a plaintext password for CHAP (CREDENTIAL_KEY set): stored beside the hash whenever the API
   * sets a password from plaintext. Absent: accounts created here log in with PAP only.
   */
  readonly sealChapCredential?: (accountId: number, passwordHash: string, password: string) => Buffer;
}

const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

function fieldPath(instancePath: string): string {
  return instancePath.replace(/^\//, '').replace(/\//g, '.');
}

function sendProblem(reply: FastifyReply, body: ProblemBody): FastifyReply {
  if (body.status === 401) reply.header('www-authenticate', 'Bearer realm="campus-aaa"');
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

/** Problem details for any error: 4xx say what is wrong; 5xx say nothing and are logged. */
function toProblem(err: unknown, req: FastifyRequest): ProblemBody {
  const requestId = String(req.id);
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = (err as { validationContext?: string }).validationContext ?? 'body';
    const errors: FieldError[] = err.validation.map((v) => ({ in: where, path: fieldPath(v.instancePath), message: v.message ?? 'invalid' }));
    const list = errors.map((e) => `${e.path || where}: ${e.message}`).join('; ');
    return problemBody(400, 'invalid', `invalid ${where} / 请求参数有误: ${list}`, { errors, requestId });
  }
  if (isAppError(err)) {
    const status = STATUS_OF_CODE[err.code];
    return problemBody(status, err.code, err.message, { ...(err.details ?? {}), requestId });
  }
  if (err instanceof ApiProblem) return problemBody(err.status, err.code, err.message, { ...err.extensions, requestId });
  const fe = err as Partial<FastifyError>;
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    // Fastify's own client errors (bad JSON, unsupported media type, body too large): their messages are safe.
    const code = status === 415 ? 'unsupported_media_type' : status === 413 ? 'too_large' : status === 404 ? 'not_found' : 'invalid';
    return problemBody(status, code, fe.message ?? 'bad request', { requestId });
  }
  req.log.error({ err, reqId: req.id }, 'request failed');
  return problemBody(500, 'internal', `internal error; quote request id ${requestId} to the administrator / 内部错误`, { requestId });
}

/** Headers of a forwarded response that belong to its own connection, not to the client's. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date']);

/** Swagger UI at /docs over a finished OpenAPI document, in a Fastify instance that never listens. */
async function buildDocs(document: Record<string, unknown>): Promise<FastifyInstance> {
  const { default: fastifySwaggerUi } = await import('@fastify/swagger-ui');
  const docs = Fastify();
  await docs.register(fastifySwagger, { mode: 'static', specification: { document: document as never } });
  await docs.register(fastifySwaggerUi, { routePrefix: '/docs' });
  await docs.ready();
  return docs;
}

/**
 * Builds the admin API (not listening): /api/v1 resources behind bearer tokens, /healthz, /readyz,
 * /metrics, the OpenAPI document at /openapi.json and Swagger UI at /docs.
 */
export async function buildApi(deps: ApiDeps) {
  const app = Fastify({
    loggerInstance: deps.log.child({ module: 'api' }),
    // A caller's X-Request-Id is kept when it is a sane token (it reaches logs); otherwise a fresh one.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: 1024 * 1024,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null);

  const http = httpMetrics(deps.metrics);
  if (deps.pool) poolMetrics(deps.metrics, deps.pool);

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-request-id', req.id);
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    http.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    http.duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  app.addHook('onRequest', async (req) => {
    // By the raw path and by the matched route, so no spelling of a URL reaches /api/v1 unauthenticated.
    if (!req.url.startsWith('/api/') && !req.routeOptions.url?.startsWith('/api/')) return;
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      throw new ApiProblem(401, 'unauthorized', 'a bearer token is required: send "Authorization: Bearer <token>" / 需要访问令牌');
    }
    const principal = await authenticate(deps.db, deps.adminToken, token, new Date());
    if (!principal) throw new ApiProblem(401, 'unauthorized', 'the token is unknown, revoked or expired / 令牌无效、已吊销或已过期');
    req.principal = principal;
    if (principal.tokenId !== null) {
      const tokenId = principal.tokenId;
      // Best effort: a failed "last used" stamp must not fail the request, but is logged.
      touchToken(deps.db, tokenId, new Date()).catch((err: unknown) => req.log.warn({ err }, 'could not record token use'));
    }
    const permission = req.routeOptions.config.permission ?? 'admin';
    if (req.routeOptions.url !== undefined && !can(principal.role, permission)) {
      throw new ApiProblem(403, 'forbidden', `role ${principal.role} may not do this; it needs one of: ${rolesWith(permission).join(', ')} / 权限不足`, {
        role: principal.role,
        requiredPermission: permission,
      });
    }
  });

  // Every /api/v1 route documents its problem responses and the roles allowed to call it.
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/api/')) return;
    const schema = (route.schema ??= {}) as Record<string, unknown>;
    schema.response = { ...(schema.response as object | undefined), default: problemResponse };
    const permission = route.config?.permission ?? 'admin';
    const roles = `Roles: ${rolesWith(permission).join(', ')}.`;
    schema.description = schema.description ? `${String(schema.description)}\n\n${roles}` : roles;
  });

  app.setErrorHandler((err, req, reply) => sendProblem(reply, toProblem(err, req)));
  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, problemBody(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]} / 接口不存在`, { requestId: String(req.id) })),
  );

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'campus-aaa admin API',
        version: '1',
        description:
          'Staff and payment-platform API of the campus RADIUS/AAA and dormitory billing service. Money is integer fen ' +
          '(1 yuan = 100 fen) with a display yuan string beside it. Errors are RFC 9457 problem details.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API token (caaa_...) or ADMIN_TOKEN' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'accounts', description: 'Accounts, passwords, enable/disable, import' },
        { name: 'money', description: 'Top-ups, adjustments, refunds, the ledger and cycles' },
        { name: 'sessions', description: 'Online and past sessions; disconnect' },
        { name: 'nas', description: 'Access controllers (RADIUS clients)' },
        { name: 'reports', description: 'Revenue, arrears, cycles due, online counts' },
        { name: 'admin', description: 'Tokens, the audit log, settlement and the simulated clock' },
        { name: 'health', description: 'Liveness, readiness and metrics (no token needed)' },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // Swagger UI is loaded on the first request for it, in an instance of its own serving this document:
  // its assets and @fastify/static's dependencies cost the RADIUS server ~4 MiB of RSS otherwise (issue 5).
  let docs: Promise<FastifyInstance> | undefined;
  const forwardToDocs = async (req: FastifyRequest, reply: FastifyReply) => {
    docs ??= buildDocs(app.swagger() as Record<string, unknown>).catch((err: unknown) => {
      docs = undefined;
      throw err;
    });
    // Always GET: for a HEAD request Fastify's own HEAD route drops the body and keeps its length.
    const res = await (await docs).inject({ method: 'GET', url: req.url, headers: req.headers });
    if (res.statusCode === 404) return reply.callNotFound();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined && !HOP_HEADERS.has(name)) reply.header(name, value);
    }
    return reply.code(res.statusCode).send(res.rawPayload.length > 0 ? res.rawPayload : undefined);
  };
  app.addHook('onClose', async () => {
    await (await docs?.catch(() => undefined))?.close();
  });
  app.get('/docs', { schema: { hide: true } }, forwardToDocs);
  app.get('/docs/*', { schema: { hide: true } }, forwardToDocs);

  await app.register(healthRoutes, { deps });
  const v1 = { prefix: '/api/v1', deps };
  await app.register(accountRoutes, v1);
  await app.register(importRoutes, v1);
  await app.register(moneyRoutes, v1);
  await app.register(sessionRoutes, v1);
  await app.register(nasRoutes, v1);
  await app.register(reportRoutes, v1);
  await app.register(adminRoutes, v1);
  await app.ready();
  return app;
}

export type ApiInstance = Awaited<ReturnType<typeof buildApi>>;

export interface RunningApi {
  readonly app: ApiInstance;
  /** The bound address, e.g. http://127.0.0.1:8080 (the real port when 0 was asked for). */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Builds and starts the API on host:port. On a fresh install (no ADMIN_TOKEN, no token ever created)
 * creates the first admin token and hands it to `announce` once; it is never logged.
 */
export async function startApi(
  deps: ApiDeps,
  opts: { host: string; port: number; announce?: (line: string) => void },
): Promise<RunningApi> {
  if (deps.adminToken === null) {
    const created = await ensureBootstrapToken(deps.db);
    if (created) {
      const announce = opts.announce ?? ((line: string) => process.stdout.write(`${line}\n`));
      announce(`*** campus-aaa first start: admin API token (shown once, store it now): ${created.token} ***`);
      deps.log.warn({ tokenId: created.record.id }, 'created the first admin token (printed once on stdout)');
    }
  }
  const app = await buildApi(deps);
  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return { app, url: `http://${host}:${addr.port}`, close: () => app.close() };
}
