import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { formatYuan, type InTransaction, type LedgerEntry, type TopUpResult } from '../../billing/billing.ts';
import type { ApiDeps } from '../app.ts';
import { recordAudit } from '../audit-store.ts';
import { actorOf } from '../auth.ts';
import { ApiProblem } from '../problem.ts';
import {
  Cursor,
  CycleDto,
  decodeCursor,
  encodeCursor,
  Fen,
  formatBeijing,
  LedgerEntryDto,
  Limit,
  PositiveFen,
  Reason,
  SignedFen,
  toCycleDto,
  toLedgerEntryDto,
  UsernameParams,
  Yuan,
} from '../schemas.ts';

const Channel = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'must be 1-32 of a-z 0-9 _ - (e.g. cwsf, selfaaa, wechat-work, campus-app, cash)')
  .describe('Where the money came from: cwsf (campus payment site), selfaaa, wechat-work, campus-app, cash, ...');
const OrderId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
  .describe('The payment platform’s order number: one credit per (channel, orderId)');

const TopUpBody = z.strictObject({ channel: Channel, orderId: OrderId, amountFen: PositiveFen });

const MoneyResult = z.object({
  entry: LedgerEntryDto,
  balanceFen: Fen,
  balanceYuan: Yuan,
});
const TopUpReply = MoneyResult.extend({
  replay: z.boolean().describe('true when this (channel, orderId) was credited before: nothing changed now'),
});

