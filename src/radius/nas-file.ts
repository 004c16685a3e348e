import { readFile } from 'node:fs/promises';
import { AppError } from '../errors.ts';
import type { NewNasClient } from './nas-store.ts';

/**
 * Reads NAS_CLIENTS_FILE: a JSON array of clients, like FreeRADIUS's clients.conf kept as code.
 *
 *   [{ "name": "bras-dorm-1", "address": "10.0.0.1", "secret": { "env": "BRAS_DORM_1_SECRET" },
 *      "area": "dorm", "coaPort": 3799, "messageAuthenticator": "require",
 *      "areaRules": [{ "attribute": "NAS-Port-Id", "pattern": "^office", "area": "office" }] }]
 *
 * A secret is a string or `{ "env": "NAME" }` to take it from the environment, so the file can live in
 * version control without secrets. Field checks are nas-store's; this only reads the shape.
 */
export async function readNasClientsFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<NewNasClient[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new AppError('invalid', `NAS_CLIENTS_FILE ${path}: ${e instanceof SyntaxError ? 'not valid JSON' : (e as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new AppError('invalid', `NAS_CLIENTS_FILE ${path}: must be a JSON array of clients`);
  return parsed.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) throw new AppError('invalid', `NAS_CLIENTS_FILE ${path}: entry ${i} must be an object`);
    const o = item as Record<string, unknown>;
    let secret = o.secret;
    if (typeof secret === 'object' && secret !== null && typeof (secret as { env?: unknown }).env === 'string') {
      const name = (secret as { env: string }).env;
      secret = env[name];
      if (secret === undefined || secret === '') throw new AppError('invalid', `NAS_CLIENTS_FILE ${path}: entry ${i}: environment variable ${name} is not set`);
    }
    return {
      name: o.name as string,
      address: o.address as string,
      secret: secret as string,
      area: o.area as NewNasClient['area'],
      areaRules: o.areaRules as NewNasClient['areaRules'],
      coaPort: o.coaPort as number | undefined,
      messageAuthenticator: o.messageAuthenticator as NewNasClient['messageAuthenticator'],
      enabled: o.enabled as boolean | undefined,
    };
  });
}
