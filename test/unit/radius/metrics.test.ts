import { Registry } from 'prom-client';
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