/** RFC 4180 quoting, and a leading quote on text that a spreadsheet would run as a formula. */
function csvCell(v: string | number | null, text = false): string {
  if (v === null) return '';
  let s = String(v);
  if (text && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const CSV_HEADER = 'id,effective_at,effective_at_beijing,kind,amount_fen,amount_yuan,balance_after_fen,balance_after_yuan,channel,order_id,cycle_id,actor,reason';

function csvRow(e: LedgerEntry): string {
  return [
    csvCell(e.id),
    csvCell(e.effectiveAt.toISOString()),
    csvCell(formatBeijing(e.effectiveAt)),
    csvCell(e.kind),
    csvCell(e.amountFen),
    csvCell(formatYuan(e.amountFen)),
    csvCell(e.balanceAfterFen),
    csvCell(formatYuan(e.balanceAfterFen)),
    csvCell(e.channel, true),
    csvCell(e.orderId, true),
    csvCell(e.cycleId),
    csvCell(e.actor, true),
    csvCell(e.reason, true),
  ].join(',');
}

function cursorOrThrow(cursor: string | undefined): number | undefined {
  const v = decodeCursor(cursor);
  if (v === -1) throw new ApiProblem(400, 'invalid', 'cursor is not one this API returned');
  return v;
}

export const moneyRoutes: FastifyPluginAsyncZod<{ deps: ApiDeps }> = async (app, { deps }) => {
  const { billing } = deps;

  // The audit record commits in the money operation's own transaction, or neither does.
  const auditMoney =
    (action: string, username: string, actor: string, requestId: string, extra: Record<string, unknown> = {}): InTransaction =>
    async (trx, r: TopUpResult) => {
      await recordAudit(trx, {
        actor,
        action,
        targetType: 'account',
        targetId: username,
        before: { balanceFen: r.balanceFen - r.entry.amountFen },
        after: { balanceFen: r.balanceFen, ledgerEntryId: r.entry.id, amountFen: r.entry.amountFen, ...extra },
        requestId,
      });
    };

  app.post(
    '/accounts/:username/top-ups',
    {
      config: { permission: 'top-up' },
      schema: {
        tags: ['money'],
        summary: 'Credit a payment (idempotent on channel + orderId)',
        description:
          'The first call credits and answers 201. The same (channel, orderId) again answers 200 with the first result, ' +
          '`replay: true` and header `Idempotent-Replayed: true`, and credits nothing. The same order with another amount or ' +
          'account answers 409.',
        params: UsernameParams,
        body: TopUpBody,
        response: { 201: TopUpReply, 200: TopUpReply },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const r = await billing.topUp(
        { username: req.params.username, ...req.body, actor },
        undefined,
        auditMoney('top-up.create', req.params.username, actor, req.id, { channel: req.body.channel, orderId: req.body.orderId }),
      );
      const body = { entry: toLedgerEntryDto(r.entry), balanceFen: r.balanceFen, balanceYuan: formatYuan(r.balanceFen), replay: r.duplicate };
      if (r.duplicate) return reply.code(200).header('idempotent-replayed', 'true').send(body);
      return reply.code(201).send(body);
    },
  );

  app.post(
    '/accounts/:username/adjustments',
    {
      config: { permission: 'adjust' },
      schema: {
        tags: ['money'],
        summary: 'A staff correction of either sign, with a reason',
        description: 'The only operation that may take a balance below zero; a later top-up pays the debt first.',
        params: UsernameParams,
        body: z.strictObject({ amountFen: SignedFen, reason: Reason }),
        response: { 201: MoneyResult },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const r = await billing.adjust(
        { username: req.params.username, amountFen: req.body.amountFen, reason: req.body.reason, actor },
        undefined,
        auditMoney('adjustment.create', req.params.username, actor, req.id, { reason: req.body.reason }),
      );
      return reply.code(201).send({ entry: toLedgerEntryDto(r.entry), balanceFen: r.balanceFen, balanceYuan: formatYuan(r.balanceFen) });
    },
  );

  app.post(
    '/accounts/:username/refunds',
    {
      config: { permission: 'admin' },
      schema: {
        tags: ['money'],
        summary: 'Pay money back, with a reason',
        description:
          'The running cycle’s fee is committed and cannot be refunded: asking for more than `refundableFen` (see the account) ' +
          'answers 422 with `refundableFen` in the problem.',
        params: UsernameParams,
        body: z.strictObject({ amountFen: PositiveFen, reason: Reason }),
        response: { 201: MoneyResult },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const r = await billing.refund(
        { username: req.params.username, amountFen: req.body.amountFen, reason: req.body.reason, actor },
        undefined,
        auditMoney('refund.create', req.params.username, actor, req.id, { reason: req.body.reason }),
      );
      return reply.code(201).send({ entry: toLedgerEntryDto(r.entry), balanceFen: r.balanceFen, balanceYuan: formatYuan(r.balanceFen) });
    },
  );

  app.get(
    '/accounts/:username/ledger',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['money'],
        summary: 'Fund details (资金明细): every top-up, settlement, adjustment and refund, newest first',
        description:
          'Each entry carries the balance after it. `format=csv` exports the whole ledger (from `cursor` on, ignoring `limit`) ' +
          'as UTF-8 CSV with a BOM, times in UTC and Beijing time.',
        params: UsernameParams,
        querystring: z.object({ cursor: Cursor.optional(), limit: Limit, format: z.enum(['json', 'csv']).default('json') }),
        response: {
          200: {
            description: 'A page of entries, or the CSV export',
            content: {
              'application/json': { schema: z.object({ items: z.array(LedgerEntryDto), nextCursor: z.string().nullable() }) },
              'text/csv': { schema: z.string() },
            },
          },
        },
      },
    },
    async (req, reply) => {
      const { username } = req.params;
      const beforeId = cursorOrThrow(req.query.cursor);
      if (req.query.format === 'csv') {
        const lines = [CSV_HEADER];
        for (let before = beforeId; ; ) {
          const batch = await billing.ledger(username, { beforeId: before, limit: 1000 });
          for (const e of batch) lines.push(csvRow(e));
          if (batch.length < 1000) break;
          before = batch.at(-1)!.id;
        }
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="ledger-${username}.csv"`)
          .send(`\uFEFF${lines.join('\r\n')}\r\n`);
      }
      const { limit } = req.query;
      const rows = await billing.ledger(username, { beforeId, limit: limit + 1 });
      const items = rows.slice(0, limit);
      return reply
        .type('application/json; charset=utf-8')
        .send({ items: items.map(toLedgerEntryDto), nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.id) : null });
    },
  );

  app.get(
    '/accounts/:username/cycles',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['money'],
        summary: 'Billing cycles, newest first, with their settlement status',
        params: UsernameParams,
        querystring: z.object({ cursor: Cursor.optional(), limit: Limit }),
        response: { 200: z.object({ items: z.array(CycleDto), nextCursor: z.string().nullable() }) },
      },
    },
    async (req) => {
      const beforeSeq = cursorOrThrow(req.query.cursor);
      const { limit } = req.query;
      const rows = await billing.cycles(req.params.username, { beforeSeq, limit: limit + 1 });
      const items = rows.slice(0, limit);
      const now = deps.clock.now();
      return { items: items.map((c) => toCycleDto(c, now)), nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.seq) : null };
    },
  );
};
