import type { Kysely, Transaction } from 'kysely';
import type { Area, AreaRule, Database, NasClientRow } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import { formatNetwork, parseNetwork } from './nas-table.ts';

/** An access controller allowed to talk to the server (RFC 2865 §3). The API never returns `secret`. */
export interface NasClient {
  readonly id: number;
  readonly name: string;
  /** A CIDR network as PostgreSQL prints it: "192.0.2.10/32", "10.1.0.0/16", "2001:db8::/32". */
  readonly address: string;
  readonly secret: string;
  readonly area: Area;
  readonly areaRules: readonly AreaRule[];
  readonly coaPort: number;
  readonly messageAuthenticator: 'require' | 'auto';
  /** `file` when declared in NAS_CLIENTS_FILE: the file owns it and the API may not change it. */
  readonly source: 'api' | 'file';
  readonly enabled: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewNasClient {
  readonly name: string;
  readonly address: string;
  readonly secret: string;
  readonly area: Area;
  readonly areaRules?: readonly AreaRule[] | undefined;
  readonly coaPort?: number | undefined;
  readonly messageAuthenticator?: 'require' | 'auto' | undefined;
  readonly enabled?: boolean | undefined;
}

export type NasClientPatch = Partial<NewNasClient>;

type Db = Kysely<Database> | Transaction<Database>;

export function toNasClient(r: NasClientRow): NasClient {
  return {
    id: r.id,
    name: r.name,
    address: r.address,
    secret: r.secret,
    area: r.area,
    areaRules: r.area_rules.map((a) => ({ attribute: a.attribute, pattern: a.pattern, area: a.area })),
    coaPort: r.coa_port,
    messageAuthenticator: r.message_authenticator,
    source: r.source,
    enabled: r.enabled,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 ._:@()-]{0,63}$/;
const ATTRIBUTE_PATTERN = /^[A-Za-z][A-Za-z0-9-]{0,63}$/;
const MAX_AREA_RULES = 32;
const MAX_PATTERN_LENGTH = 256;

function invalid(message: string): never {
  throw new AppError('invalid', message);
}

function checkArea(v: unknown, field: string): Area {
  if (v !== 'dorm' && v !== 'office') invalid(`${field} must be dorm or office`);
  return v;
}

/** Validates area rules, compiling each pattern, so a bad regular expression never reaches a server. */
export function validateAreaRules(rules: unknown): AreaRule[] {
  if (!Array.isArray(rules)) invalid('areaRules must be an array');
  if (rules.length > MAX_AREA_RULES) invalid(`areaRules may hold at most ${MAX_AREA_RULES} rules`);
  return rules.map((r: unknown, i) => {
    if (typeof r !== 'object' || r === null) invalid(`areaRules[${i}] must be an object`);
    const { attribute, pattern, area } = r as Record<string, unknown>;
    if (typeof attribute !== 'string' || !ATTRIBUTE_PATTERN.test(attribute)) {
      invalid(`areaRules[${i}].attribute must be a RADIUS attribute name such as NAS-Port-Id`);
    }
    if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_PATTERN_LENGTH) {
      invalid(`areaRules[${i}].pattern must be a regular expression of 1-${MAX_PATTERN_LENGTH} characters`);
    }
    try {
      new RegExp(pattern);
    } catch {
      invalid(`areaRules[${i}].pattern is not a valid regular expression`);
    }
    return { attribute, pattern, area: checkArea(area, `areaRules[${i}].area`) };
  });
}

/** Checks and normalises a client's fields; throws AppError('invalid') naming the first bad one. */
export function validateNasClient(input: NewNasClient): Required<NewNasClient> & { areaRules: AreaRule[] };
export function validateNasClient(input: NasClientPatch, partial: true): NasClientPatch;
export function validateNasClient(input: NasClientPatch, partial = false): NasClientPatch {
  const out: { -readonly [K in keyof NewNasClient]?: NewNasClient[K] } = {};
  const need = (k: keyof NewNasClient) => !partial || input[k] !== undefined;
  if (need('name')) {
    if (typeof input.name !== 'string' || !NAME_PATTERN.test(input.name)) {
      invalid('name must be 1-64 characters of letters, digits, space and ._:@()-, starting with a letter or digit');
    }
    out.name = input.name;
  }
  if (need('address')) {
    if (typeof input.address !== 'string') invalid('address must be an IP address or CIDR range');
    const n = parseNetwork(input.address);
    if ('error' in n) invalid(`address: ${n.error}`);
    out.address = formatNetwork(n);
  }
  if (need('secret')) {
    if (typeof input.secret !== 'string' || input.secret.length < 1 || input.secret.length > 128) {
      invalid('secret must be 1-128 characters');
    }
    out.secret = input.secret;
  }
  if (need('area')) out.area = checkArea(input.area, 'area');
  if (input.areaRules !== undefined || !partial) out.areaRules = validateAreaRules(input.areaRules ?? []);
  if (input.coaPort !== undefined || !partial) {
    const p = input.coaPort ?? 3799;
    if (!Number.isInteger(p) || p < 1 || p > 65535) invalid('coaPort must be 1-65535');
    out.coaPort = p;
  }
  if (input.messageAuthenticator !== undefined || !partial) {
    const m = input.messageAuthenticator ?? 'require';
    if (m !== 'require' && m !== 'auto') invalid('messageAuthenticator must be require or auto');
    out.messageAuthenticator = m;
  }
  if (input.enabled !== undefined || !partial) {
    const e = input.enabled ?? true;
    if (typeof e !== 'boolean') invalid('enabled must be a boolean');
    out.enabled = e;
  }
  return out;
}

function uniqueViolation(e: unknown): string | null {
  const err = e as { code?: string; constraint?: string } | null;
  if (err?.code !== '23505') return null;
  return err.constraint?.includes('address') ? 'address' : 'name';
}

async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const field = uniqueViolation(e);
    if (field) throw new AppError('conflict', `a NAS client with this ${field} already exists / 该${field === 'name' ? '名称' : '地址'}的接入设备已存在`);
    throw e;
  }
}

