import os from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { migrateToLatest } from '../db/migrate.ts';
import { openDatabase } from '../db/open.ts';
import { createLogger } from '../log.ts';
import { recordAudit } from './audit-store.ts';
import { API_ROLES, insertToken, listTokens, revokeToken } from './token-store.ts';

const USAGE = `usage:
  npm run token -- create --role <admin|operator|payment|readonly> --name <who> [--expires-days <n>]
  npm run token -- list [--all]
  npm run token -- revoke <id>`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    role: { type: 'string' },
    name: { type: 'string' },
    'expires-days': { type: 'string' },
    all: { type: 'boolean', default: false },
  },
});
const command = positionals[0];
if (!command || !['create', 'list', 'revoke'].includes(command)) fail('a command is required');

const config = loadConfig();
const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
const actor = `cli:${os.userInfo().username}@${os.hostname()}`;
const handle = await openDatabase(config, log, 'attach');
try {
  await migrateToLatest(handle.db);
  if (command === 'create') {
    const role = values.role;
    if (!role || !(API_ROLES as readonly string[]).includes(role)) fail(`--role must be one of ${API_ROLES.join(', ')}`);
    const name = values.name?.trim();
    if (!name || name.length > 100) fail('--name (1-100 characters) is required');
    let expiresAt: Date | null = null;
    if (values['expires-days'] !== undefined) {
      const days = Number(values['expires-days']);
      if (!Number.isInteger(days) || days < 1 || days > 3650) fail('--expires-days must be a whole number of days, 1-3650');
      expiresAt = new Date(Date.now() + days * 86_400_000);
    }
    const created = await handle.db.transaction().execute(async (trx) => {
      const c = await insertToken(trx, { name, role: role as (typeof API_ROLES)[number], createdBy: actor, expiresAt });
      await recordAudit(trx, { actor, action: 'token.create', targetType: 'token', targetId: c.record.id, after: { name, role, expiresAt } });
      return c;
    });
    process.stderr.write(`created token #${created.record.id} "${name}" with role ${role}${expiresAt ? `, expires ${expiresAt.toISOString()}` : ''}; it is shown once:\n`);
    process.stdout.write(`${created.token}\n`);
  } else if (command === 'list') {
    const tokens = await listTokens(handle.db, { includeRevoked: values.all });
    for (const t of tokens) {
      const state = t.revokedAt ? `revoked ${t.revokedAt.toISOString()}` : t.expiresAt ? `expires ${t.expiresAt.toISOString()}` : 'active';
      process.stdout.write(`#${t.id}\t${t.role}\t${t.name}\tkey ${t.keyId}\t${state}\tlast used ${t.lastUsedAt?.toISOString() ?? 'never'}\n`);
    }
    if (tokens.length === 0) process.stderr.write('no tokens\n');
  } else {
    const id = Number(positionals[1]);
    if (!Number.isSafeInteger(id) || id < 1) fail('revoke needs a token id (see `list`)');
    const r = await handle.db.transaction().execute(async (trx) => {
      const changed = await revokeToken(trx, id, new Date());
      if (changed && changed.before.revokedAt === null) {
        await recordAudit(trx, { actor, action: 'token.revoke', targetType: 'token', targetId: id, before: { name: changed.before.name, role: changed.before.role }, after: { revokedAt: changed.after.revokedAt } });
      }
      return changed;
    });
    if (!r) {
      process.stderr.write(`no token #${id}\n`);
      process.exitCode = 1;
    } else {
      process.stdout.write(`token #${id} "${r.after.name}" revoked at ${r.after.revokedAt!.toISOString()}\n`);
    }
  }
} catch (e) {
  process.stderr.write(`token command failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
} finally {
  await handle.close();
}
