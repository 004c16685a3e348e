import type { Config } from '../../src/config.ts';

/**
 * A RADIUS configuration for tests: ephemeral ports on `host`, no NAS file, PAP only, the defaults otherwise.
 * The sockets are on their thread as by default, unless RADIUS_SOCKET_THREAD=off (CI's PostgreSQL 15 run).
 */
export function testRadiusConfig(host = '127.0.0.1', overrides: Partial<Config['radius']> = {}): Config['radius'] {
  const socketThread = !['off', 'false', '0'].includes(process.env.RADIUS_SOCKET_THREAD ?? 'on');
  return { host, authPort: 0, acctPort: 0, nasClientsFile: null, staleIntervals: 3, defaultInterimSeconds: 600, credentialKey: null, socketThread, ...overrides };
}
