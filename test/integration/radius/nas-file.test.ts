import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../../src/billing/password.ts';
import { readNasClientsFile } from '../../../src/radius/nas-file.ts';
import { listNasClients } from '../../../src/radius/nas-store.ts';
import { startRadius } from '../../../src/radius/server.ts';
import { newBilling } from '../../helpers/billing.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { testRadiusConfig } from '../../helpers/radius.ts';

let t: TestDatabase;
let dir: string;
beforeAll(async () => {
  t = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'nas-file-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await t.drop();
});

function file(name: string, content: unknown): string {
  const p = path.join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

const config = testRadiusConfig();

/** What startRadius needs besides its config, on this file's database. */
async function radiusDeps() {
  const { billing } = await newBilling(t.db);
  return { db: t.db, databaseUrl: t.url, billing, log: pino({ level: 'silent' }), registry: new Registry(), verifyPassword };
}

describe('NAS_CLIENTS_FILE', () => {
  it('takes a secret from the environment when the file names a variable', async () => {
    const p = file('env.json', [{ name: 'a', address: '10.0.0.1', secret: { env: 'BRAS_A_SECRET' }, area: 'dorm' }]);
    expect(await readNasClientsFile(p, { BRAS_A_SECRET: 'from-env' })).toMatchObject([{ name: 'a', secret: 'from-env' }]);
    await expect(readNasClientsFile(p, {})).rejects.toThrow(/BRAS_A_SECRET is not set/);
  });

  it.each([
    ['not JSON', '[{', /not valid JSON/],
    ['not an array', { name: 'x' }, /must be a JSON array/],
    ['an entry that is not an object', [42], /entry 0 must be an object/],
  ])('refuses a file that is %s', async (_what, content, message) => {
    await expect(readNasClientsFile(file(`bad-${Math.random()}.json`, content))).rejects.toThrow(message);
  });

  it('is synced into the database when the server starts, and a bad entry stops the start', async () => {
    const base = await radiusDeps();
    const good = file('good.json', [
      { name: 'bras-east', address: '10.10.0.1', secret: 'east-secret', area: 'dorm' },
      { name: 'bras-teach', address: '10.20.0.0/24', secret: 'teach-secret', area: 'office', coaPort: 1700, areaRules: [{ attribute: 'NAS-Port-Id', pattern: '^dorm', area: 'dorm' }] },
    ]);
    const radius = await startRadius({ ...base, config: { ...config, nasClientsFile: good } });
    try {
      expect(radius.server.nasFor('10.20.0.77')?.name).toBe('bras-teach');
      const stored = await listNasClients(t.db);
      expect(stored.map((c) => [c.name, c.source, c.coaPort])).toEqual([
        ['bras-east', 'file', 3799],
        ['bras-teach', 'file', 1700],
      ]);
    } finally {
      await radius.close();
    }
    const bad = file('bad.json', [{ name: 'bras-bad', address: '10.30.0.1/8', secret: 's', area: 'dorm' }]);
    await expect(startRadius({ ...base, config: { ...config, nasClientsFile: bad } })).rejects.toThrow(/address/);
  });

  it('accepts the example file docker-compose mounts, taking its secrets from the environment', async () => {
    const example = path.join(import.meta.dirname, '../../../docker/nas-clients.example.json');
    const env = { BRAS_DORM_1_SECRET: 'dorm-1-secret', BRAS_TEACHING_SECRET: 'teaching-secret' };
    const clients = await readNasClientsFile(example, env);
    expect(clients.map((c) => [c.name, c.area, c.secret])).toEqual([
      ['bras-dorm-1', 'dorm', 'dorm-1-secret'],
      ['bras-teaching-area', 'office', 'teaching-secret'],
    ]);
    const base = await radiusDeps();
    Object.assign(process.env, env);
    try {
      const radius = await startRadius({ ...base, config: { ...config, nasClientsFile: example } });
      try {
        expect(radius.server.nasFor('10.255.1.9')?.name).toBe('bras-teaching-area');
        expect(radius.server.nasFor('10.255.0.1')?.name).toBe('bras-dorm-1');
      } finally {
        await radius.close();
      }
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
    }
  });
});
