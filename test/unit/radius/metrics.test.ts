import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createRadiusMetrics } from '../../../src/radius/metrics.ts';

async function value(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  const got = await metric!.get();
  return got.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

describe('per-request counters', () => {
  it('show every increment at the next read of the registry, exactly once', async () => {
    const registry = new Registry();
    const m = createRadiusMetrics(registry);
    const accept = m.requests.labels('access', 'accept');
    for (let i = 0; i < 1_000; i++) accept.inc();
    m.dropped.labels('unknown_client').inc(3);
    expect(await value(registry, 'radius_requests_total', { code: 'access', result: 'accept' })).toBe(1_000);
    expect(await registry.metrics()).toMatch(/radius_dropped_total\{reason="unknown_client"\} 3/);
    // Read again with nothing new: still the same totals, nothing counted twice.
    expect(await value(registry, 'radius_requests_total', { code: 'access', result: 'accept' })).toBe(1_000);
    accept.inc();
    expect(await value(registry, 'radius_requests_total', { code: 'access', result: 'accept' })).toBe(1_001);
  });

  it('adds up the counts of two servers sharing one registry', async () => {
    const registry = new Registry();
    const a = createRadiusMetrics(registry);
    const b = createRadiusMetrics(registry);
    a.authPath.labels('memory').inc();
    b.authPath.labels('memory').inc(2);
    b.authPath.labels('db').inc();
    expect(await value(registry, 'radius_auth_decisions_total', { path: 'memory' })).toBe(3);
    expect(await value(registry, 'radius_auth_decisions_total', { path: 'db' })).toBe(1);
  });
});

describe('the request latency histogram', () => {
  const name = 'radius_request_duration_seconds';
  const samples = [0.0001, 0.0005, 0.0007, 0.003, 0.003, 0.01, 0.4, 1, 2.5, 30];

  it('reads, as text and as JSON, exactly as prom-client Histogram given the same observations', async () => {
    const registry = new Registry();
    const m = createRadiusMetrics(registry);
    const reference = new Registry();
    const histogram = new Histogram({
      name,
      help: 'Time from receipt to reply',
      labelNames: ['code'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [reference],
    });
    const access = m.latency.labels('access');
    for (const s of samples) {
      access.observe(s);
      histogram.labels('access').observe(s);
    }
    m.latency.labels('accounting').observe(0.002);
    histogram.labels('accounting').observe(0.002);
    expect(await registry.getSingleMetricAsString(name)).toBe(await reference.getSingleMetricAsString(name));
    expect(await registry.getSingleMetricAsString(name)).toMatch(/^radius_request_duration_seconds_bucket\{le="0.005",code="access"\} 5$/m);
    const json = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    const want = (await reference.getMetricsAsJSON()).find((x) => x.name === name);
    // The same values in the same order; prom-client adds an empty exemplar field to its buckets.
    const plain = (values: readonly object[] | undefined) => values?.map((v) => ({ ...v, exemplar: undefined }));
    expect(plain(json?.values)).toEqual(plain(want?.values));
  });

  it('is shared by two servers on one registry and cleared by resetMetrics', async () => {
    const registry = new Registry();
    createRadiusMetrics(registry).latency.labels('access').observe(0.001);
    createRadiusMetrics(registry).latency.labels('access').observe(0.001);
    expect(await registry.getSingleMetricAsString(name)).toMatch(/^radius_request_duration_seconds_count\{code="access"\} 2$/m);
    registry.resetMetrics();
    expect(await registry.getSingleMetricAsString(name)).toMatch(/^radius_request_duration_seconds_count\{code="access"\} 0$/m);
  });
});
