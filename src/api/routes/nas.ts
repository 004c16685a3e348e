import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { deleteNasClient, getNasClient, insertNasClient, listNasClients, updateNasClient, type NasClient } from '../../radius/nas-store.ts';
import type { ApiDeps } from '../app.ts';
import { recordAudit } from '../audit-store.ts';
import { actorOf } from '../auth.ts';
import { Area, IdParams, Instant } from '../schemas.ts';

const AreaRule = z.strictObject({
  attribute: z.string().describe('A request attribute, e.g. NAS-Port-Id, Called-Station-Id, NAS-Identifier'),
  pattern: z.string().describe('A regular expression matched against the attribute’s value'),
  area: Area,
});

const NasFields = {
  name: z.string().min(1).max(64).describe('A unique name, e.g. dorm-bras-1'),
  address: z.string().min(1).max(64).describe('Source address of its RADIUS packets: an IP (192.0.2.10) or a CIDR range (10.1.0.0/16)'),
  secret: z.string().min(1).max(128).describe('The RADIUS shared secret; write-only, never returned'),
  area: Area.describe('The area its logins are in, unless an area rule matches'),
  areaRules: z.array(AreaRule).max(32).describe('For a NAS serving both areas: the first matching rule decides the area'),
  coaPort: z.int().min(1).max(65535).describe('UDP port for Disconnect-Requests (RFC 5176; default 3799)'),
  messageAuthenticator: z.enum(['require', 'auto']).describe('require: drop Access-Requests without Message-Authenticator (BlastRADIUS mitigation)'),
  enabled: z.boolean(),
};

const CreateNas = z.strictObject({
  name: NasFields.name,
  address: NasFields.address,
  secret: NasFields.secret,
  area: NasFields.area,
  areaRules: NasFields.areaRules.optional(),
  coaPort: NasFields.coaPort.optional(),
  messageAuthenticator: NasFields.messageAuthenticator.optional(),
  enabled: NasFields.enabled.optional(),
});

const PatchNas = z
  .strictObject({
    name: NasFields.name.optional(),
    address: NasFields.address.optional(),
    secret: NasFields.secret.optional(),
    area: NasFields.area.optional(),
    areaRules: NasFields.areaRules.optional(),
    coaPort: NasFields.coaPort.optional(),
    messageAuthenticator: NasFields.messageAuthenticator.optional(),
    enabled: NasFields.enabled.optional(),
  })
  .refine((p) => Object.keys(p).length > 0, 'give at least one field to change');

const NasDto = z
  .object({
    id: z.int(),
    name: z.string(),
    address: z.string(),
    area: Area,
    areaRules: z.array(z.object({ attribute: z.string(), pattern: z.string(), area: Area })),
    coaPort: z.int(),
    messageAuthenticator: z.enum(['require', 'auto']),
    source: z.enum(['api', 'file']).describe('file: declared in NAS_CLIENTS_FILE, change it there'),
    enabled: z.boolean(),
    createdAt: Instant,
    updatedAt: Instant,
  })
  .meta({ id: 'NasClient', description: 'An access controller; the shared secret is never returned' });

/** The client without its secret: what the API returns and what the audit log records. */
function toNasDto(c: NasClient): z.infer<typeof NasDto> {
  return {
    id: c.id,
    name: c.name,
    address: c.address,
    area: c.area,
    areaRules: c.areaRules.map((r) => ({ ...r })),
    coaPort: c.coaPort,
    messageAuthenticator: c.messageAuthenticator,
    source: c.source,
    enabled: c.enabled,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

export const nasRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { db } = deps;

  app.get(
    '/nas',
    {
      config: { permission: 'read' },
      schema: { tags: ['nas'], summary: 'Every NAS client, by name', response: { 200: z.object({ items: z.array(NasDto) }) } },
    },
    async () => ({ items: (await listNasClients(db)).map(toNasDto) }),
  );

  app.get(
    '/nas/:id',
    {
      config: { permission: 'read' },
      schema: { tags: ['nas'], summary: 'One NAS client', params: IdParams, response: { 200: NasDto } },
    },
    async (req) => toNasDto(await getNasClient(db, req.params.id)),
  );

  app.post(
    '/nas',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['nas'],
        summary: 'Add a NAS client',
        description: 'Running RADIUS servers pick it up within a moment, without a restart.',
        body: CreateNas,
        response: { 201: NasDto },
      },
    },
    async (req, reply) => {
      const created = await db.transaction().execute(async (trx) => {
        const c = await insertNasClient(trx, req.body);
        await recordAudit(trx, { actor: actorOf(req), action: 'nas.create', targetType: 'nas', targetId: c.id, after: toNasDto(c), requestId: req.id });
        return c;
      });
      return reply.code(201).header('location', `/api/v1/nas/${created.id}`).send(toNasDto(created));
    },
  );

  app.patch(
    '/nas/:id',
    {
      config: { permission: 'admin' },
      schema: { tags: ['nas'], summary: 'Change a NAS client', params: IdParams, body: PatchNas, response: { 200: NasDto } },
    },
    async (req) => {
      const updated = await db.transaction().execute(async (trx) => {
        const before = await getNasClient(trx, req.params.id);
        const after = await updateNasClient(trx, req.params.id, req.body);
        await recordAudit(trx, {
          actor: actorOf(req),
          action: 'nas.update',
          targetType: 'nas',
          targetId: after.id,
          before: toNasDto(before),
          after: { ...toNasDto(after), ...(req.body.secret !== undefined ? { secretChanged: true } : {}) },
          requestId: req.id,
        });
        return after;
      });
      return toNasDto(updated);
    },
  );

  app.delete(
    '/nas/:id',
    {
      config: { permission: 'admin' },
      schema: { tags: ['nas'], summary: 'Remove a NAS client', params: IdParams, response: { 204: z.undefined().describe('Removed') } },
    },
    async (req, reply) => {
      await db.transaction().execute(async (trx) => {
        const before = await getNasClient(trx, req.params.id);
        await deleteNasClient(trx, req.params.id);
        await recordAudit(trx, { actor: actorOf(req), action: 'nas.delete', targetType: 'nas', targetId: before.id, before: toNasDto(before), requestId: req.id });
      });
      return reply.code(204).send();
    },
  );
};
