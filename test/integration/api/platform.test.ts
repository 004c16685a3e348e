import SwaggerParser from '@apidevtools/swagger-parser';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, startApi } from '../../../src/api/app.ts';
import { migrationsApplied } from '../../../src/db/migrate.ts';
import { auth, neverDisconnects, startTestApi, type TestApi } from './harness.ts';

let api: TestApi;
let radiusUp = true;
beforeAll(async () => {
  api = await startTestApi({ radiusReady: () => radiusUp });
});
afterAll(async () => api?.close());

const admin = () => auth(api.tokens.admin);

describe('health and metrics', () => {
  it('answers /healthz while the process is up', async () => {
    const r = await api.app.inject({ method: 'GET', url: '/healthz' });
    expect(r.json()).toEqual({ status: 'ok' });
  });

  it('is ready when the database answers, migrations are applied and RADIUS is bound; 503 naming the check otherwise', async () => {
    const ok = await api.app.inject({ method: 'GET', url: '/readyz' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ ready: true, checks: { database: { ok: true }, migrations: { ok: true }, radius: { ok: true } } });
    radiusUp = false;
    try {
      const down = await api.app.inject({ method: 'GET', url: '/readyz' });
      expect(down.statusCode).toBe(503);
      expect(down.json()).toMatchObject({ ready: false, checks: { radius: { ok: false, detail: 'RADIUS sockets not bound' } } });
    } finally {
      radiusUp = true;
    }
  });

  it('serves Prometheus text with HTTP requests by route template and status, latency, and pool usage', async () => {
    await api.app.inject({ method: 'GET', url: '/api/v1/accounts/someone', headers: admin() });
    const r = await api.app.inject({ method: 'GET', url: '/metrics' });
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body).toContain('campus_aaa_http_requests_total{method="GET",route="/api/v1/accounts/:username",status="404"} 1');
    expect(r.body).toContain('campus_aaa_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/accounts/:username"}');
    expect(r.body).toMatch(/campus_aaa_db_pool_clients\{state="total"\} \d+/);
  });
});

describe('OpenAPI and errors', () => {
  it('publishes a valid OpenAPI 3 document with every resource, the bearer scheme and problem responses', async () => {
    const r = await api.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(r.statusCode).toBe(200);
    const doc = r.json();
    await expect(SwaggerParser.validate(structuredClone(doc))).resolves.toBeTruthy();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/nas',
        '/api/v1/nas/{id}',
        '/api/v1/accounts',
        '/api/v1/accounts/import',
        '/api/v1/accounts/{username}',
        '/api/v1/accounts/{username}/top-ups',
        '/api/v1/accounts/{username}/ledger',
        '/api/v1/sessions/{id}/disconnect',
        '/api/v1/reports/revenue-daily',
        '/api/v1/clock/advance',
        '/healthz',
      ]),
    );
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const topUp = doc.paths['/api/v1/accounts/{username}/top-ups'].post;
    expect(topUp.requestBody.content['application/json'].schema.properties.amountFen.type).toBe('integer');
    expect(topUp.responses.default.content['application/problem+json']).toBeDefined();
    expect(topUp.description).toContain('Roles: admin, operator, payment.');
    expect(doc.paths['/healthz'].get.security).toEqual([]);
    expect(Object.keys(doc.paths['/api/v1/accounts/import'].post.requestBody.content).sort()).toEqual(['application/json', 'application/x-ndjson', 'text/csv']);
  });

  it('serves Swagger UI at /docs', async () => {
    const r = await api.app.inject({ method: 'GET', url: '/docs/' });
    expect(r.statusCode).toBe(200);
    expect(r.body).toContain('swagger-ui');
  });

  it('serves Swagger UI its assets and the same document as /openapi.json, and 404s what it does not have', async () => {
    const [css, head, json, openapi, missing] = await Promise.all([
      api.app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css' }),
      api.app.inject({ method: 'HEAD', url: '/docs/static/swagger-ui.css' }),
      api.app.inject({ method: 'GET', url: '/docs/json' }),
      api.app.inject({ method: 'GET', url: '/openapi.json' }),
      api.app.inject({ method: 'GET', url: '/docs/no-such-asset.js' }),
    ]);
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect(head.statusCode).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(css.rawPayload.length);
    expect(json.json()).toEqual(openapi.json());
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'not_found' });
  });

  it('answers an unknown route with a 404 problem', async () => {
    const r = await api.app.inject({ method: 'GET', url: '/api/v1/nothing-here', headers: admin() });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ type: 'urn:campus-aaa:problem:not_found', title: 'Not Found', status: 404, code: 'not_found' });
  });

  it('answers malformed JSON with a 400 problem', async () => {
    const r = await api.app.inject({ method: 'POST', url: '/api/v1/accounts', headers: { ...admin(), 'content-type': 'application/json' }, payload: '{"username":' });
    expect(r.statusCode).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('echoes the caller’s X-Request-Id and reports it in problems', async () => {
    const r = await api.app.inject({ method: 'GET', url: '/api/v1/accounts/ghost', headers: { ...admin(), 'x-request-id': 'trace-123' } });
    expect(r.headers['x-request-id']).toBe('trace-123');
    expect(r.json().requestId).toBe('trace-123');
    const odd = await api.app.inject({ method: 'GET', url: '/api/v1/accounts/ghost', headers: { ...admin(), 'x-request-id': 'bad id\u0007 with spaces' } });
    expect(odd.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('hides the cause of a 500 from the caller and logs it with the request id', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'error' }, { write: (l: string) => void lines.push(l) });
    const broken = await buildApi({
      db: api.t.db,
      billing: api.billing,
      disconnector: neverDisconnects,
      clock: { simulated: false, now: () => new Date(), advance: () => Promise.reject(new Error('unused')) },
      settleNow: () => Promise.reject(new Error('relation "cycles" is on fire at 10.0.0.7')),
      adminToken: 'a-token-of-at-least-16-chars',
      log,
      metrics: new Registry(),
      migrationsApplied: () => migrationsApplied(api.t.db),
    });
    try {
      const r = await broken.inject({ method: 'POST', url: '/api/v1/billing/settle', headers: auth('a-token-of-at-least-16-chars') });
      expect(r.statusCode).toBe(500);
      expect(r.body).not.toContain('fire');
      expect(r.body).not.toContain('10.0.0.7');
      const { requestId, code } = r.json();
      expect(code).toBe('internal');
      expect(lines.some((l) => l.includes(requestId) && l.includes('on fire'))).toBe(true);
    } finally {
      await broken.close();
    }
  });
});

