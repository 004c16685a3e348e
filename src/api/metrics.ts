import type pg from 'pg';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface HttpMetrics {
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route'>;
}

/** Returns the metric already registered under `name` (a second API on one registry reuses it). */
function once<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/** HTTP requests by route template and status, and their latency. */
export function httpMetrics(registry: Registry): HttpMetrics {
  const requests = once(
    registry,
    'campus_aaa_http_requests_total',
    () =>
      new Counter({
        name: 'campus_aaa_http_requests_total',
        help: 'HTTP requests answered, by method, route template and status',
        labelNames: ['method', 'route', 'status'] as const,
        registers: [registry],
      }),
  );
  const duration = once(
    registry,
    'campus_aaa_http_request_duration_seconds',
    () =>
      new Histogram({
        name: 'campus_aaa_http_request_duration_seconds',
        help: 'HTTP request latency, by method and route template',
        labelNames: ['method', 'route'] as const,
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
        registers: [registry],
      }),
  );
  return { requests, duration };
}

/** Database pool usage, read at scrape time. */
export function poolMetrics(registry: Registry, pool: pg.Pool): void {
  once(
    registry,
    'campus_aaa_db_pool_clients',
    () =>
      new Gauge({
        name: 'campus_aaa_db_pool_clients',
        help: 'PostgreSQL pool clients by state (total, idle, waiting requests)',
        labelNames: ['state'] as const,
        registers: [registry],
        collect() {
          this.set({ state: 'total' }, pool.totalCount);
          this.set({ state: 'idle' }, pool.idleCount);
          this.set({ state: 'waiting' }, pool.waitingCount);
        },
      }),
  );
}
