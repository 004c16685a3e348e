import type { Readable } from 'node:stream';
import { validatorCompiler, type FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hashPassword } from '../../billing/password.ts';
import {
  csvRows,
  existingUsernames,
  hashAll,
  insertAccounts,
  jsonArrayRows,
  MAX_IMPORT_ROWS,
  MAX_PLAINTEXT_ROWS,
  ndjsonRows,
  storeChapCredentials,
  textChunks,
  validateRows,
  type RawRow,
  type RowReject,
  type ValidRow,
} from '../account-import.ts';
import type { ApiDeps } from '../app.ts';
import { recordAudit } from '../audit-store.ts';
import { actorOf } from '../auth.ts';
import { ApiProblem } from '../problem.ts';
import { AccountKind, Username } from '../schemas.ts';
import { Password, PasswordHash } from './accounts.ts';

const MEDIA_TYPES = ['text/csv', 'application/json', 'application/x-ndjson'] as const;

const ImportRow = z
  .strictObject({
    username: Username,
    kind: AccountKind,
    name: z.string().trim().min(1).max(200).nullable().optional(),
    password: Password.optional(),
    passwordHash: PasswordHash.optional(),
  })
  .refine((r) => (r.password === undefined) !== (r.passwordHash === undefined), { message: 'give exactly one of password and passwordHash', path: ['password'] })
  .transform(
    (r): ValidRow => ({ username: r.username, kind: r.kind, name: r.name ?? null, password: r.password ?? null, passwordHash: r.passwordHash ?? null }),
  )
  .meta({ id: 'AccountImportRow' });

const RejectDto = z.object({
  row: z.int().describe('1-based data row (the header is not counted)'),
  line: z.int().nullable().describe('Line in the CSV or NDJSON file'),
  username: z.string().nullable(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })),
});

const ImportReport = z.object({
  dryRun: z.boolean(),
  total: z.int().describe('Data rows read'),
  imported: z.int().describe('Accounts created (0 on a dry run)'),
  hashed: z.int().describe('Plaintext passwords hashed here with argon2id'),
  rejected: z.int(),
  rejects: z.array(RejectDto),
  ms: z.int(),
});

function mediaType(header: string | undefined): (typeof MEDIA_TYPES)[number] | null {
  const t = (header ?? '').split(';')[0]!.trim().toLowerCase();
  return (MEDIA_TYPES as readonly string[]).includes(t) ? (t as (typeof MEDIA_TYPES)[number]) : null;
}

export const importRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  // This scope reads its body as a stream: rows are parsed and validated as they arrive.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser([...MEDIA_TYPES], (_req, payload, done) => done(null, payload));

  app.post(
    '/accounts/import',
    {
      config: { permission: 'admin' },
      // The body is a stream checked row by row below; the schema documents the rows.
      validatorCompiler: (route) => (route.httpPart === 'body' ? (data: unknown) => ({ value: data }) : validatorCompiler(route as unknown as Parameters<typeof validatorCompiler>[0])),
      schema: {
        tags: ['accounts'],
        summary: 'Import accounts from CSV, NDJSON or a JSON array: all or nothing, with a report of every bad row',
        description:
          `Up to ${MAX_IMPORT_ROWS} rows in one call, streamed. CSV needs a header row naming the columns ` +
          '`username,kind,name,password` or `username,kind,name,passwordHash` (UTF-8; a BOM is fine). Each row gives exactly one of ' +
          '`password` (plaintext, hashed here with argon2id: about 30-60 per second per core, at most ' +
          `${MAX_PLAINTEXT_ROWS} per call) or \`passwordHash\` (an argon2id PHC string: the fast path, 100k rows import in seconds). ` +
          'If any row is bad (invalid field, username repeated in the file or already taken) nothing is imported and the ' +
          'answer is 422 listing the rejects. `dryRun=true` checks without writing.',
        consumes: [...MEDIA_TYPES],
        querystring: z.object({ dryRun: z.enum(['true', 'false']).default('false').transform((v) => v === 'true') }),
        body: z.array(ImportRow),
        response: { 201: ImportReport, 200: ImportReport },
      },
    },
    async (req, reply) => {
      const started = performance.now();
      const type = mediaType(req.headers['content-type']);
      const body = req.body as unknown as Readable | undefined;
      if (!type || !body || typeof (body as Readable).pipe !== 'function') {
        throw new ApiProblem(415, 'unsupported_media_type', `send the accounts as ${MEDIA_TYPES.join(', ')}`);
      }
      const chunks = textChunks(body);
      const rows: AsyncIterable<RawRow> = type === 'text/csv' ? csvRows(chunks) : type === 'application/x-ndjson' ? ndjsonRows(chunks) : jsonArrayRows(chunks);
      const checked = await validateRows(rows, ImportRow);
      const rejects: RowReject[] = checked.rejects;
      let rejected = checked.rejected;

      const taken = await existingUsernames(deps.db, checked.valid.map((v) => v.username));
      checked.valid.forEach((v, k) => {
        if (!taken.has(v.username)) return;
        rejected++;
        if (rejects.length < 1000) {
          rejects.push({ row: checked.validRowNumbers[k]!, line: null, username: v.username, errors: [{ field: 'username', message: 'an account with this username already exists / 账号已存在' }] });
        }
      });
      rejects.sort((a, b) => a.row - b.row);
      const report = (imported: number, hashed: number) => ({
        dryRun: req.query.dryRun,
        total: checked.total,
        imported,
        hashed,
        rejected,
        rejects,
        ms: Math.round(performance.now() - started),
      });
      if (rejected > 0) {
        throw new ApiProblem(422, 'import_rejected', `${rejected} of ${checked.total} rows are bad; nothing was imported / ${rejected} 行有误，未导入任何账号`, report(0, 0));
      }
      if (checked.plaintext > MAX_PLAINTEXT_ROWS) {
        throw new ApiProblem(
          422,
          'too_many_plaintext',
          `${checked.plaintext} rows carry a plaintext password; at most ${MAX_PLAINTEXT_ROWS} per call (argon2id is slow by design): split the file or send passwordHash`,
        );
      }
      if (req.query.dryRun) return reply.code(200).send(report(0, 0));

      const hashes = await hashAll(checked.valid, hashPassword);
      const imported = await deps.db.transaction().execute(async (trx) => {
        let ids: Map<string, number>;
        try {
          ids = await insertAccounts(trx, checked.valid, hashes);
        } catch (e) {
          if ((e as { code?: string }).code === '23505') {
            throw new ApiProblem(409, 'conflict', 'an account in the file was created by someone else meanwhile; nothing was imported, retry / 导入期间账号被创建，请重试');
          }
          throw e;
        }
        const n = ids.size;
        if (deps.sealChapCredential) await storeChapCredentials(trx, checked.valid, hashes, ids, deps.sealChapCredential);
        await recordAudit(trx, {
          actor: actorOf(req),
          action: 'account.import',
          targetType: 'import',
          targetId: null,
          after: {
            imported: n,
            hashed: checked.plaintext,
            mediaType: type,
            usernames: checked.valid.map((v) => v.username),
          },
          requestId: req.id,
        });
        return n;
      });
      req.log.info({ imported, hashed: checked.plaintext, ms: Math.round(performance.now() - started) }, 'accounts imported');
      return reply.code(201).send(report(imported, checked.plaintext));
    },
  );
};
