import type { Config } from '../../src/config.ts';

/** A RADIUS configuration for tests: ephemeral ports on `host`, no NAS file, PAP only, the defaults otherwise. */
export function testRadiusConfig(host = '127.0.0.1', overrides: Partial<Config['radius']> = {}): Config['radius'] {
  return { host, authPort: 0, acctPort: 0, nasClientsFile: null, staleIntervals: 3, defaultInterimSeconds: 600, credentialKey: null, ...overrides };
}
