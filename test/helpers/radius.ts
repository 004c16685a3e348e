import type { Config } from '../../src/config.ts';

/**
 * A RADIUS configuration for tests: ephemeral ports on `host`, no NAS file, PAP only, the defaults otherwise.
 * RADIUS_SOCKET_THREAD=on in the environment (CI's PostgreSQL 15 run) puts the sockets on their thread.
 */
export function testRadiusConfig(host = '127.0.0.1', overrides: Partial<Config['radius']> = {}): Config['radius'] {
  const socketThread = ['on', 'true', '1'].includes(process.env.RADIUS_SOCKET_THREAD ?? '');
  return { host, authPort: 0, acctPort: 0, nasClientsFile: null, staleIntervals: 3, defaultInterimSeconds: 600, credentialKey: null, socketThread, ...overrides };
}
