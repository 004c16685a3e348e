import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('configuration from the environment', () => {
  it('runs out of the box: embedded database, standard ports and the guide tariff', () => {
    const c = loadConfig({});
    expect(c.databaseUrl).toBeNull();
    expect(c.dataDir).toBe('./var');
    expect([c.radius.authPort, c.radius.acctPort, c.api.port]).toEqual([1812, 1813, 8080]);
    expect(c.tariff).toEqual({ feeFen: 2000, cycleSeconds: 30 * 86_400, thresholdFen: 2000, renewal: 'continuous' });
    expect(c.settle.cron).toBe('* * * * *');
    expect(c.simulatedClock).toBeNull();
  });

  it('lists every bad key at once, with why', () => {
    let err: unknown;
    try {
      loadConfig({ RADIUS_AUTH_PORT: '70000', TARIFF_FEE_FEN: '20.5', RENEWAL: 'sometimes', DATABASE_URL: 'mysql://x', SIMULATED_CLOCK: 'tomorrow' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const keys = (err as ConfigError).problems.map((p) => p.split(':')[0]);
    expect(keys.sort()).toEqual(['DATABASE_URL', 'RADIUS_AUTH_PORT', 'RENEWAL', 'SIMULATED_CLOCK', 'TARIFF_FEE_FEN']);
  });

  it('runs as many password verifications at once as there are CPUs unless told, and at least one', () => {
    expect(loadConfig({}).radius.passwordVerifyConcurrency).toBeNull();
    expect(loadConfig({ PASSWORD_VERIFY_CONCURRENCY: '1' }).radius.passwordVerifyConcurrency).toBe(1);
    expect(() => loadConfig({ PASSWORD_VERIFY_CONCURRENCY: '0' })).toThrow(ConfigError);
    expect(() => loadConfig({ PASSWORD_VERIFY_CONCURRENCY: '1.5' })).toThrow(ConfigError);
    expect(loadConfig({}).radius.passwordRehash).toBe(true);
    expect(loadConfig({ PASSWORD_REHASH: 'off' }).radius.passwordRehash).toBe(false);
    expect(loadConfig({ PASSWORD_REHASH: 'on' }).radius.passwordRehash).toBe(true);
    expect(() => loadConfig({ PASSWORD_REHASH: 'sometimes' })).toThrow(ConfigError);
  });

  it('serves the RADIUS sockets from their own thread unless RADIUS_SOCKET_THREAD is off', () => {
    expect(loadConfig({}).radius.socketThread).toBe(true);
    expect(loadConfig({ RADIUS_SOCKET_THREAD: 'off' }).radius.socketThread).toBe(false);
    expect(loadConfig({ RADIUS_SOCKET_THREAD: 'on' }).radius.socketThread).toBe(true);
    expect(loadConfig({ RADIUS_SOCKET_THREAD: '0' }).radius.socketThread).toBe(false);
    expect(() => loadConfig({ RADIUS_SOCKET_THREAD: 'both' })).toThrow(ConfigError);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', API_PORT: ' ' }).api.port).toBe(8080);
  });

  it('starts the simulated clock at a given instant, or at the real time with "on"', () => {
    expect(loadConfig({ SIMULATED_CLOCK: '2026-09-01T08:00:00+08:00' }).simulatedClock).toEqual({ startAt: new Date('2026-09-01T00:00:00Z') });
    expect(loadConfig({ SIMULATED_CLOCK: 'on' }).simulatedClock).toEqual({ startAt: null });
    expect(loadConfig({ SIMULATED_CLOCK: 'off' }).simulatedClock).toBeNull();
  });

  it('returns a frozen object', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c.tariff)).toBe(true);
  });
});