describe('settlement, the clock and the audit log', () => {
  it('runs a settlement pass on request and audits it', async () => {
    const r = await api.app.inject({ method: 'POST', url: '/api/v1/billing/settle', headers: admin() });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ settled: 0, renewed: 0, closed: 0 });
  });

  it('shows and moves the simulated clock', async () => {
    const before = (await api.app.inject({ method: 'GET', url: '/api/v1/clock', headers: auth(api.tokens.readonly) })).json();
    expect(before.simulated).toBe(true);
    const r = await api.app.inject({ method: 'POST', url: '/api/v1/clock/advance', headers: admin(), payload: { seconds: 3600 } });
    expect(r.statusCode).toBe(200);
    expect(Date.parse(r.json().now) - Date.parse(before.now)).toBe(3_600_000);
    const bad = await api.app.inject({ method: 'POST', url: '/api/v1/clock/advance', headers: admin(), payload: { seconds: -5 } });
    expect(bad.statusCode).toBe(400);
  });

  it('refuses to move a real clock with 409 and says how to turn simulation on', async () => {
    const real = await startTestApi({ simulated: false });
    try {
      const clock = (await real.app.inject({ method: 'GET', url: '/api/v1/clock', headers: auth(real.tokens.admin) })).json();
      expect(clock.simulated).toBe(false);
      const r = await real.app.inject({ method: 'POST', url: '/api/v1/clock/advance', headers: auth(real.tokens.admin), payload: { seconds: 60 } });
      expect(r.statusCode).toBe(409);
      expect(r.json()).toMatchObject({ code: 'clock_not_simulated', detail: expect.stringContaining('SIMULATED_CLOCK') });
    } finally {
      await real.close();
    }
  });

  it('lists audit records newest first, filtered by target, page by page', async () => {
    for (let i = 0; i < 3; i++) {
      await api.app.inject({ method: 'POST', url: '/api/v1/accounts', headers: admin(), payload: { username: `aud${i}`, kind: 'student', password: 'abcdefgh' } });
    }
    const p1 = (await api.app.inject({ method: 'GET', url: '/api/v1/audit?action=account.create&limit=2', headers: admin() })).json();
    expect(p1.items.map((a: { targetId: string }) => a.targetId)).toEqual(['aud2', 'aud1']);
    const p2 = (await api.app.inject({ method: 'GET', url: `/api/v1/audit?action=account.create&limit=2&cursor=${p1.nextCursor}`, headers: admin() })).json();
    expect(p2.items.map((a: { targetId: string }) => a.targetId)).toEqual(['aud0']);
    expect(p2.nextCursor).toBeNull();
    const one = (await api.app.inject({ method: 'GET', url: '/api/v1/audit?targetType=account&targetId=aud1', headers: admin() })).json();
    expect(one.items).toEqual([expect.objectContaining({ action: 'account.create', actor: expect.stringContaining('test admin'), after: expect.objectContaining({ username: 'aud1' }) })]);
  });

  it('keeps audit records immutable', async () => {
    await expect(api.t.db.deleteFrom('audit_log').execute()).rejects.toThrow(/immutable/);
  });
});

describe('startApi', () => {
  it('listens on an ephemeral port, prints a first admin token once on a fresh install, and serves it over HTTP', async () => {
    const empty = await startTestApi();
    const printed: string[] = [];
    try {
      // The harness created tokens; without them this is a fresh install.
      await empty.t.pool.query('DELETE FROM api_tokens');
      const d = {
        db: empty.t.db,
        billing: empty.billing,
        disconnector: neverDisconnects,
        clock: { simulated: false, now: () => new Date(), advance: () => Promise.reject(new Error('unused')) },
        settleNow: () => empty.billing.settleDue(),
        adminToken: null,
        log: pino({ level: 'silent' }),
        metrics: new Registry(),
        migrationsApplied: () => migrationsApplied(empty.t.db),
      };
      const running = await startApi(d, { host: '127.0.0.1', port: 0, announce: (l) => printed.push(l) });
      try {
        expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        expect(printed).toHaveLength(1);
        const token = /(caaa_[0-9a-f]{12}_[A-Za-z0-9_-]{43})/.exec(printed[0]!)![1]!;
        const r = await fetch(`${running.url}/api/v1/tokens`, { headers: auth(token) });
        expect(r.status).toBe(200);
        expect(await r.json()).toMatchObject({ items: [expect.objectContaining({ name: 'bootstrap', role: 'admin' })] });
      } finally {
        await running.close();
      }
      const again = await startApi(d, { host: '127.0.0.1', port: 0, announce: (l) => printed.push(l) });
      await again.close();
      expect(printed).toHaveLength(1);
    } finally {
      await empty.close();
    }
  });
});