/** Every NAS client by name. */
export async function listNasClients(db: Db): Promise<NasClient[]> {
  const rows = await db.selectFrom('nas_clients').selectAll().orderBy('name').execute();
  return rows.map(toNasClient);
}

export async function findNasClient(db: Db, id: number): Promise<NasClient | undefined> {
  if (!Number.isSafeInteger(id)) return undefined;
  const row = await db.selectFrom('nas_clients').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toNasClient(row);
}

export async function getNasClient(db: Db, id: number): Promise<NasClient> {
  const c = await findNasClient(db, id);
  if (!c) throw new AppError('not_found', `no NAS client #${id} / 接入设备不存在`);
  return c;
}

/** Adds a NAS client; the running servers pick it up through the nas_clients_changed notification. */
export async function insertNasClient(db: Db, input: NewNasClient, source: 'api' | 'file' = 'api'): Promise<NasClient> {
  const v = validateNasClient(input);
  return guarded(async () => {
    const row = await db
      .insertInto('nas_clients')
      .values({
        name: v.name,
        address: v.address,
        secret: v.secret,
        area: v.area,
        area_rules: JSON.stringify(v.areaRules),
        coa_port: v.coaPort,
        message_authenticator: v.messageAuthenticator,
        enabled: v.enabled,
        source,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toNasClient(row);
  });
}

function fileOwned(c: NasClient): never {
  throw new AppError('conflict', `NAS client ${c.name} is declared in NAS_CLIENTS_FILE; change it there / 该设备由配置文件管理`);
}

/** Changes the given fields; a client declared in NAS_CLIENTS_FILE is owned by the file (conflict). */
export async function updateNasClient(db: Db, id: number, patch: NasClientPatch): Promise<NasClient> {
  const v = validateNasClient(patch, true);
  const current = await getNasClient(db, id);
  if (current.source === 'file') fileOwned(current);
  return guarded(async () => {
    const row = await db
      .updateTable('nas_clients')
      .set({
        ...(v.name !== undefined ? { name: v.name } : {}),
        ...(v.address !== undefined ? { address: v.address } : {}),
        ...(v.secret !== undefined ? { secret: v.secret } : {}),
        ...(v.area !== undefined ? { area: v.area } : {}),
        ...(v.areaRules !== undefined ? { area_rules: JSON.stringify(v.areaRules) } : {}),
        ...(v.coaPort !== undefined ? { coa_port: v.coaPort } : {}),
        ...(v.messageAuthenticator !== undefined ? { message_authenticator: v.messageAuthenticator } : {}),
        ...(v.enabled !== undefined ? { enabled: v.enabled } : {}),
        updated_at: new Date(),
      })
      .where('id', '=', id)
      .where('source', '=', 'api')
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new AppError('not_found', `no NAS client #${id} / 接入设备不存在`);
    return toNasClient(row);
  });
}

/** Removes a client; its past sessions keep their NAS address (nas_id is set null). */
export async function deleteNasClient(db: Db, id: number): Promise<void> {
  const current = await getNasClient(db, id);
  if (current.source === 'file') fileOwned(current);
  const r = await db.deleteFrom('nas_clients').where('id', '=', id).where('source', '=', 'api').executeTakeFirst();
  if (r.numDeletedRows === 0n) throw new AppError('not_found', `no NAS client #${id} / 接入设备不存在`);
}

/**
 * Makes the file-declared clients exactly `clients` (by name) in one transaction: inserts new ones,
 * updates changed ones, deletes file clients no longer declared. API clients are never touched; a
 * file entry whose name or address an API client holds is a conflict.
 */
export async function syncFileNasClients(
  db: Kysely<Database>,
  clients: readonly NewNasClient[],
): Promise<{ inserted: number; updated: number; deleted: number }> {
  const valid = clients.map((c) => validateNasClient(c));
  const names = new Set<string>();
  for (const c of valid) {
    if (names.has(c.name)) invalid(`NAS_CLIENTS_FILE declares ${c.name} twice`);
    names.add(c.name);
  }
  return db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('nas_clients').selectAll().where('source', '=', 'file').forUpdate().execute();
    const byName = new Map(existing.map((r) => [r.name, toNasClient(r)]));
    let inserted = 0;
    let updated = 0;
    const gone = existing.filter((r) => !names.has(r.name)).map((r) => r.id);
    let deleted = 0;
    if (gone.length > 0) {
      deleted = Number((await trx.deleteFrom('nas_clients').where('id', 'in', gone).executeTakeFirst()).numDeletedRows);
    }
    for (const c of valid) {
      const cur = byName.get(c.name);
      const values = {
        address: c.address,
        secret: c.secret,
        area: c.area,
        area_rules: JSON.stringify(c.areaRules),
        coa_port: c.coaPort,
        message_authenticator: c.messageAuthenticator,
        enabled: c.enabled,
      };
      if (!cur) {
        await guarded(() => trx.insertInto('nas_clients').values({ name: c.name, source: 'file', ...values }).execute());
        inserted++;
      } else if (
        cur.address !== c.address ||
        cur.secret !== c.secret ||
        cur.area !== c.area ||
        JSON.stringify(cur.areaRules) !== values.area_rules ||
        cur.coaPort !== c.coaPort ||
        cur.messageAuthenticator !== c.messageAuthenticator ||
        cur.enabled !== c.enabled
      ) {
        await guarded(() => trx.updateTable('nas_clients').set({ ...values, updated_at: new Date() }).where('id', '=', cur.id).execute());
        updated++;
      }
    }
    return { inserted, updated, deleted };
  });
}
